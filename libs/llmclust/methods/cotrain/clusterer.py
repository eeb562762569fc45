"""Density-guided DPO co-training: the LLM and the embedder improve each other, then KMeans.

The clustering space is the final embedder's embedding of the final LLM's greedy
interpretations; new texts are assigned with the final embedder alone (``predict``).
The iteration loop is :mod:`.loop`; the config (``cotrain`` section) :mod:`.config`; the
LLM's prompts and parser :mod:`.interpretations`; the density preference :mod:`.preference`.

Example::

    from llmclust.job import load_job_config
    cfg = load_job_config("ray_configs/cotrain_local.yaml", ["corpus.limit=40", "clustering.n_clusters=5"])
    model = CoTrainClusterer(cfg).fit()
    model.labels_, model.iterations_[-1]["acc"], model.adapter_path_
"""

from __future__ import annotations

import pyarrow as pa

from llmclust import schema
from llmclust.embedding import embed_stage
from llmclust.llm.budget import announce
from llmclust.methods.base import Representation, TextClusterer
from llmclust.methods.cotrain.loop import run_cotrain
from llmclust.runs import RunDir, Stage


class CoTrainClusterer(TextClusterer):
    method = "cotrain"

    def representation(self, run: RunDir, table: pa.Table, corpus: Stage) -> Representation:
        announce(run, self.config, table.column(schema.TEXT).to_pylist())  # the LLM plan, before any LLM work
        result = run_cotrain(run, self.config, table, corpus, self.cluster)
        self.iterations_ = result.iterations
        self.adapter_path_ = result.adapter
        # serving embeds raw texts with the final embedder: the corpus in that space
        texts, _ = embed_stage(run, self.config.embedding, table, result.stage, "final_embed", result.embedder)
        return Representation(result.vectors, result.stage, texts, result.embedder, clustered=result.clustered,
                              audit={"interpretations": result.audit.to_dict()})
