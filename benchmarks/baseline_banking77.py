"""Baseline reproduction: all-MiniLM-L6-v2 + KMeans (K = 77, 5 seeds) on Banking77 test.

    python benchmarks/baseline_banking77.py
    python benchmarks/baseline_banking77.py --data ../shared/data/banking77/train.csv --out /tmp/b.json

Runs the real baseline job (local Ray, checkpointed run directory) and writes
benchmarks/results/baseline_banking77.json. Reference (LUMI paper, Table 1): ACC 61.27, NMI 79.08.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "libs"))

from llmclust.cli import setup_logging  # noqa: E402
from llmclust.job import load_job_config  # noqa: E402
from llmclust.methods import KMeansClusterer  # noqa: E402

PAPER = {"acc": 61.27, "nmi": 79.08}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(REPO.parent / "shared/data/banking77/test.csv"))
    p.add_argument("--k", type=int, default=77)
    p.add_argument("--out", default=str(REPO / "benchmarks/results/baseline_banking77.json"))
    args = p.parse_args(argv)
    setup_logging()
    with tempfile.TemporaryDirectory() as run_dir:
        cfg = load_job_config(REPO / "ray_configs/local.yaml", [
            f"corpus.path={args.data}", f"run.dir={run_dir}", f"clustering.n_clusters={args.k}",
            "clustering.seeds=[0,1,2,3,4]", "evaluation.label_column=category"])
        start = time.time()
        model = KMeansClusterer(cfg).fit()
        seconds = time.time() - start
    m = model.metrics_
    result = {
        "dataset": Path(args.data).parent.name + "/" + Path(args.data).name, "n": len(model.labels_), "k": args.k,
        "embedder": cfg.embedding.model, "seeds": cfg.clustering.seeds,
        "acc_mean": m["acc_mean"], "acc_std": m["acc_std"], "nmi_mean": m["nmi_mean"], "nmi_std": m["nmi_std"],
        "ari_mean": m["ari_mean"], "seconds": round(seconds, 1),
        "paper": PAPER, "delta_acc": round(m["acc_mean"] - PAPER["acc"], 2), "delta_nmi": round(m["nmi_mean"] - PAPER["nmi"], 2),
        "kmeans": "scikit-learn Lloyd, n_init=1 per seed, max_iter=300",
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
