"""ClusterLLM: a judge's triplet answers fine-tune the embedder; pair answers choose K.

Each iteration: embed with the current embedder -> sample triplets on uncertain anchors
(:mod:`.triplets`) -> the judge picks the choice that matches each anchor, from the
log-probabilities of its answers in both choice orders (:mod:`.questions`) -> the audit
(:mod:`llmclust.llm.audit`) weighs those answers against the embedder; at weight 0 the method
stops here and clusters the embedder's vectors -> fine-tune the embedder on the confident,
order-consistent (anchor, chosen, other) triplets with InfoNCE (Ray Train), at the learning
rate times the weight -> re-embed.
With ``clusterllm.choose_k: true`` the number of clusters is then chosen from the judge's
pair answers along a merge hierarchy (:mod:`.granularity`) instead of
``clustering.n_clusters``.

The judge is the LLM configured in the job. Only benchmarks and tests may pass another one
(the ground-truth :class:`.judges.OracleJudge`) through the constructor; no config key does.
The stages are in :mod:`.stages`; the config (``clusterllm`` section) in :mod:`.config`.

Example::

    from llmclust.methods.job import load_job_config
    cfg = load_job_config("ray_configs/clusterllm_local.yaml", ["corpus.limit=300", "clustering.n_clusters=20"])
    model = ClusterLLMClusterer(cfg).fit()
    model.labels_, model.embedder_path_       # the fine-tuned embedder lives in the run dir
    model.n_clusters_, model.granularity_     # with clusterllm.choose_k: K from the pair answers
    model.audit_                              # the audit of the judge's answers, per question
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import pyarrow as pa

from llmclust import schema
from llmclust.llm.budget import StagePlan, sample_texts, stage_plan
from llmclust.methods.base import ReportSection, Representation, TextClusterer
from llmclust.methods.clusterllm.judges import LLMJudge
from llmclust.methods.clusterllm.prompts import pair_chat
from llmclust.methods.clusterllm.questions import triplet_views
from llmclust.methods.clusterllm.report import granularity_figure, granularity_sentence
from llmclust.methods.clusterllm.stages import (
    GRANULARITY_FILE,
    GRANULARITY_STAGE,
    granularity_stage,
    judge_stage,
    train_stage,
    triplet_stage,
)
from llmclust.models import resolve_model
from llmclust.pipeline.embedding import embed_stage
from llmclust.store.runs import RunDir, Stage

log = logging.getLogger(__name__)


class ClusterLLMClusterer(TextClusterer):
    method = "clusterllm"
    uses_llm = True

    @property
    def chooses_k(self) -> bool:
        return self.config.clusterllm.choose_k

    def __init__(self, config=None, judge=None):
        """``judge``: for benchmarks only (e.g. ``OracleJudge``); None asks the configured LLM."""
        super().__init__(config)
        self.judge = judge

    def _judge(self):
        if self.judge is None:
            cl = self.config.clusterllm
            self.judge = LLMJudge(self.config.llm, cl.task, cl.granularity.demonstrations, cl.triplet_question)
        return self.judge

    def representation(self, run: RunDir, table: pa.Table, corpus: Stage) -> Representation:
        cfg, cl = self.config, self.config.clusterllm
        texts = table.column(schema.TEXT).to_pylist()
        self.announce_llm_plan(run, texts)  # before any LLM work
        vectors, stage = embed_stage(run, cfg.embedding, table, corpus)
        model_path = resolve_model(cfg.embedding.model)
        self.audit_ = {}
        for it in range(1, cl.iterations + 1):
            sample, stage = triplet_stage(run, cl.triplets, vectors, stage, f"triplets_iter{it}")
            judged, stage = judge_stage(run, self._judge(), sample, texts, vectors, cfg.audit, stage, f"judge_iter{it}")
            self.audit_[f"triplets_iter{it}"] = judged.audit.to_dict()
            if judged.audit.weight == 0:  # the LLM's answers would only move the embedder at random
                log.warning("clusterllm: %s; the embedder is not fine-tuned", judged.audit.decision)
                break
            model_path, stage = train_stage(run, cl, cfg.audit, sample, judged, texts, model_path, stage,
                                            f"train_iter{it}")
            vectors, stage = embed_stage(run, cfg.embedding, table, stage, name=f"embed_iter{it}", model_path=model_path)
        if not cl.choose_k:
            return Representation(vectors, stage, vectors, model_path, audit=self.audit_)
        self.granularity_ = granularity_stage(run, self._granularity(), self._judge(), vectors, texts, stage, cfg.audit,
                                              cfg.clustering.n_clusters)
        self.audit_["pairs"] = self.granularity_["audit"]
        log.info("clusterllm: chose K=%d (configured %d)", self.granularity_["k"], cfg.clustering.n_clusters)
        return Representation(vectors, stage, vectors, model_path, n_clusters=self.granularity_["k"], audit=self.audit_)

    def _granularity(self):
        """The merge levels the pair answers choose among: with ``n_clusters: auto``, the estimate's band
        (one level more where the band is a single K: the hierarchy needs two)."""
        g, estimate = self.config.clusterllm.granularity, getattr(self, "k_estimate_", None)
        if estimate is None:
            return g
        lo, hi = estimate.band
        return replace(g, k_min=lo, k_max=max(hi, lo + 1))

    def llm_plan(self, texts: list[str]) -> list[StagePlan]:
        """The triplet budget per iteration, plus the merge pairs when K is chosen: every question in
        both orders (``same_pair`` triplets: two pairs each), one answer token scored, no retries."""
        cl, sample = self.config.clusterllm, sample_texts(texts)
        triplets = [c for t in sample for c in triplet_views(cl.triplet_question, cl.task, t, t, t)[0].chats]
        per_triplet = 2 * len(triplet_views(cl.triplet_question, cl.task, "", "", "")[0].chats)
        stages = [stage_plan(f"llm_judge_iter{it}", per_triplet * cl.triplets.budget, triplets, 1, retried=False)
                  for it in range(1, cl.iterations + 1)]
        if cl.choose_k:
            g = self._granularity()
            pairs = [pair_chat(cl.task, t, t, g.demonstrations) for t in sample]
            merges = min(g.k_max, len(texts)) - g.k_min
            stages.append(stage_plan("llm_granularity", 2 * max(merges, 0) * g.pairs_per_merge, pairs, 1,
                                     retried=False))
        return stages

    def k_decided_by(self) -> str:
        g = getattr(self, "granularity_", None)
        if g is None:
            return "the estimate (clusterllm.choose_k is off)"
        if g["audit"]["weight"] == 0:
            return "the estimate alone: the audit gave the judge's pair answers no weight"
        return "the judge's pair answers, among the merge levels of the estimate's band"

    def summary_lines(self) -> list[str]:
        g = getattr(self, "granularity_", None)
        chosen = [f"chosen K {g['k']} from {g['answered']} answered pairs; classical estimates {g['classical']}"] if g else []
        return chosen + [f"embedder: {self.embedder_path_}", *super().summary_lines()]

    @classmethod
    def k_choice(cls, run_path: Path, config: dict) -> ReportSection | None:
        """With ``clusterllm.choose_k``: the F-beta curve of the pair answers over K, the chosen K marked."""
        file = run_path / GRANULARITY_STAGE / GRANULARITY_FILE
        if not file.exists():
            return None
        granularity = json.loads(file.read_text())
        return ReportSection("How K was chosen", granularity_sentence(granularity, config),
                             figure=granularity_figure(granularity))
