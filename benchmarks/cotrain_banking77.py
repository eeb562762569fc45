"""Benchmark: density-guided DPO co-training on Banking77 test, against the baseline and the
random-preference ablation, written to benchmarks/results/cotrain_banking77.json.

    python benchmarks/cotrain_banking77.py --per-class 2
    python benchmarks/cotrain_banking77.py --per-class 40 --config ray_configs/gpu_cotrain.yaml   # on a GPU cluster

On CPU the full test set (3080 texts x 4 candidates) takes hours to generate, so the default
is a stratified subset (``--per-class`` texts of each of the 77 intents) and the tiny training
budgets of ``ray_configs/cotrain_local.yaml``; the JSON records exactly what ran. The three
runs share one LLM answer cache, so the ablation reuses iteration 0's interpretations.
The JSON is rewritten after each part, so a stopped benchmark still leaves what it measured.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import pandas as pd

from llmclust.cli import setup_logging
from llmclust.config import to_dict
from llmclust.job import load_job_config
from llmclust.methods import CoTrainClusterer, KMeansClusterer

REPO = Path(__file__).resolve().parents[1]
TEST_CSV = REPO.parent / "shared" / "data" / "banking77" / "test.csv"


def stratified_subset(per_class: int, intents: int, out: Path, seed: int = 0) -> int:
    """``per_class`` texts of each of ``intents`` random intents (0: all 77) of Banking77 test, as a CSV."""
    data = pd.read_csv(TEST_CSV)
    if intents:
        names = pd.Series(sorted(data["category"].unique())).sample(n=intents, random_state=seed)
        data = data[data["category"].isin(set(names))]
    subset = data.groupby("category", group_keys=False).sample(n=per_class, random_state=seed)
    subset.sample(frac=1.0, random_state=seed).to_csv(out, index=False)
    return len(subset)


def _metrics(model) -> dict:
    m = model.metrics_
    return {"acc": m["acc_mean"], "nmi": m["nmi_mean"], "acc_std": m["acc_std"], "nmi_std": m["nmi_std"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(REPO / "ray_configs" / "cotrain_local.yaml"))
    parser.add_argument("--per-class", type=int, default=2, help="texts per intent (0: the whole test set)")
    parser.add_argument("--intents", type=int, default=0, help="random subset of intents (0: all 77; K follows)")
    parser.add_argument("--run-root", default=str(REPO / "runs" / "bench_cotrain"))
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "cotrain_banking77.json"))
    parser.add_argument("overrides", nargs="*", metavar="section.key=value")
    args = parser.parse_args(argv)
    setup_logging()
    root = Path(args.run_root)
    root.mkdir(parents=True, exist_ok=True)
    corpus = TEST_CSV
    if args.per_class:
        corpus = root / f"banking77_test_{args.intents or 77}x{args.per_class}.csv"
        stratified_subset(args.per_class, args.intents, corpus)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    k = [f"clustering.n_clusters={args.intents}"] if args.intents else []

    def config(name: str, *extra: str):
        return load_job_config(args.config, [f"corpus.path={corpus}", f"run.dir={root / name}",
                                             f"llm.cache_dir={root / 'llm_cache'}", *k, *args.overrides, *extra])

    cfg = config("density")
    report = {"setup": {"corpus": str(TEST_CSV), "per_class": args.per_class, "intents": args.intents or 77, "k": cfg.clustering.n_clusters,
                        "kmeans_seeds": cfg.clustering.seeds, "embedder": cfg.embedding.model, "llm": cfg.llm.model,
                        "llm_backend": cfg.llm.backend, "cotrain": to_dict(cfg.cotrain),
                        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
                        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}}

    def save():
        out.write_text(json.dumps(report, indent=2))

    # 1. baseline: the embedder alone on the same texts
    baseline = KMeansClusterer(config("baseline", "method=baseline")).fit()
    report["setup"]["n"] = len(baseline.labels_)
    report["baseline"] = _metrics(baseline)
    save()
    # 2. co-training with density preference, one round first (iterations 0 and 1) ...
    def cotrain(iterations: int) -> None:
        started = time.time()
        model = CoTrainClusterer(cfg if iterations == cfg.cotrain.iterations else config(
            "density", "method=cotrain", f"cotrain.iterations={iterations}")).fit()
        report["iterations"] = model.iterations_
        report["final"] = _metrics(model)
        report["seconds_per_iteration"] = [r["seconds"] for r in model.iterations_]
        report["wall_seconds_last_call"] = round(time.time() - started, 1)
        save()

    cotrain(1)
    # 3. the ablation: random instead of density preference, one training round (iteration 0 is cached)
    ablation = CoTrainClusterer(config("random", "method=cotrain", "cotrain.preference=random", "cotrain.iterations=1")).fit()
    first, one = ablation.iterations_
    report["random_preference"] = {"acc": one["acc"], "nmi": one["nmi"], "dpo_loss_start": first["dpo_loss_start"],
                                   "dpo_loss_end": first["dpo_loss_end"], "pairs": first["pairs"]}
    save()
    # 4. ... then the density run resumes to the configured number of iterations
    cotrain(cfg.cotrain.iterations)
    print(json.dumps({k: report[k] for k in ("baseline", "random_preference", "seconds_per_iteration")}, indent=2))
    print(f"outputs: {out} (runs in {root})")


if __name__ == "__main__":
    main()
