"""The reduce stage's kNN graph: exact (brute force) against NN-descent, on Banking77 test.

    python benchmarks/reduce_knn.py          # -> benchmarks/results/reduce_knn.json (about 4 minutes)
    python benchmarks/reduce_knn.py --data ../shared/data/banking77/train.csv   # -> reduce_knn_train.json

Embeds the texts (3080 in test) once (all-MiniLM-L6-v2, CPU). Then, for each way of building UMAP's kNN
graph (``reduce.exact_knn_max_rows`` 20000: exact; 0: NN-descent), a fresh Python process with an
empty ``NUMBA_CACHE_DIR`` (a job on a machine that never ran one) does what a job does:

* ``warm_up_s``: imports the reduce stage and runs its warm-up for that many rows (the numba compile);
* ``seed_s``: fits one reducer per seed 0..4, each followed by KMeans(77) (``acc``/``nmi`` per
  seed; labels used for scoring only); the exact graph is built once (``exact_knn_s``) as the stage does;
* ``first_transform_s``: maps 10 new rows through seed 4's reducer (``predict``, Serve).

Then ``parallel_seeds``: the reduce stage itself (exact graph, 5 seeds) on a local Ray with this
machine's CPUs, its seeds one after another in this process (``never``) and at once in Ray tasks
(``always``; ``auto`` picks it where there is a free CPU for every seed and one more), the
numba cache warm from the runs above.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, RESULTS, TEST_CSV, write_result

MODES = {"exact": 20_000, "nndescent": 0}


def measure(vectors_file: str, labels_file: str, exact_knn_max_rows: int) -> dict:
    """Runs in the fresh process (``--child``)."""
    import numpy as np
    from llmclust.pipeline import reduction
    from llmclust.pipeline.clustering import ClusteringConfig, kmeans
    from llmclust.pipeline.evaluation import scores

    t0 = time.perf_counter()
    x, y = np.load(vectors_file), np.load(labels_file, allow_pickle=True)
    cfg = reduction.ReductionConfig(method="umap", exact_knn_max_rows=exact_knn_max_rows)
    reduction._compile(cfg, len(x))
    out = {"warm_up_s": round(time.perf_counter() - t0, 1), "seed_s": [], "acc": [], "nmi": []}
    knn = None
    if reduction.exact_knn_applies(len(x), len(x), cfg):
        t0 = time.perf_counter()
        knn = reduction.exact_knn(x, cfg)
        out["exact_knn_s"] = round(time.perf_counter() - t0, 2)
    for seed in range(5):
        t0 = time.perf_counter()
        reducer, reduced = reduction.fit_transform(x, cfg, seed, knn)
        out["seed_s"].append(round(time.perf_counter() - t0, 1))
        labels = kmeans(reduced, 77, seed, ClusteringConfig(n_clusters=77)).labels
        found = scores(y, labels)
        out["acc"].append(round(found["acc"], 2))
        out["nmi"].append(round(found["nmi"], 2))
    t0 = time.perf_counter()
    reducer.transform(x[:10] + 0.01)
    out["first_transform_s"] = round(time.perf_counter() - t0, 1)
    out["acc_mean"], out["nmi_mean"] = round(float(np.mean(out["acc"])), 2), round(float(np.mean(out["nmi"])), 2)
    out["acc_std"] = round(float(np.std(out["acc"])), 2)
    return out


def stage_seconds(vectors, folder: str) -> dict:
    """The reduce stage's seconds with its seeds one after another here and at once in Ray tasks."""
    import ray
    from llmclust.pipeline.reduction import ReductionConfig, reduce_stage
    from llmclust.store.runs import RunDir

    os.environ["NUMBA_CACHE_DIR"] = f"{Path(folder).parent}/numba_exact"  # what the exact run above compiled
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    run = RunDir(folder)
    upstream, out = run.stage("up", 1), {"cpus": os.cpu_count()}
    for mode in ("never", "always"):
        t0 = time.perf_counter()
        reduce_stage(run, ReductionConfig(method="umap", parallel_seeds=mode), vectors, upstream, list(range(5)), name=mode)
        out[f"{mode}_s"] = round(time.perf_counter() - t0, 1)
    ray.shutdown()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=TEST_CSV, help="a CSV with text and category columns (77 intents)")
    parser.add_argument("--out", type=Path, default=None, help="default: results/reduce_knn[_<stem>].json")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child[0], args.child[1], int(args.child[2]))))
        return
    import numpy as np
    import pandas as pd
    from llmclust.pipeline.embedding import EmbeddingConfig, make_embedder

    data = pd.read_csv(args.data)
    out = args.out or RESULTS / ("reduce_knn.json" if args.data == TEST_CSV else f"reduce_knn_{args.data.stem}.json")
    result = {"dataset": f"{args.data.parent.name}/{args.data.name}", "n": len(data), "k": 77, "embedder": "all-MiniLM-L6-v2",
              "machine": f"{os.cpu_count()} CPUs"}
    with tempfile.TemporaryDirectory() as tmp:
        vectors = make_embedder(EmbeddingConfig(device="cpu")).encode(data["text"].tolist())
        np.save(f"{tmp}/x.npy", vectors.astype(np.float32))
        np.save(f"{tmp}/y.npy", data["category"].to_numpy(dtype=object))
        for mode, max_rows in MODES.items():
            env = {**os.environ, "NUMBA_CACHE_DIR": f"{tmp}/numba_{mode}", "PYTHONPATH": str(REPO / "libs")}
            done = subprocess.run([sys.executable, "-W", "ignore", __file__, "--child", f"{tmp}/x.npy", f"{tmp}/y.npy",
                                   str(max_rows)], check=True, env=env, capture_output=True, text=True)
            result[mode] = json.loads(done.stdout.strip().splitlines()[-1])
            print(mode, result[mode], flush=True)
        result["parallel_seeds"] = stage_seconds(np.load(f"{tmp}/x.npy"), f"{tmp}/runs")
    result["load_average_after"] = round(os.getloadavg()[0], 2)
    write_result(out, result)


if __name__ == "__main__":
    main()
