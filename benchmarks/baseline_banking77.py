"""Baseline reproduction: all-MiniLM-L6-v2 + KMeans (K = 77, 5 seeds) on Banking77 test, and the
same job with the local config's default reduce stage (UMAP, a reducer per seed).

    python benchmarks/baseline_banking77.py
    python benchmarks/baseline_banking77.py --data ../shared/data/banking77/train.csv --out /tmp/b.json

Runs the real baseline job twice (local Ray, checkpointed run directory; ``reduce.method=none``
for the paper's setting, then the default) and writes benchmarks/results/baseline_banking77.json.
For the reduced run it also reports the share of the corpus's own texts that ``predict`` (new
text -> embedder -> the published reducer -> nearest centre) puts back in their cluster.
Reference (LUMI paper, Table 1): ACC 61.27, NMI 79.08.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import REPO, RESULTS, TEST_CSV, write_result  # noqa: E402  (puts libs/ on the path)

import pyarrow.parquet as pq  # noqa: E402
from llmclust.cli.console import setup_logging  # noqa: E402
from llmclust.config import to_dict  # noqa: E402
from llmclust.methods import KMeansClusterer  # noqa: E402
from llmclust.methods.job import load_job_config  # noqa: E402

PAPER = {"acc": 61.27, "nmi": 79.08}


def fit(args, overrides: list[str]):
    """The baseline job on ``args.data`` in a fresh run directory: (fitted model, seconds, config)."""
    run_dir = tempfile.mkdtemp(prefix="baseline-b77-")
    cfg = load_job_config(REPO / "ray_configs/local.yaml", [
        f"corpus.path={args.data}", f"run.dir={run_dir}", f"clustering.n_clusters={args.k}",
        "clustering.seeds=[0,1,2,3,4]", "evaluation.label_column=category", *overrides])
    start = time.time()
    model = KMeansClusterer(cfg).fit()
    return model, time.time() - start, cfg


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(TEST_CSV))
    p.add_argument("--k", type=int, default=77)
    p.add_argument("--out", default=str(RESULTS / "baseline_banking77.json"))
    args = p.parse_args(argv)
    setup_logging()
    model, seconds, cfg = fit(args, ["reduce.method=none"])
    m = model.metrics_
    result = {
        "dataset": Path(args.data).parent.name + "/" + Path(args.data).name, "n": len(model.labels_), "k": args.k,
        "embedder": cfg.embedding.model, "seeds": cfg.clustering.seeds,
        "acc_mean": m["acc_mean"], "acc_std": m["acc_std"], "nmi_mean": m["nmi_mean"], "nmi_std": m["nmi_std"],
        "ari_mean": m["ari_mean"], "seconds": round(seconds, 1),
        "paper": PAPER, "delta_acc": round(m["acc_mean"] - PAPER["acc"], 2), "delta_nmi": round(m["nmi_mean"] - PAPER["nmi"], 2),
        "kmeans": "scikit-learn Lloyd, n_init=1 per seed, max_iter=300",
    }
    model, seconds, cfg = fit(args, [])
    texts = pq.read_table(model.run_dir_ / "assignments.parquet").column("text").to_pylist()
    m = model.metrics_
    result["reduced"] = {
        "reduce": to_dict(cfg.reduce), "acc_mean": m["acc_mean"], "acc_std": m["acc_std"], "nmi_mean": m["nmi_mean"],
        "nmi_std": m["nmi_std"], "ari_mean": m["ari_mean"], "seconds": round(seconds, 1), "published_seed": model.seed_,
        "predict_reproduces_share": round(float((model.predict(texts) == model.labels_).mean()), 4),
    }
    write_result(args.out, result)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
