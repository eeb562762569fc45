"""ClusterLLM's stages, each checkpointed: triplets -> judge -> train -> (granularity).

* ``triplet_stage``: entropy-sampled (anchor, choice 1, choice 2) rows (:mod:`.triplets`);
* ``judge_stage``: the judge's answer per triplet, in two views, and the audit of those
  answers against the embedder (:mod:`llmclust.llm.audit`): the weight the LLM's signal gets;
* ``train_stage``: InfoNCE fine-tuning of the embedder on the confident, order-consistent
  triplets, at the learning rate times that weight (Ray Train); skipped at weight 0;
* ``granularity_stage``: K from the judge's pair answers along a merge hierarchy
  (:mod:`.granularity`), audited the same way: at weight 0, K stays ``clustering.n_clusters``.

Example::

    sample, stage = triplet_stage(run, cfg.triplets, vectors, embed, "triplets_iter1")
    judged, stage = judge_stage(run, OracleJudge(labels), sample, texts, vectors, AuditConfig(), stage, "judge_iter1")
    judged.audit.weight, judged.training_mask(AuditConfig()).sum()
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from llmclust.llm.audit import AuditConfig, AuditResult, audit_votes
from llmclust.methods.clusterllm import columns
from llmclust.methods.clusterllm.config import (
    ClusterLLMConfig,
    GranularityConfig,
    TripletConfig,
)
from llmclust.methods.clusterllm.granularity import (
    build_hierarchy,
    choose_k,
    classical_estimates,
    sample_pairs,
)
from llmclust.methods.clusterllm.judges import JudgeContext, PairJudge, TripletJudge
from llmclust.methods.clusterllm.questions import (
    PAIR_NO_ANSWER,
    TRIPLET_NO_ANSWER,
    JudgeVotes,
)
from llmclust.methods.clusterllm.triplets import TripletSample, sample_triplets
from llmclust.store.runs import RunDir, Stage, write_json, write_table
from llmclust.training.embedder_trainer import TrainResult, train_embedder
from llmclust.training.triplet_infonce import TripletInfoNCELoss

log = logging.getLogger(__name__)

GRANULARITY_STAGE = "granularity"
GRANULARITY_FILE = "granularity.json"  # the chosen K, the F-beta curve, classical estimates, the audit


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


@dataclass
class Judged:
    """A judge's triplet answers and their audit."""

    votes: JudgeVotes
    audit: AuditResult

    def training_mask(self, cfg: AuditConfig) -> np.ndarray:
        """Triplets to train on: answered the same way in both views, confidently enough."""
        answered = self.votes.choices() != TRIPLET_NO_ANSWER
        return answered & self.votes.consistent & (self.votes.confidence >= cfg.min_confidence)


