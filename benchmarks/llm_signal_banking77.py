"""Does a weak LLM still make clusters worse? Every LLM method with SmolLM2 beside the baseline.

    python benchmarks/llm_signal_banking77.py                          # every part, SmolLM2 on CPU
    python benchmarks/llm_signal_banking77.py --parts clusterllm,oracle_audit

Parts (each in its own run directory under --run-root; rerun to resume, finished stages are
reused), merged into --out:

* ``baseline``: all-MiniLM-L6-v2 + (UMAP) + KMeans on the full Banking77 test set (3080 texts);
* ``lumi``, ``clusterllm``: the method with the configured LLM (SmolLM2-135M-Instruct) on the
  same texts, with the LLM-signal audit (:mod:`llmclust.llm.audit`) deciding the LLM's weight;
* ``cotrain``: co-training on a stratified subset (``--cotrain-intents`` x ``--cotrain-per-intent``
  texts; on 2 CPU cores the full set's interpretations alone take hours), beside the
  baseline on the same subset;
* ``oracle_audit``: the audit run on ground-truth answers to the same questions (ClusterLLM's
  iteration-1 triplets; LUMI's labels replaced by the true intent names), to show it keeps a
  good signal at full weight. It asks no LLM.

``triplet_accuracy`` compares, on the ClusterLLM run's triplets that have a true answer, the
judge's log-probability answers (both orders) with the embedder's closer choice; the
generated-text figure comes from ``benchmarks/triplet_questions.py`` when its result exists.
Writes ``benchmarks/results/llm_signal_banking77.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from llmclust.cli.console import setup_logging
from llmclust.llm.audit import AuditConfig, audit_votes
from llmclust.llm.two_views import Votes
from llmclust.methods import (
    ClusterLLMClusterer,
    CoTrainClusterer,
    KMeansClusterer,
    LumiClusterer,
)
from llmclust.methods.clusterllm import columns as clusterllm_columns
from llmclust.methods.clusterllm.judges import OracleJudge
from llmclust.methods.clusterllm.stages import embedder_preference
from llmclust.methods.job import load_job_config
from llmclust.pipeline.embedders import SentenceEmbedder
from llmclust.pipeline.embedding import EmbeddingConfig, stored_vectors
from llmclust.ray_session import init_ray

from common import REPO, RESULTS, TEST_CSV, write_result  # noqa: E402  (puts libs/ on the path)
PARTS = ["baseline", "lumi", "clusterllm", "cotrain", "oracle_audit"]
CONFIGS = {"baseline": "local.yaml", "lumi": "lumi_local.yaml", "clusterllm": "clusterllm_local.yaml",
           "cotrain": "cotrain_local.yaml", "cotrain_baseline": "local.yaml"}
CLUSTERERS = {"baseline": KMeansClusterer, "lumi": LumiClusterer, "clusterllm": ClusterLLMClusterer,
              "cotrain": CoTrainClusterer, "cotrain_baseline": KMeansClusterer}
METRICS = ("acc_mean", "acc_std", "nmi_mean")


def stratified_subset(data: str, intents: int, per_intent: int, out: Path) -> Path:
    """The first ``per_intent`` texts of the first ``intents`` intents (sorted by name)."""
    frame = pd.read_csv(data)
    keep = sorted(frame["category"].unique())[:intents]
    subset = frame[frame["category"].isin(keep)].groupby("category", sort=True).head(per_intent)
    out.parent.mkdir(parents=True, exist_ok=True)
    subset.to_csv(out, index=False)
    return out


def run_part(args, part: str, data: str, k: int) -> None:
    cfg = load_job_config(str(REPO / "ray_configs" / CONFIGS[part]), [
        f"corpus.path={data}", "evaluation.label_column=category", f"clustering.n_clusters={k}",
        f"run.dir={Path(args.run_root) / part}", *args.overrides])
    CLUSTERERS[part](cfg).fit()


def summary(run_dir: Path) -> dict | None:
    if not (run_dir / "result.json").exists():
        return None
    result = json.loads((run_dir / "result.json").read_text())
    out = {m: result["metrics"][m] for m in METRICS}
    audit = result.get("llm_audit")
    if audit:
        out["llm_weight"] = min(a["weight"] for a in audit.values())
        out["audit"] = audit
    return out


def clusterllm_triplets(root: Path, labels: np.ndarray):
    """Iteration-1 triplets of the ClusterLLM run, the judge's votes and the base embedder's vectors."""
    table = pq.read_table(root / "clusterllm" / "judge_iter1" / "choices.parquet")
    rows = np.stack([table.column(c).to_numpy() for c in (clusterllm_columns.ANCHOR, clusterllm_columns.CHOICE_1, clusterllm_columns.CHOICE_2)], 1)
    votes = Votes(table.column(clusterllm_columns.P_FIRST).to_numpy(), table.column(clusterllm_columns.CONSISTENT).to_numpy(zero_copy_only=False))
    return rows, votes, stored_vectors(root / "clusterllm" / "embed")


def triplet_accuracy(root: Path, labels: np.ndarray) -> dict:
    rows, votes, vectors = clusterllm_triplets(root, labels)
    truth = OracleJudge(labels).triplets(rows).choices()
    has = truth > 0
    embedder_first, _ = embedder_preference(vectors, rows)
    llm = votes.choices()
    out = {"triplets_with_truth": int(has.sum()),
           "logprob": round(100 * float((llm[has] == truth[has]).mean()), 1),
           "logprob_consistent": round(100 * float((llm[has & votes.consistent] == truth[has & votes.consistent]).mean()), 1)
           if (has & votes.consistent).any() else None,
           "consistent_share": round(100 * float(votes.consistent[has].mean()), 1),
           "embedder": round(100 * float((np.where(embedder_first, 1, 2)[has] == truth[has]).mean()), 1)}
    probe = RESULTS / "triplet_questions.json"
    if probe.exists():  # generated text on the probe's triplets (the same sampler and embedder)
        out["generated"] = json.loads(probe.read_text())["generated"]["accuracy"]
        out["generated_on"] = "the 200 answerable triplets of benchmarks/triplet_questions.py (same sampler)"
    return out


def oracle_audit(root: Path, labels: np.ndarray, texts: list[str], device: str) -> dict:
    """The audit on ground-truth answers: ClusterLLM's triplets, and intent names as LUMI labels."""
    from llmclust.llm.audit import description_preference, description_questions

    cfg = AuditConfig()
    rows, _, vectors = clusterllm_triplets(root, labels)
    triplets = audit_votes("triplets", OracleJudge(labels).triplets(rows), *embedder_preference(vectors, rows), cfg)
    names = np.array([str(l).replace("_", " ") for l in labels], dtype=object)
    _, name_of = np.unique(names.astype(str), return_inverse=True)
    pairs = description_questions(vectors, name_of, cfg.sample, cfg.seed)
    name_vectors = SentenceEmbedder(EmbeddingConfig(device=device)).encode(list(names))
    # an oracle always prefers the text's own (true) intent name, in both orders
    label_votes = Votes(np.ones(len(pairs)), np.ones(len(pairs), bool))
    label_audit = audit_votes("labels", label_votes, *description_preference(vectors, name_vectors, pairs), cfg)
    return {"clusterllm_triplets": triplets.to_dict(), "lumi_labels": label_audit.to_dict()}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(TEST_CSV))
    ap.add_argument("--run-root", default="runs/bench_llm_signal")
    ap.add_argument("--out", default=str(RESULTS / "llm_signal_banking77.json"))
    ap.add_argument("--parts", default=",".join(PARTS))
    ap.add_argument("--cotrain-intents", type=int, default=20)
    ap.add_argument("--cotrain-per-intent", type=int, default=10)
    ap.add_argument("overrides", nargs="*", metavar="section.key=value")
    args = ap.parse_args(argv)
    parts = [p for p in args.parts.split(",") if p]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        ap.error(f"--parts: unknown {unknown}; expected a subset of {PARTS}")
    setup_logging()
    root, out = Path(args.run_root), Path(args.out)
    frame = pd.read_csv(args.data)
    labels, k = frame["category"].to_numpy(), frame["category"].nunique()
    subset = stratified_subset(args.data, args.cotrain_intents, args.cotrain_per_intent, root / "cotrain_subset.csv")
    init_ray(load_job_config(None, []).ray)
    for part in parts:
        if part in ("baseline", "lumi", "clusterllm"):
            run_part(args, part, args.data, k)
        elif part == "cotrain":
            run_part(args, "cotrain_baseline", str(subset), args.cotrain_intents)
            run_part(args, "cotrain", str(subset), args.cotrain_intents)

    result = json.loads(out.read_text()) if out.exists() else {}
    result["setup"] = {"data": args.data, "n": len(frame), "k": int(k), "llm": "SmolLM2-135M-Instruct (embedded)",
                       "embedder": "all-MiniLM-L6-v2", "overrides": args.overrides,
                       "cotrain_subset": {"intents": args.cotrain_intents, "per_intent": args.cotrain_per_intent,
                                          "n": int(len(pd.read_csv(subset)))}}
    result["baseline"] = summary(root / "baseline") or result.get("baseline")
    methods = result.setdefault("methods", {})
    for method in ("lumi", "clusterllm", "cotrain"):
        found = summary(root / method)
        if found:
            methods[method] = found
    if "cotrain" in methods:
        methods["cotrain"]["baseline_same_subset"] = summary(root / "cotrain_baseline")
    if (root / "clusterllm" / "judge_iter1" / "choices.parquet").exists():
        result["triplet_accuracy"] = triplet_accuracy(root, labels)
        if "oracle_audit" in parts or "oracle_llm_weight" not in result:
            audits = oracle_audit(root, labels, frame["text"].astype(str).tolist(), "cpu")
            result["oracle_llm_weight"] = {name: a["weight"] for name, a in audits.items()}
            result["oracle_audit"] = audits
    out.parent.mkdir(parents=True, exist_ok=True)
    write_result(out, result, {k: v for k, v in result.items() if k != "setup"})


if __name__ == "__main__":
    main()
