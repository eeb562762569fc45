"""LUMI as a scikit-learn-style clusterer: LLM pseudo-labels pooled into the embeddings, then KMeans.

The stages live in :mod:`.stages` (pooling maths in :mod:`.pooling`); clusters
are named from their members' pseudo-labels (``lumi.llm_names: true`` asks the LLM as well).

Example::

    from llmclust.methods.job import load_job_config
    cfg = load_job_config("ray_configs/lumi_local.yaml", ["corpus.limit=200", "clustering.n_clusters=10"])
    model = LumiClusterer(cfg).fit()
    model.labels_, model.cluster_names_[:3], model.pseudo_labels_[:3], model.predict(["where is my card"])
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from llmclust import schema
from llmclust.llm.budget import (
    LABEL_CHARS,
    StagePlan,
    audit_plan,
    sample_texts,
    stage_plan,
)
from llmclust.llm.prompts import context_block, numbered
from llmclust.methods.base import Representation, TextClusterer
from llmclust.methods.lumi import columns
from llmclust.methods.lumi.prompts import LUMI_PROMPTS
from llmclust.methods.lumi.stages import (
    POOL_STAGE,
    PSEUDO_LABELS_FILE,
    label_names,
    labelled_count,
    llm_names,
    run_lumi,
)
from llmclust.models import resolve_model
from llmclust.pipeline.embedding import embed_stage
from llmclust.store.runs import RunDir, Stage

REPORT_LABELS = 5  # pseudo-labels shown per cluster in the report


class LumiClusterer(TextClusterer):
    method = "lumi"
    uses_llm = True

    def representation(self, run: RunDir, table: pa.Table, corpus: Stage) -> Representation:
        self.announce_llm_plan(run, table.column(schema.TEXT).to_pylist())  # before any LLM work
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

    def llm_plan(self, texts: list[str]) -> list[StagePlan]:
        """Two prompts per labelled text (label, then multi-label choice), the audit of the labels,
        plus naming when asked."""
        lumi, sample = self.config.lumi, sample_texts(texts)
        asked = labelled_count(lumi, len(texts))
        label = [LUMI_PROMPTS.render("lumi_label", lumi.task, text=t,
                                     context=context_block(sample[: lumi.label_context_k], lumi.context_chars))
                 for t in sample]
        labels = numbered(["x" * LABEL_CHARS] * lumi.candidate_labels)
        multi = [LUMI_PROMPTS.render("lumi_multilabel", lumi.task, text=t, labels=labels) for t in sample]
        stages = [stage_plan("lumi_labels", asked, label, lumi.label_max_tokens),
                  *audit_plan(self.config, "labels_audit", texts, lumi.task, asked),
                  stage_plan("lumi_multilabel", asked, multi, lumi.choice_max_tokens)]
        if lumi.llm_names:
            names = [LUMI_PROMPTS.render("cluster_name", lumi.task, labels=numbered(["x" * LABEL_CHARS] * 8))]
            clustering = self.config.clustering  # under auto, before K is chosen: at most k_max names
            k = clustering.k_range(len(texts))[1] if clustering.auto_k else clustering.n_clusters
            stages.append(stage_plan("lumi_names", k, names, lumi.label_max_tokens))
        return stages

    def summary_lines(self) -> list[str]:
        r = self.lumi_report_
        return [f"{r['distinct_labels']} distinct pseudo-labels, {r.get('labels_per_text_mean', 1)} per text",
                *super().summary_lines()]

    @classmethod
    def report_labels(cls, run_path: Path, clusters: np.ndarray, representatives: list[np.ndarray],
                      k: int) -> list[list[str]] | None:
        """Each cluster's most frequent pseudo-labels, as 'label (count)'."""
        file = run_path / POOL_STAGE / PSEUDO_LABELS_FILE
        if not file.exists():
            return None
        table = pq.read_table(file, columns=[schema.ROW, columns.PSEUDO_LABELS])
        counts = [Counter() for _ in range(k)]
        for row, labels in zip(table.column(schema.ROW).to_pylist(), table.column(columns.PSEUDO_LABELS).to_pylist()):
            counts[clusters[row]].update(labels)
        return [[f"{label} ({n})" for label, n in c.most_common(REPORT_LABELS)] for c in counts]
