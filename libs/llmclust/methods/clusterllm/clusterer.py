"""ClusterLLM: a judge's triplet answers fine-tune the embedder; pair answers choose K.

Each iteration: embed with the current embedder -> sample triplets on uncertain anchors
(:mod:`.triplets`) -> the judge picks the choice that matches each anchor ->
fine-tune the embedder on (anchor, chosen, other) with InfoNCE (Ray Train) -> re-embed.
With ``clusterllm.choose_k: true`` the number of clusters is then chosen from the judge's
pair answers along a merge hierarchy (:mod:`.granularity`) instead of
``clustering.n_clusters``.

The judge is the LLM configured in the job. Only benchmarks and tests may pass another one
(the ground-truth :class:`.judges.OracleJudge`) through the constructor; no config key does.
The stages are in :mod:`.stages`; the config (``clusterllm`` section) in :mod:`.config`.

Example::

    from llmclust.job import load_job_config
    cfg = load_job_config("ray_configs/clusterllm_local.yaml", ["corpus.limit=300", "clustering.n_clusters=20"])
    model = ClusterLLMClusterer(cfg).fit()
    model.labels_, model.embedder_path_       # the fine-tuned embedder lives in the run dir
    model.n_clusters_, model.granularity_     # with clusterllm.choose_k: K from the pair answers
"""

from __future__ import annotations

import logging

import pyarrow as pa

from llmclust import schema
from llmclust.embedding import embed_stage
from llmclust.llm.budget import announce
from llmclust.methods.base import Representation, TextClusterer
from llmclust.methods.clusterllm.judges import LLMJudge
from llmclust.methods.clusterllm.stages import granularity_stage, judge_stage, train_stage, triplet_stage
from llmclust.models import resolve_model
from llmclust.runs import RunDir, Stage

log = logging.getLogger(__name__)


class ClusterLLMClusterer(TextClusterer):
    method = "clusterllm"

    def __init__(self, config=None, judge=None):
        """``judge``: for benchmarks only (e.g. ``OracleJudge``); None asks the configured LLM."""
        super().__init__(config)
        self.judge = judge

    def _judge(self):
        if self.judge is None:
            cl = self.config.clusterllm
            self.judge = LLMJudge(self.config.llm, cl.task, cl.granularity.demonstrations, cl.llm_temperature)
        return self.judge

    def representation(self, run: RunDir, table: pa.Table, corpus: Stage) -> Representation:
        cfg, cl = self.config, self.config.clusterllm
        texts = table.column(schema.TEXT).to_pylist()
        announce(run, cfg, texts)  # the LLM plan, before any LLM work
        vectors, stage = embed_stage(run, cfg.embedding, table, corpus)
        model_path = resolve_model(cfg.embedding.model)
        for it in range(1, cl.iterations + 1):
            sample, stage = triplet_stage(run, cl.triplets, vectors, stage, f"triplets_iter{it}")
            choices, stage = judge_stage(run, self._judge(), sample, texts, stage, f"judge_iter{it}")
            model_path, stage = train_stage(run, cl, sample, choices, texts, model_path, stage, f"train_iter{it}")
            vectors, stage = embed_stage(run, cfg.embedding, table, stage, name=f"embed_iter{it}", model_path=model_path)
        if not cl.choose_k:
            return Representation(vectors, stage, vectors, model_path)
        self.granularity_ = granularity_stage(run, cl.granularity, self._judge(), vectors, texts, stage)
        log.info("clusterllm: chose K=%d (configured %d)", self.granularity_["k"], cfg.clustering.n_clusters)
        return Representation(vectors, stage, vectors, model_path, n_clusters=self.granularity_["k"])
