"""LUMI vs. the plain-embedding baseline on Banking77 test, with the pooling ablation.

    python benchmarks/lumi_banking77.py                          # all 3080 texts, K = 77
    python benchmarks/lumi_banking77.py --limit 770              # stratified: 10 texts per intent
    python benchmarks/lumi_banking77.py --limit 100 --classes 20 # 5 texts of each of 20 intents, K = 20
    python benchmarks/lumi_banking77.py --limit 770 lumi.label_context_k=10   # any job override

Writes benchmarks/results/lumi_banking77.json. The baseline (KMeans on the same MiniLM
embeddings, same seeds) and the ablation (KMeans on the label-pooled vectors h, and on the
text-pooled vectors r) are measured in the same run, and so is an oracle sweep (the true
intent's name standing in for the LLM's labels on a share of the texts) that shows how good
the labels must be. Rerunning with the same --run-dir resumes; the LLM response cache means
finished prompts are never asked again.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from llmclust import schema
from llmclust.cli.console import setup_logging
from llmclust.methods import LumiClusterer
from llmclust.methods.job import load_job_config
from llmclust.methods.lumi import columns as lumi_columns
from llmclust.pipeline.clustering import cluster_over_seeds
from llmclust.pipeline.embedding import stored_vectors
from llmclust.pipeline.evaluation import read_ground_truth, scores, summarize

from common import REPO, RESULTS, TEST_CSV  # noqa: E402  (puts libs/ on the path)
DATA = TEST_CSV
OUT = RESULTS / "lumi_banking77.json"
EXAMPLES = 12


def stratified_subset(source: Path, limit: int, classes: int, target: Path) -> int:
    """Write the first ``limit`` rows of a round-robin over the first ``classes`` intents (0: all)."""
    rows = list(csv.DictReader(source.open()))
    by_class: dict[str, list] = {}
    for row in rows:
        by_class.setdefault(row["category"], []).append(row)
    if classes:
        by_class = dict(sorted(by_class.items())[:classes])
    picked, depth = [], 0
    while len(picked) < limit and any(depth < len(v) for v in by_class.values()):
        picked += [v[depth] for v in by_class.values() if depth < len(v)]
        depth += 1
    picked = picked[:limit]
    with target.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["text", "category"])
        writer.writeheader()
        writer.writerows({"text": r["text"], "category": r["category"]} for r in picked)
    return len({r["category"] for r in picked})


def mean_scores(vectors: np.ndarray, truth: np.ndarray, cfg) -> dict:
    s = summarize([scores(truth, r.labels) for r in cluster_over_seeds(vectors, cfg.clustering)])
    return {k: s[k] for k in ("acc_mean", "acc_std", "nmi_mean", "nmi_std")}


def llm_totals(run_dir: Path) -> dict:
    manifests = [json.loads((run_dir / s / "manifest.json").read_text()) for s in ("lumi_labels", "lumi_multilabel")]
    answers = sum(m["rows"] for m in manifests)
    return {"llm_calls": sum(m["calls"] for m in manifests), "llm_seconds": round(sum(m["llm_seconds"] for m in manifests), 1),
            "parse_failure_rate": round(sum(m["parse_failures"] for m in manifests) / max(answers, 1), 4),
            "per_stage": {m["stage"]: {k: m[k] for k in ("rows", "calls", "cache_hits", "llm_seconds", "retried",
                                                        "parse_failures", "parse_failure_rate", "errors")} for m in manifests}}


def label_quality(run_dir: Path, truth: np.ndarray) -> dict:
    """How well the initial pseudo-labels alone separate the true intents, and examples."""
    from sklearn.metrics import normalized_mutual_info_score

    table = pq.read_table(run_dir / "lumi_pool" / "pseudo_labels.parquet").to_pydict()
    first = table[lumi_columns.PSEUDO_LABEL]
    purity = sum(Counter(l for l, t in zip(first, truth) if t == c).most_common(1)[0][1] for c in set(truth)) / len(truth)
    picks = np.random.default_rng(0).choice(len(first), size=min(EXAMPLES, len(first)), replace=False)
    return {
        "distinct_initial_labels": len(set(first)),
        "initial_label_nmi_vs_truth": round(100 * normalized_mutual_info_score(truth, first), 2),
        "class_majority_label_share": round(100 * purity, 2),
        "examples": [{"text": table[schema.TEXT][i], "intent": str(truth[i]), "pseudo_label": first[i],
                      "pseudo_labels": table[lumi_columns.PSEUDO_LABELS][i]} for i in picks],
    }


def oracle_label_sweep(run_dir: Path, truth: np.ndarray, vectors: np.ndarray, cfg, shares=(0.1, 0.25, 0.5, 0.75)) -> list[dict]:
    """How good the pseudo-labels must be for pooling to pay off (an oracle ablation: reads labels).

    For a random share of the texts the LLM's label set is replaced by the true intent's name
    ("card arrival"); the others keep SmolLM2's labels. The pooling and KMeans are LUMI's own.
    """
    from llmclust.methods.lumi.pooling import (
        incidence,
        label_level_pool,
        text_level_pool,
    )
    from llmclust.pipeline.embedders import SentenceEmbedder

    llm_sets = pq.read_table(run_dir / "lumi_pool" / "pseudo_labels.parquet").column(lumi_columns.PSEUDO_LABELS).to_pylist()
    intent_names = [str(t).replace("_", " ") for t in truth]
    names = sorted({l for s in llm_sets for l in s} | set(intent_names))
    lookup = {name: i for i, name in enumerate(names)}
    label_vectors = SentenceEmbedder(cfg.embedding).encode(names)
    rng, out = np.random.default_rng(cfg.lumi.seed), []
    for share in shares:
        fixed = rng.random(len(truth)) < share
        sets = [[lookup[intent_names[i]]] if fixed[i] else [lookup[l] for l in s] for i, s in enumerate(llm_sets)]
        S = incidence(sets, len(names))
        h = label_level_pool(vectors, label_vectors, S)
        r, _ = text_level_pool(h, S, cfg.lumi.text_pool_top_m, cfg.lumi.label_posting_cap, cfg.lumi.seed)
        out.append({"true_label_share": share, "label_pooling_only": mean_scores(h, truth, cfg),
                    "label_and_text_pooling": mean_scores(r, truth, cfg)})
    return out


def stage_seconds(run_dir: Path) -> float:
    """The job's compute time over every invocation: the sum of its stages' recorded seconds."""
    return round(sum(json.loads(m.read_text())["seconds"] for m in run_dir.glob("*/manifest.json")), 1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(REPO / "ray_configs" / "lumi_local.yaml"))
    parser.add_argument("--limit", type=int, default=0, help="stratified subset of this many texts (0: all)")
    parser.add_argument("--classes", type=int, default=0, help="with --limit: only the first N intents (0: all 77)")
    parser.add_argument("--run-dir", default=str(REPO / "runs" / "bench_lumi_banking77"))
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("overrides", nargs="*", metavar="section.key=value")
    args = parser.parse_args(argv)
    setup_logging()
    t0 = time.time()
    run_dir = Path(args.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    corpus, classes = DATA, 77
    if args.limit:
        corpus = run_dir / f"banking77_test_stratified_{args.limit}_{args.classes}.csv"
        classes = stratified_subset(DATA, args.limit, args.classes, corpus)
    cfg = load_job_config(args.config, [f"corpus.path={corpus}", f"run.dir={run_dir}", "method=lumi",
                                        f"clustering.n_clusters={classes}", *args.overrides])

    model = LumiClusterer(cfg).fit()
    ids = pq.read_table(run_dir / "corpus" / "texts.parquet").column(schema.ID).combine_chunks()
    truth = read_ground_truth(cfg.evaluation, cfg.corpus, ids)
    vectors = stored_vectors(run_dir / "embed")
    baseline = mean_scores(vectors, truth, cfg)
    result = {
        "n": len(truth), "k": classes, "subset": (f"stratified: {args.limit} of 3080 texts, {classes} of 77 intents, equal share per intent"
                                          if args.limit else "full test.csv"),
        "embedder": cfg.embedding.model, "llm": cfg.llm.model, "seeds": cfg.clustering.seeds,
        "acc_mean": model.metrics_["acc_mean"], "nmi_mean": model.metrics_["nmi_mean"],
        "acc_std": model.metrics_["acc_std"], "nmi_std": model.metrics_["nmi_std"],
        "baseline_acc_mean": baseline["acc_mean"], "baseline_nmi_mean": baseline["nmi_mean"],
        "baseline_acc_std": baseline["acc_std"], "baseline_nmi_std": baseline["nmi_std"],
        "ablation": {"label_pooling_only": mean_scores(model.label_pooled_, truth, cfg),
                     "label_and_text_pooling": mean_scores(model.text_pooled_, truth, cfg)},
        **llm_totals(run_dir),
        "lumi_report": {k: v for k, v in model.lumi_report_.items() if k not in ("fingerprint", "finished_at")},
        "label_quality": label_quality(run_dir, truth),
        "oracle_label_sweep": oracle_label_sweep(run_dir, truth, vectors, cfg),
        "config": {"llm": vars(cfg.llm), "lumi": vars(cfg.lumi)},
        "total_seconds": stage_seconds(run_dir),
        "invocation_seconds": round(time.time() - t0, 1),
        "note": "total_seconds: the job's stages over every invocation (a resumed run counts each stage once); "
                "invocation_seconds: this call, with the baseline, ablation and oracle sweep. llm_seconds and "
                "llm_calls are those of the invocations that finished each LLM stage.",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps({k: result[k] for k in ("n", "k", "acc_mean", "nmi_mean", "baseline_acc_mean",
                                             "baseline_nmi_mean", "ablation", "oracle_label_sweep", "llm_calls",
                                             "parse_failure_rate", "total_seconds")}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