def embedder_preference(vectors: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Triplets: does the embedder put the anchor closer to choice 1, and by how much (cosine)."""
    diff = np.einsum("nd,nd->n", vectors[rows[:, 0]], vectors[rows[:, 1]] - vectors[rows[:, 2]])
    return diff > 0, np.abs(diff)


def _votes_table(table: pa.Table, votes: JudgeVotes) -> pa.Table:
    return (table.append_column(columns.P_FIRST, pa.array(votes.p, pa.float64()))
            .append_column(columns.CONSISTENT, pa.array(votes.consistent)))


def _read_votes(table: pa.Table) -> JudgeVotes:
    return JudgeVotes(table.column(columns.P_FIRST).to_numpy(zero_copy_only=False),
                 table.column(columns.CONSISTENT).to_numpy(zero_copy_only=False))


def judge_stage(run: RunDir, judge: TripletJudge, sample: TripletSample, texts: list[str], vectors: np.ndarray,
                audit: AuditConfig, upstream: Stage, name: str) -> tuple[Judged, Stage]:
    """The judge's answer per triplet and its audit (``audit.json``; see the module docstring)."""
    stage = run.stage(name, judge.name, audit, upstream.fingerprint)

    def compute() -> Judged:
        votes = judge.triplets(sample.rows, texts, JudgeContext(run, f"llm_{name}", upstream))
        return Judged(votes, audit_votes("triplets", votes, *embedder_preference(vectors, sample.rows), audit))

    def write(stage: Stage, judged: Judged) -> dict:
        choices = judged.votes.choices()
        table = sample.to_table().append_column(columns.CHOICE, pa.array(choices, pa.int8()))
        write_table(stage.file("choices.parquet"), _votes_table(table, judged.votes))
        write_json(stage.file("audit.json"), judged.audit.to_dict())
        unanswered = int((choices == TRIPLET_NO_ANSWER).sum())
        if unanswered:
            log.warning("%s: %d of %d triplets got no usable answer; they are left out", name, unanswered, len(choices))
        log.info("%s audit: %s", name, judged.audit.decision)
        return {"rows": len(choices), "judge": judge.name, "unanswered": unanswered,
                "choice_1": int((choices == 1).sum()), "choice_2": int((choices == 2).sum()),
                "training_triplets": int(judged.training_mask(audit).sum()), "audit": judged.audit.to_dict()}

    def read(stage: Stage) -> Judged:
        votes = _read_votes(pq.read_table(stage.file("choices.parquet")))
        return Judged(votes, AuditResult(**stage.read_json("audit.json")))

    return stage.run(compute, write, read), stage


def training_triplets(rows: np.ndarray, choices: np.ndarray, texts: list[str]) -> list[tuple[str, str, str]]:
    """(anchor, positive, hard negative) texts of the answered triplets."""
    out = []
    for (a, c1, c2), choice in zip(rows, choices):
        if choice == 1:
            out.append((texts[a], texts[c1], texts[c2]))
        elif choice == 2:
            out.append((texts[a], texts[c2], texts[c1]))
    return out


def train_stage(run: RunDir, cl: ClusterLLMConfig, audit: AuditConfig, sample: TripletSample, judged: Judged,
                texts: list[str], model_path: str, upstream: Stage, name: str) -> tuple[str, Stage]:
    """Fine-tune from ``model_path`` on the triplets the audit lets through, at the learning rate
    times the audit's weight; the new sentence-transformers folder is <stage>/embedder."""
    training = replace(cl.training, learning_rate=cl.training.learning_rate * judged.audit.weight)
    stage = run.stage(name, training, cl.temperature, audit, model_path, upstream.fingerprint)
    out = stage.file("embedder")

    def compute() -> TrainResult:
        mask = judged.training_mask(audit)
        tuples = training_triplets(sample.rows[mask], judged.votes.choices()[mask], texts)
        return train_embedder(tuples, TripletInfoNCELoss(cl.temperature), model_path, out, training,
                              stage.file("ray"), name=name)

    result = stage.run(compute, lambda stage, result: {**result.write(stage), "learning_rate": training.learning_rate},
                       TrainResult.read)
    return result.model_dir, stage


def pair_preference(vectors: np.ndarray, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs: does the embedder find the pair closer than the median pair, and by how much."""
    cosine = np.einsum("nd,nd->n", vectors[pairs[:, 0]], vectors[pairs[:, 1]])
    return cosine > np.median(cosine), np.abs(cosine - np.median(cosine))


def granularity_stage(run: RunDir, cfg: GranularityConfig, judge: PairJudge, vectors: np.ndarray, texts: list[str],
                      upstream: Stage, audit: AuditConfig, fallback_k: int, name: str = GRANULARITY_STAGE) -> dict:
    """K from the judge's pair answers; F-beta curve, classical estimates and the audit in
    granularity.json. When the audit gives the pair answers weight 0, K is ``fallback_k``."""
    stage = run.stage(name, cfg, judge.name, audit, fallback_k, upstream.fingerprint)

    def compute() -> tuple[dict, pa.Table]:
        hierarchy = build_hierarchy(vectors, cfg.k_max, cfg.k_min, cfg.seed)
        pairs = sample_pairs(hierarchy, cfg.pairs_per_merge, cfg.seed)
        votes = judge.pairs(pairs, texts, JudgeContext(run, f"llm_{name}", upstream))
        checked = audit_votes("pairs", votes, *pair_preference(vectors, pairs), audit)
        same = np.where(votes.consistent, votes.same(), PAIR_NO_ANSWER)  # an answer that flips with the order is none
        answers = _votes_table(pa.table({columns.PAIR_A: pairs[:, 0], columns.PAIR_B: pairs[:, 1],
                                         columns.MERGE_K: pairs[:, 2], columns.SAME: pa.array(same, pa.int8())}), votes)
        choice = choose_k(hierarchy, pairs, same, cfg.beta)
        classical = classical_estimates(vectors, hierarchy, cfg.silhouette_sample, cfg.seed)
        if choice.unanswered:
            log.warning("%s: %d of %d pairs got no consistent answer; they are left out", name, choice.unanswered,
                        len(pairs))
        log.info("%s audit: %s", name, checked.decision)
        k = choice.k if checked.weight > 0 else fallback_k
        return {"k": k, "k_from_pairs": choice.k, "judge": judge.name, "pairs": len(pairs),
                "answered": choice.answered, "unanswered": choice.unanswered, "said_same": choice.said_same,
                "audit": checked.to_dict(), "classical": {k: v for k, v in classical.items() if k != "curves"},
                "fbeta": choice.curve, "curves": classical["curves"]}, answers

    def write(stage: Stage, computed: tuple[dict, pa.Table]) -> dict:
        summary, answers = computed
        write_table(stage.file("pairs.parquet"), answers)
        write_json(stage.file(GRANULARITY_FILE), summary)
        return {"rows": summary["pairs"], **{k: v for k, v in summary.items() if k not in ("fbeta", "curves")}}

    def read(stage: Stage) -> tuple[dict, pa.Table]:
        return stage.read_json(GRANULARITY_FILE), pq.read_table(stage.file("pairs.parquet"))

    return stage.run(compute, write, read)[0]
