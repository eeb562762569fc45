"""Benchmark: density-guided DPO co-training on Banking77 test, against the baseline and the
random-preference ablation, written to benchmarks/results/cotrain_banking77.json.

    python benchmarks/cotrain_banking77.py --per-class 2
    python benchmarks/cotrain_banking77.py --per-class 40 --config ray_configs/gpu.yaml   # on a GPU cluster

On CPU the full test set (3080 texts x 4 candidates) takes hours to generate, so the default
is a stratified subset (``--per-class`` texts of each of the 77 intents) and the tiny training
budgets of ``ray_configs/cotrain_local.yaml``; the JSON records exactly what ran. The three
runs share one LLM answer cache, so the ablation reuses iteration 0's interpretations.
The JSON is rebuilt from the run directories after each part (``--collect`` does only that), so a
stopped benchmark still reports what it measured, and rerunning the command resumes it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from llmclust import schema
from llmclust.cli.console import setup_logging
from llmclust.config import to_dict
from llmclust.methods import CoTrainClusterer, KMeansClusterer
from llmclust.methods.cotrain import columns as cotrain_columns
from llmclust.methods.job import load_job_config

from common import REPO, RESULTS, TEST_CSV  # noqa: E402  (puts libs/ on the path)
TEST_CSV = TEST_CSV


def stratified_subset(per_class: int, intents: int, out: Path, seed: int = 0) -> int:
    """``per_class`` texts of each of ``intents`` random intents (0: all 77) of Banking77 test, as a CSV."""
    data = pd.read_csv(TEST_CSV)
    if intents:
        names = pd.Series(sorted(data["category"].unique())).sample(n=intents, random_state=seed)
        data = data[data["category"].isin(set(names))]
    subset = data.groupby("category", group_keys=False).sample(n=per_class, random_state=seed)
    subset.sample(frac=1.0, random_state=seed).to_csv(out, index=False)
    return len(subset)


def _read(path: Path):
    return json.loads(path.read_text()) if path.exists() else None


def _greedy(run: Path, t: int) -> list[str] | None:
    path = run / f"iter{t}_interpretations" / "candidates.parquet"
    if not path.exists():
        return None
    table = pq.read_table(path, columns=[cotrain_columns.CANDIDATE, schema.RESPONSE]).to_pydict()
    return [r for c, r in zip(table[cotrain_columns.CANDIDATE], table[schema.RESPONSE]) if c == 0]


def greedy_changed(run: Path, t: int) -> float | None:
    """Share of texts whose greedy interpretation differs from the previous iteration's: did DPO move the LLM?"""
    now, before = _greedy(run, t), _greedy(run, t - 1)
    return None if now is None or before is None else round(sum(a != b for a, b in zip(now, before)) / len(now), 3)


def collect(root: Path, setup: dict) -> dict:
    """The report from whatever the run directories hold (a stopped benchmark still reports what it measured)."""
    report = {"setup": setup, "missing": []}
    baseline = _read(root / "baseline" / "evaluate" / "metrics.json")
    report["baseline"] = baseline and {"acc": baseline["acc_mean"], "nmi": baseline["nmi_mean"],
                                       "acc_std": baseline["acc_std"], "nmi_std": baseline["nmi_std"]}
    rows = _read(root / "density" / "iterations.json") or []
    report["iterations"] = [{k: v for k, v in r.items() if k not in ("embedder", "adapter")} for r in rows]
    for row in report["iterations"]:  # every step's loss: with batches of 4 pairs the ends alone are noisy
        dpo = _read(root / "density" / f"iter{row['iteration']}_dpo" / "manifest.json")
        if dpo:
            row["dpo_losses"] = [round(x, 4) for x in dpo["losses"]]
        if row["iteration"] > 0:
            row["greedy_changed"] = greedy_changed(root / "density", row["iteration"])
    report["seconds_per_iteration"] = [r["seconds"] for r in rows]
    ablation = _read(root / "random" / "iterations.json") or []
    report["random_preference"] = ablation[1:] and {
        "acc": ablation[1]["acc"], "nmi": ablation[1]["nmi"], "greedy_changed": greedy_changed(root / "random", 1),
        "dpo_loss_start": ablation[0]["dpo_loss_start"],
        "dpo_loss_end": ablation[0]["dpo_loss_end"], "pairs": ablation[0]["pairs"]} or None
    setup_iterations = setup["cotrain"]["iterations"]
    report["missing"] = ([] if report["baseline"] else ["baseline"]) + \
        [f"iteration {t}" for t in range(len(rows), setup_iterations + 1)] + \
        ([] if report["random_preference"] else ["random_preference"])
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(REPO / "ray_configs" / "cotrain_local.yaml"))
    parser.add_argument("--per-class", type=int, default=2, help="texts per intent (0: the whole test set)")
    parser.add_argument("--intents", type=int, default=0, help="random subset of intents (0: all 77; K follows)")
    parser.add_argument("--run-root", default=str(REPO / "runs" / "bench_cotrain"))
    parser.add_argument("--out", default=str(RESULTS / "cotrain_banking77.json"))
    parser.add_argument("--collect", action="store_true", help="only rewrite the JSON from the run directories")
    parser.add_argument("overrides", nargs="*", metavar="section.key=value")
    args = parser.parse_args(argv)
    setup_logging()
    root = Path(args.run_root)
    root.mkdir(parents=True, exist_ok=True)
    corpus = TEST_CSV
    if args.per_class:
        corpus = root / f"banking77_test_{args.intents or 77}x{args.per_class}.csv"
        if not corpus.exists():  # rewriting it would change its mtime, which the corpus stage fingerprints
            stratified_subset(args.per_class, args.intents, corpus)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    k = [f"clustering.n_clusters={args.intents}"] if args.intents else []

    def config(name: str, *extra: str):
        return load_job_config(args.config, [f"corpus.path={corpus}", f"run.dir={root / name}",
                                             f"llm.cache_dir={root / 'llm_cache'}", *k, *args.overrides, *extra])

    cfg = config("density")
    setup = {"corpus": str(TEST_CSV), "subset": str(corpus), "per_class": args.per_class, "intents": args.intents or 77,
             "n": sum(1 for _ in open(corpus)) - 1 if args.per_class else None, "k": cfg.clustering.n_clusters,
             "kmeans_seeds": cfg.clustering.seeds, "embedder": cfg.embedding.model, "llm": cfg.llm.model,
             "llm_backend": cfg.llm.backend, "audit": cfg.audit.enabled, "cotrain": to_dict(cfg.cotrain),
             "machine": f"{platform.machine()}, {os.cpu_count()} cores",
             "load_average_at_start": round(os.getloadavg()[0], 2)}

    def save():
        out.write_text(json.dumps(collect(root, setup), indent=2))

    if not args.collect:
        # 1. baseline: the embedder alone on the same texts
        KMeansClusterer(config("baseline", "method=baseline")).fit()
        save()
        # 2. co-training with density preference, one round first (iterations 0 and 1) ...
        CoTrainClusterer(config("density", "method=cotrain", "cotrain.iterations=1")).fit()
        save()
        # 3. the ablation: random instead of density preference, one round (iteration 0 comes from the cache)
        CoTrainClusterer(config("random", "method=cotrain", "cotrain.preference=random", "cotrain.iterations=1")).fit()
        save()
        # 4. ... then the density run resumes up to the configured number of iterations
        CoTrainClusterer(cfg).fit()
    save()
    print(out.read_text())
    print(f"outputs: {out} (runs in {root})")


if __name__ == "__main__":
    main()
