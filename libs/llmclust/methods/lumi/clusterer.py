"""LUMI as a scikit-learn-style clusterer: LLM pseudo-labels pooled into the embeddings, then KMeans.

The stages live in :mod:`.stages` (pooling maths in :mod:`.pooling`); clusters
are named from their members' pseudo-labels (``lumi.llm_names: true`` asks the LLM as well).

Example::

    from llmclust.job import load_job_config
    cfg = load_job_config("ray_configs/lumi_local.yaml", ["corpus.limit=200", "clustering.n_clusters=10"])
    model = LumiClusterer(cfg).fit()
    model.labels_, model.cluster_names_[:3], model.pseudo_labels_[:3], model.predict(["where is my card"])
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from llmclust import schema
from llmclust.embedding import embed_stage
from llmclust.llm.budget import announce
from llmclust.methods.base import Representation, TextClusterer
from llmclust.methods.lumi.stages import label_names, llm_names, run_lumi
from llmclust.models import resolve_model
from llmclust.runs import RunDir, Stage


class LumiClusterer(TextClusterer):
    method = "lumi"

    def representation(self, run: RunDir, table: pa.Table, corpus: Stage) -> Representation:
        announce(run, self.config, table.column(schema.TEXT).to_pylist())  # the LLM plan, before any LLM work
        vectors, embed = embed_stage(run, self.config.embedding, table, corpus)
        result = run_lumi(run, self.config, table, vectors, embed)
        self.pseudo_labels_ = result.pseudo_labels
        self.label_pooled_, self.text_pooled_ = result.label_pooled, result.text_pooled
        self.lumi_report_ = result.report
        self._pool_stage = result.stage
        # at weight 0 the audit stopped LUMI: the embedder's own vectors, clustered as the baseline's
        space = vectors if result.weight == 0 else result.pooled(self.config.lumi.text_pooling)
        return Representation(space, result.stage, vectors, resolve_model(self.config.embedding.model),
                              audit={"labels": result.audit.to_dict()})

    def name_clusters(self, run: RunDir, table: pa.Table, labels: np.ndarray, k: int) -> list[str]:
        if self.lumi_report_["audit"]["weight"] == 0:  # labels the audit did not trust name nothing either
            return super().name_clusters(run, table, labels, k)
        if self.config.lumi.llm_names:
            return llm_names(run, self.config, self.pseudo_labels_, labels, k, self._pool_stage)
        return label_names(self.pseudo_labels_, labels, k)
