"""ClusterLLM's stages, each checkpointed: triplets -> judge -> train -> (granularity).

* ``triplet_stage``: entropy-sampled (anchor, choice 1, choice 2) rows (:mod:`.triplets`);
* ``judge_stage``: the judge's choice per triplet (0: no answer, counted and left out);
* ``train_stage``: InfoNCE fine-tuning of the embedder on the answered triplets (Ray Train);
* ``granularity_stage``: K from the judge's pair answers along a merge hierarchy (:mod:`.granularity`).

Example::

    sample, stage = triplet_stage(run, cfg.triplets, vectors, embed, "triplets_iter1")
    choices, stage = judge_stage(run, OracleJudge(labels), sample, texts, stage, "judge_iter1")
"""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from llmclust import schema
from llmclust.methods.clusterllm.config import ClusterLLMConfig, GranularityConfig, TripletConfig
from llmclust.methods.clusterllm.granularity import build_hierarchy, choose_k, classical_estimates, sample_pairs
from llmclust.methods.clusterllm.judges import TRIPLET_NO_ANSWER, JudgeContext, PairJudge, TripletJudge
from llmclust.methods.clusterllm.triplets import TripletSample, sample_triplets
from llmclust.runs import RunDir, Stage, write_json, write_table
from llmclust.training.embedder_trainer import TrainResult, train_embedder
from llmclust.training.triplet_infonce import TripletInfoNCELoss

log = logging.getLogger(__name__)


def triplet_stage(run: RunDir, cfg: TripletConfig, vectors: np.ndarray, upstream: Stage,
                  name: str) -> tuple[TripletSample, Stage]:
    stage = run.stage(name, cfg, upstream.fingerprint)

    def write(stage: Stage, sample: TripletSample) -> dict:
        write_table(stage.file("triplets.parquet"), sample.to_table())
        if not sample.report["budget_reached"]:
            log.warning("%s: only %d of %d triplets could be drawn (%s)", name, len(sample.rows), cfg.budget, sample.report)
        return {"rows": len(sample.rows), "report": sample.report}

    sample = stage.run(lambda: sample_triplets(vectors, cfg), write,
                       lambda stage: TripletSample.from_table(pq.read_table(stage.file("triplets.parquet"))))
    return sample, stage


def judge_stage(run: RunDir, judge: TripletJudge, sample: TripletSample, texts: list[str], upstream: Stage,
                name: str) -> tuple[np.ndarray, Stage]:
    """The judge's choice per triplet (0: no answer, counted and left out of training)."""
    stage = run.stage(name, judge.name, upstream.fingerprint)

    def write(stage: Stage, choices: np.ndarray) -> dict:
        table = sample.to_table().append_column(schema.CHOICE, pa.array(choices, pa.int8()))
        write_table(stage.file("choices.parquet"), table)
        unanswered = int((choices == TRIPLET_NO_ANSWER).sum())
        if unanswered:
            log.warning("%s: %d of %d triplets got no usable answer; they are left out", name, unanswered, len(choices))
        return {"rows": len(choices), "judge": judge.name, "unanswered": unanswered,
                "choice_1": int((choices == 1).sum()), "choice_2": int((choices == 2).sum())}

    choices = stage.run(lambda: judge.triplets(sample.rows, texts, JudgeContext(run, f"llm_{name}", upstream)), write,
                        lambda stage: pq.read_table(stage.file("choices.parquet")).column(schema.CHOICE).to_numpy())
    return choices, stage


def training_triplets(rows: np.ndarray, choices: np.ndarray, texts: list[str]) -> list[tuple[str, str, str]]:
    """(anchor, positive, hard negative) texts of the answered triplets."""
    out = []
    for (a, c1, c2), choice in zip(rows, choices):
        if choice == 1:
            out.append((texts[a], texts[c1], texts[c2]))
        elif choice == 2:
            out.append((texts[a], texts[c2], texts[c1]))
    return out


def train_stage(run: RunDir, cl: ClusterLLMConfig, sample: TripletSample, choices: np.ndarray, texts: list[str],
                model_path: str, upstream: Stage, name: str) -> tuple[str, Stage]:
    """Fine-tune from ``model_path``; the new sentence-transformers folder is <stage>/embedder."""
    stage = run.stage(name, cl.training, cl.temperature, model_path, upstream.fingerprint)
    out = stage.file("embedder")

    def compute() -> TrainResult:
        tuples = training_triplets(sample.rows, choices, texts)
        return train_embedder(tuples, TripletInfoNCELoss(cl.temperature), model_path, out, cl.training,
                              stage.file("ray"), name=name)

    def write(stage: Stage, result: TrainResult) -> dict:
        write_json(stage.file("losses.json"), result.losses)
        return {"rows": result.rows, "steps": result.steps, "train_seconds": round(result.seconds, 1),
                "loss_first": result.losses[0], "loss_last": result.losses[-1], "embedder": str(out)}

    stage.run(compute, write, lambda stage: None)
    return str(out), stage


def granularity_stage(run: RunDir, cfg: GranularityConfig, judge: PairJudge, vectors: np.ndarray, texts: list[str],
                      upstream: Stage, name: str = "granularity") -> dict:
    """K from the judge's pair answers; F-beta curve and classical estimates in granularity.json."""
    stage = run.stage(name, cfg, judge.name, upstream.fingerprint)

    def compute() -> dict:
        hierarchy = build_hierarchy(vectors, cfg.k_max, cfg.k_min, cfg.seed)
        pairs = sample_pairs(hierarchy, cfg.pairs_per_merge, cfg.seed)
        same = judge.pairs(pairs, texts, JudgeContext(run, f"llm_{name}", upstream))
        write_table(stage.file("pairs.parquet"), pa.table({
            schema.PAIR_A: pairs[:, 0], schema.PAIR_B: pairs[:, 1], schema.MERGE_K: pairs[:, 2],
            schema.SAME: pa.array(same, pa.int8())}))
        choice = choose_k(hierarchy, pairs, same, cfg.beta)
        classical = classical_estimates(vectors, hierarchy, cfg.silhouette_sample, cfg.seed)
        if choice.unanswered:
            log.warning("%s: %d of %d pairs got no usable answer; they are left out", name, choice.unanswered, len(pairs))
        return {"k": choice.k, "judge": judge.name, "pairs": len(pairs), "answered": choice.answered,
                "unanswered": choice.unanswered, "said_same": choice.said_same,
                "classical": {k: v for k, v in classical.items() if k != "curves"},
                "fbeta": choice.curve, "curves": classical["curves"]}

    def write(stage: Stage, summary: dict) -> dict:
        write_json(stage.file("granularity.json"), summary)
        return {"rows": summary["pairs"], **{k: v for k, v in summary.items() if k not in ("fbeta", "curves")}}

    return stage.run(compute, write, lambda stage: stage.read_json("granularity.json"))
