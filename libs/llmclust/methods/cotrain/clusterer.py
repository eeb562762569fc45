"""Density-guided DPO co-training: the LLM and the embedder improve each other, then KMeans.

The clustering space is the final embedder's embedding of the final LLM's greedy
interpretations; new texts are assigned with the final embedder alone (``predict``).
The iteration loop is :mod:`.loop`; the config (``cotrain`` section) :mod:`.config`; the
LLM's prompts and parser :mod:`.interpretations`; the density preference :mod:`.preference`.

Example::

    from llmclust.methods.job import load_job_config
    cfg = load_job_config("ray_configs/cotrain_local.yaml", ["corpus.limit=40", "clustering.n_clusters=5"])
    model = CoTrainClusterer(cfg).fit()
    model.labels_, model.iterations_[-1]["acc"], model.adapter_path_
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa

from llmclust import schema
from llmclust.llm.budget import StagePlan, audit_plan, sample_texts, stage_plan
from llmclust.methods.base import ReportSection, Representation, TextClusterer
from llmclust.methods.cotrain.interpretations import interpretation_chats
from llmclust.methods.cotrain.loop import run_cotrain
from llmclust.methods.cotrain.report import (
    ITERATIONS_FILE,
    interpretation_labels,
    iteration_table,
    iterations_figure,
)
from llmclust.pipeline.embedding import embed_stage
from llmclust.store.runs import RunDir, Stage


class CoTrainClusterer(TextClusterer):
    method = "cotrain"
    uses_llm = True

    def representation(self, run: RunDir, table: pa.Table, corpus: Stage) -> Representation:
        self.announce_llm_plan(run, table.column(schema.TEXT).to_pylist())  # before any LLM work
        result = run_cotrain(run, self.config, table, corpus, self.cluster)
        self.iterations_ = result.iterations
        self.adapter_path_ = result.adapter
        # serving embeds raw texts with the final embedder: the corpus in that space
        texts, _ = embed_stage(run, self.config.embedding, table, result.stage, "final_embed", result.embedder)
        return Representation(result.vectors, result.stage, texts, result.embedder, clustered=result.clustered,
                              audit={"interpretations": result.audit.to_dict()})

    def llm_plan(self, texts: list[str]) -> list[StagePlan]:
        """Per iteration, one greedy and M sampled interpretations per text (the last only greedy),
        and the audit of iteration 0's interpretations."""
        ct = self.config.cotrain
        chats = interpretation_chats(sample_texts(texts), ct.task)
        stages = []
        for t in range(ct.iterations + 1):
            names = ["greedy"] + ([f"sample{m + 1}" for m in range(len(ct.temperatures))] if t < ct.iterations else [])
            stages += [stage_plan(f"iter{t}_{name}", len(texts), chats, ct.max_tokens) for name in names]
            if t == 0:
                stages += audit_plan(self.config, "interpretations_audit", texts, ct.task, len(texts))
        return stages

    def summary_lines(self) -> list[str]:
        return [iteration_table(self.iterations_),
                f"embedder {self.embedder_path_}, adapter {self.adapter_path_ or 'none'}", *super().summary_lines()]

    @classmethod
    def report_sections(cls, run_path: Path) -> list[ReportSection]:
        file = run_path / ITERATIONS_FILE
        if not file.exists():
            return []
        return [ReportSection("Co-training iterations", figure=iterations_figure(json.loads(file.read_text())))]

    @classmethod
    def report_labels(cls, run_path: Path, clusters: np.ndarray, representatives: list[np.ndarray],
                      k: int) -> list[list[str]] | None:
        return interpretation_labels(run_path, representatives)
