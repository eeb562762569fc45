"""ClusterLLM on the full Banking77 test set: baseline, oracle (ground-truth) judge, LLM judge.

    python benchmarks/clusterllm_banking77.py                      # all parts (SmolLM2 on CPU)
    python benchmarks/clusterllm_banking77.py --parts baseline,oracle
    python benchmarks/clusterllm_banking77.py --parts llm clusterllm.training.max_steps=100

Every part runs in its own run directory under --run-root (rerun to resume; finished
stages are reused) and merges its figures into --out:

* ``baseline``: ACC/NMI of the untrained embedder + KMeans (K = 77, 5 seeds);
* ``oracle``: ACC/NMI after fine-tuning on triplets answered from ground truth;
* ``llm``: ACC/NMI after fine-tuning on the LLM's triplet answers;
* ``triplet_accuracy``: on the first iteration's triplets that have a ground-truth answer,
  how often the LLM and the untrained embedder (the closer choice) pick the right one;
* ``granularity``: K chosen from oracle and LLM pair answers and by the classical
  estimates, all on one hierarchy (the oracle run's fine-tuned embeddings; true K 77);
* ``train_seconds`` and the settings used.

The oracle judge is built here from the label column; the job config cannot select it.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import yaml
from llmclust import schema
from llmclust.cli.console import setup_logging
from llmclust.methods import ClusterLLMClusterer, KMeansClusterer
from llmclust.methods.clusterllm import columns as clusterllm_columns
from llmclust.methods.clusterllm.judges import LLMJudge, OracleJudge
from llmclust.methods.clusterllm.stages import granularity_stage
from llmclust.methods.job import load_job_config
from llmclust.pipeline.corpus import load_corpus
from llmclust.pipeline.embedding import stored_vectors
from llmclust.pipeline.evaluation import read_ground_truth
from llmclust.ray_session import init_ray
from llmclust.store.runs import RunDir, Stage

from common import REPO, RESULTS, TEST_CSV, write_result  # noqa: E402  (puts libs/ on the path)
PARTS = ["baseline", "oracle", "llm"]


def job_config(args, part: str):
    cfg = load_job_config(args.config, [f"corpus.path={args.data}", "evaluation.label_column=category",
                                        "clustering.n_clusters=77", f"run.dir={Path(args.run_root) / part}",
                                        *args.overrides])
    cfg.method = "baseline" if part == "baseline" else "clusterllm"
    return cfg


def part_summary(run_dir: Path) -> tuple[dict, dict, float]:
    """ACC/NMI of a finished run, the ClusterLLM settings it ran with, its training seconds."""
    metrics = json.loads((run_dir / "result.json").read_text())["metrics"]
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    manifests = sorted(run_dir.glob("train_iter*/manifest.json"))
    seconds = sum(json.loads(m.read_text())["train_seconds"] for m in manifests)
    settings = {"clusterllm": config["clusterllm"], "llm": config.get("llm")} if manifests else {}
    return {k: metrics[k] for k in ("acc_mean", "acc_std", "nmi_mean", "nmi_std")}, settings, round(seconds, 1)


def triplet_accuracy(root: Path, labels: np.ndarray) -> dict:
    """LLM and untrained-embedder accuracy on iteration-1 triplets with a ground-truth answer.

    Both runs sample the same triplets (same embeddings, same config); the LLM figure is None
    until the LLM run's judge stage has finished.
    """
    part = "llm" if (root / "llm" / "judge_iter1" / "choices.parquet").exists() else "oracle"
    vectors = stored_vectors(root / part / "embed")
    table = pq.read_table(root / part / "judge_iter1" / "choices.parquet")
    rows = np.stack([table.column(c).to_numpy() for c in (clusterllm_columns.ANCHOR, clusterllm_columns.CHOICE_1, clusterllm_columns.CHOICE_2)], 1)
    truth = OracleJudge(labels).triplets(rows).choices()
    has_truth = truth > 0
    llm = table.column(clusterllm_columns.CHOICE).to_numpy() if part == "llm" else None
    sims = np.einsum("nd,nd->n", vectors[rows[:, 0]], vectors[rows[:, 1]]) - np.einsum(
        "nd,nd->n", vectors[rows[:, 0]], vectors[rows[:, 2]])
    embedder = np.where(sims >= 0, 1, 2)
    return {
        "triplets": len(rows), "with_ground_truth": int(has_truth.sum()),
        "llm": None if llm is None else round(float((llm[has_truth] == truth[has_truth]).mean()), 4),
        "llm_unanswered": None if llm is None else int((llm[has_truth] == 0).sum()),
        "embedder": round(float((embedder[has_truth] == truth[has_truth]).mean()), 4),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(REPO / "ray_configs" / "clusterllm_local.yaml"))
    parser.add_argument("--data", default=str(TEST_CSV))
    parser.add_argument("--run-root", default="runs/bench_clusterllm_banking77")
    parser.add_argument("--out", default=str(RESULTS / "clusterllm_banking77.json"))
    parser.add_argument("--parts", default=",".join(PARTS),
                        help="comma-separated subset of %(default)s to run ('' : only collect finished ones)")
    parser.add_argument("--oracle-pairs-per-merge", type=int, default=3,
                        help="λ for the oracle's granularity run (the LLM's comes from the config; CPU-bound)")
    parser.add_argument("overrides", nargs="*", metavar="section.key=value")
    args = parser.parse_args(argv)
    parts = [p for p in args.parts.split(",") if p]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"--parts: unknown {unknown}; expected a subset of {PARTS}")
    setup_logging()
    out = Path(args.out)
    result = json.loads(out.read_text()) if out.exists() else {}

    base_cfg = job_config(args, "baseline")
    init_ray(base_cfg.ray)
    table = load_corpus(base_cfg.corpus).table
    labels = read_ground_truth(base_cfg.evaluation, base_cfg.corpus, table.column(schema.ID).combine_chunks())
    for part in parts:
        cfg = job_config(args, part)
        judge = OracleJudge(labels) if part == "oracle" else None  # None: the configured LLM
        model = KMeansClusterer(cfg) if part == "baseline" else ClusterLLMClusterer(cfg, judge=judge)
        model.fit()

    root = Path(args.run_root)
    result["settings"] = {"data": args.data, "n": table.num_rows, "true_k": int(len(set(labels)))}
    for part in PARTS:  # every finished part, whichever invocation ran it
        if (root / part / "result.json").exists():
            result[part], settings, seconds = part_summary(root / part)
            result["settings"][part] = settings
            if part != "baseline":
                result.setdefault("train_seconds", {})[part] = seconds
    if any((root / p / "judge_iter1" / "choices.parquet").exists() for p in ("llm", "oracle")):
        result["triplet_accuracy"] = triplet_accuracy(root, labels)
    result.setdefault("llm", None)  # None: the LLM run has not finished (see the run directory)
    if (root / "oracle" / "result.json").exists():
        result["granularity"] = granularity(args, labels, root, include_llm=(root / "llm" / "result.json").exists())
    out.parent.mkdir(parents=True, exist_ok=True)
    write_result(out, result, {k: v for k, v in result.items() if k != "settings"})
    print(f"results: {out}")


def granularity(args, labels: np.ndarray, root: Path, include_llm: bool) -> dict:
    """K chosen on the oracle run's fine-tuned embeddings, by each judge and classical estimate."""
    cfg = job_config(args, "oracle")
    run = RunDir(cfg.run.dir)
    final = max((root / "oracle").glob("embed*"), key=lambda p: p.name)  # embed_iterN after embed
    vectors = stored_vectors(final)
    texts = pq.read_table(root / "oracle" / "corpus" / "texts.parquet").column(schema.TEXT).to_pylist()
    upstream = Stage.finished(final)
    out = {"true_k": int(len(set(labels))), "embeddings": str(final)}
    judges = {"oracle": OracleJudge(labels)}
    if include_llm:
        cl = cfg.clusterllm
        judges["llm"] = LLMJudge(cfg.llm, cl.task, cl.granularity.demonstrations, cl.triplet_question)
    for name, judge in judges.items():
        gcfg = cfg.clusterllm.granularity
        if name == "oracle":
            gcfg = replace(gcfg, pairs_per_merge=args.oracle_pairs_per_merge)
        choice = granularity_stage(run, gcfg, judge, vectors, texts, upstream, cfg.audit, cfg.clustering.n_clusters,
                                   name=f"granularity_{name}")
        out[name] = {"pairs_per_merge": gcfg.pairs_per_merge,
                     **{k: choice[k] for k in ("k", "k_from_pairs", "pairs", "answered", "unanswered", "said_same", "audit")}}
        out["classical"] = choice["classical"]
    return out


if __name__ == "__main__":
    main()
