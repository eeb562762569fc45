"""The baseline job end to end at 100k-1M texts: the driver's peak memory and each stage's time.

    python benchmarks/scale_job.py                                  # N = 100k, 300k, 1M -> scale.json "baseline_job"
    python benchmarks/scale_job.py --sizes 3000 --out /tmp/scale.json   # the CI smoke run
    python benchmarks/scale_job.py --sizes 100000 --auto-k              # clustering.n_clusters=auto -> "baseline_job_auto_k"

Corpus: synthetic texts (``scale_data.texts_of``: six words, three of them from the text's
topic of ~1000 texts) with the topic as the label column, in one Parquet file.

Embedding: the model-free ``hashing-384`` embedder (:mod:`llmclust.pipeline.hashing_embedder`) behind
the same embed stage (Ray Data actors, checkpointed parts). all-MiniLM-L6-v2 embeds ~300
texts/s on these 2 CPU cores, an hour per million texts, and what is measured here is
everything around the model: the driver's memory and the stages after embedding.

The job is ``cluster_jobs/baseline.py --config ray_configs/local.yaml`` (UMAP fitted on
``--fit-sample`` texts and transformed part by part, ``reduce.n_epochs: 0`` as gpu.yaml sets it
for large corpora, KMeans, evaluation, names, publish; no
report) in its own process, one KMeans/UMAP seed. The driver's peak RSS is the job's own
``driver_peak_rss_mb`` (result.json: its ``ru_maxrss``; Ray's workers are other processes),
and each stage's manifest records the driver's peak when it finished, so the stage that
raised it can be read off. ``projection_10m`` extrapolates the driver peak linearly from the
sizes measured.
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

import numpy as np

from common import REPO, RESULTS  # noqa: E402  (puts libs/ on the path)
OUT = RESULTS / "scale.json"

from scale_data import synthetic, texts_of, topics  # noqa: E402

K = 100  # clusters


def corpus(n: int, data: Path) -> Path:
    """corpus_<n>.parquet: id, text, topic (the label column), written once."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = data / f"corpus_{n}.parquet"
    if not path.exists():
        synthetic(n, data)
        topic = topics(n, data)
        pq.write_table(pa.table({"id": [f"t{i}" for i in range(n)], "text": texts_of(topic),
                                 "topic": [f"topic {t}" for t in topic.tolist()]}), path)
    return path


def run_job(n: int, data: Path, fit_sample: int, run_dir: Path, k: int | str = K) -> dict:
    overrides = [f"corpus.path={corpus(n, data)}", "corpus.id_column=id", "evaluation.label_column=topic",
                 "embedding.model=hashing-384", "embedding.batch_size=4096", "embedding.chunk_rows=200000",
                 f"reduce.fit_sample={fit_sample if n > fit_sample else 0}", "reduce.n_epochs=0",
                 f"clustering.n_clusters={k}",
                 "clustering.seeds=[0]", f"run.dir={run_dir}"]
    cmd = [sys.executable, str(REPO / "cluster_jobs" / "baseline.py"), "--config", str(REPO / "ray_configs" / "local.yaml"),
           "--no-report", *overrides]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - t0
    if done.returncode:
        raise RuntimeError(f"baseline job at N={n} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    result = json.loads((run_dir / "result.json").read_text())
    stages = {}
    for manifest in sorted(run_dir.glob("*/manifest.json")):
        m = json.loads(manifest.read_text())
        stages[m["stage"]] = {"seconds": m["seconds"], "driver_peak_rss_mb": m.get("driver_peak_rss_mb")}
    return {"seconds": round(seconds, 1), "driver_peak_rss_mb": result["driver_peak_rss_mb"], "stages": stages,
            "acc": result["metrics"]["acc_mean"], "nmi": result["metrics"]["nmi_mean"], "k": result["k"],
            "fit_sample": fit_sample if n > fit_sample else n, "seeds": 1, "load_average": round(os.getloadavg()[0], 2),
            **({"k_choice": {key: result["k_choice"][key] for key in ("k", "band", "k_by_sample", "sample")},
                "choose_k_vs_reduce_and_cluster": round(stages["choose_k"]["seconds"] / (
                    stages["reduce"]["seconds"] + stages["cluster"]["seconds"]), 2)} if k == "auto" else {})}


def projection(by_n: dict) -> dict:
    """The driver peak at 10M, a straight line through the sizes measured (MB = a + b * N)."""
    sizes = sorted(int(n) for n in by_n)
    if len(sizes) < 2:
        return {}
    peaks = [by_n[str(n)]["driver_peak_rss_mb"] for n in sizes]
    slope, intercept = np.polyfit(sizes, peaks, 1)
    return {"driver_peak_rss_mb": round(float(intercept + slope * 10_000_000)),
            "bytes_per_text": round(float(slope) * 2**20), "fixed_mb": round(float(intercept)),
            "from_sizes": sizes}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--fit-sample", type=int, default=20_000, help="texts UMAP is fitted on (reduce.fit_sample)")
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "llmclust_scale")
    parser.add_argument("--runs", type=Path, default=Path(tempfile.gettempdir()) / "llmclust_scale_runs")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--auto-k", action="store_true",
                        help=f"clustering.n_clusters=auto (the topics: about N / 1000) instead of {K}: what choosing K costs")
    args = parser.parse_args(argv)

    result = json.loads(args.out.read_text()) if args.out.exists() else {}
    key, k = ("baseline_job_auto_k", "auto") if args.auto_k else ("baseline_job", K)
    job = result.setdefault(key, {"method": __doc__.split("\n\n")[2:5], "sizes": {}})
    for n in args.sizes:
        job["sizes"][str(n)] = row = run_job(n, args.data, args.fit_sample, args.runs / f"{key}_{n}", k)
        print(f"N={n}: baseline job {row['seconds']} s, driver peak {row['driver_peak_rss_mb']} MB, "
              f"ACC {row['acc']}, K {row['k']}, load {row['load_average']}", flush=True)
        if args.auto_k:
            print(f"  choose_k {row['stages']['choose_k']['seconds']} s = {row['choose_k_vs_reduce_and_cluster']} x "
                  f"reduce + cluster; K {row['k_choice']}", flush=True)
        job["projection_10m"] = projection(job["sizes"])
        big = [int(s) for s in job["sizes"] if int(s) >= 1_000_000]
        if big:
            result["driver_peak_rss_mb_1m"] = job["sizes"][str(min(big))]["driver_peak_rss_mb"]
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
