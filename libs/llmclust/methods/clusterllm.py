"""ClusterLLM: a judge's triplet answers fine-tune the embedder; pair answers choose K.

Each iteration: embed with the current embedder -> sample triplets on uncertain anchors
(:mod:`llmclust.triplets`) -> the judge picks the choice that matches each anchor ->
fine-tune the embedder on (anchor, chosen, other) with InfoNCE (Ray Train) -> re-embed.
With ``clusterllm.choose_k: true`` the number of clusters is then chosen from the judge's
pair answers along a merge hierarchy (:mod:`llmclust.granularity`) instead of
``clustering.n_clusters``.

The judge is the LLM configured in the job. Only benchmarks and tests may pass another one
(the ground-truth :class:`judges.OracleJudge`) through the constructor; no config key does.

Example::

    from llmclust.job import load_job_config
    cfg = load_job_config("ray_configs/clusterllm_local.yaml", ["corpus.limit=300", "clustering.n_clusters=20"])
    model = ClusterLLMClusterer(cfg).fit()
    model.labels_, model.embedder_path_       # the fine-tuned embedder lives in the run dir
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from llmclust import pipeline, schema
from llmclust.clusterllm_config import ClusterLLMConfig
from llmclust.granularity import GranularityConfig, build_hierarchy, choose_k, classical_estimates, sample_pairs
from llmclust.judges import TRIPLET_NO_ANSWER, JudgeContext, LLMJudge
from llmclust.methods.base import Representation, TextClusterer
from llmclust.models import resolve_model
from llmclust.runs import RunDir, Stage, write_json, write_table
from llmclust.training.embedder_trainer import train_embedder
from llmclust.training.triplet_infonce import TripletInfoNCELoss
from llmclust.triplets import TripletConfig, TripletSample, sample_triplets

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
        vectors, stage = pipeline.embed_stage(run, cfg, table, corpus)
        model_path = resolve_model(cfg.embedding.model)
        for it in range(1, cl.iterations + 1):
            sample, stage = triplet_stage(run, cl.triplets, vectors, stage, f"triplets_iter{it}")
            choices, stage = judge_stage(run, self._judge(), sample, texts, stage, f"judge_iter{it}")
            model_path, stage = train_stage(run, cl, sample, choices, texts, model_path, stage, f"train_iter{it}")
            vectors, stage = pipeline.embed_stage(run, cfg, table, stage, name=f"embed_iter{it}", model_path=model_path)
        if cl.choose_k:
            choice = granularity_stage(run, cl.granularity, self._judge(), vectors, texts, stage)
            # the base class clusters with config.clustering.n_clusters: the chosen K replaces it
            log.info("clusterllm: chose K=%d (configured %d)", choice["k"], cfg.clustering.n_clusters)
            cfg.clustering.n_clusters = choice["k"]
            self.granularity_ = choice
        return Representation(vectors, stage, vectors, model_path)


def triplet_stage(run: RunDir, cfg: TripletConfig, vectors: np.ndarray, upstream: Stage,
                  name: str) -> tuple[TripletSample, Stage]:
    stage = run.stage(name, cfg, upstream.fingerprint)
    if not stage.done:
        sample = sample_triplets(vectors, cfg)
        write_table(stage.file("triplets.parquet"), sample.to_table())
        if not sample.report["budget_reached"]:
            log.warning("%s: only %d of %d triplets could be drawn (%s)", name, len(sample.rows), cfg.budget, sample.report)
        stage.finish(len(sample.rows), report=sample.report)
    return TripletSample.from_table(pq.read_table(stage.file("triplets.parquet"))), stage


def judge_stage(run: RunDir, judge, sample: TripletSample, texts: list[str], upstream: Stage,
                name: str) -> tuple[np.ndarray, Stage]:
    """The judge's choice per triplet (0: no answer, counted and left out of training)."""
    stage = run.stage(name, judge.name, upstream.fingerprint)
    if not stage.done:
        choices = judge.triplets(sample.rows, texts, JudgeContext(run, f"llm_{name}", upstream))
        write_table(stage.file("choices.parquet"), sample.to_table().append_column(schema.CHOICE, pa.array(choices, pa.int8())))
        unanswered = int((choices == TRIPLET_NO_ANSWER).sum())
        if unanswered:
            log.warning("%s: %d of %d triplets got no usable answer; they are left out", name, unanswered, len(choices))
        stage.finish(len(choices), judge=judge.name, unanswered=unanswered,
                     choice_1=int((choices == 1).sum()), choice_2=int((choices == 2).sum()))
    return pq.read_table(stage.file("choices.parquet")).column(schema.CHOICE).to_numpy(), stage


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
    if not stage.done:
        tuples = training_triplets(sample.rows, choices, texts)
        result = train_embedder(tuples, TripletInfoNCELoss(cl.temperature), model_path, out, cl.training,
                                stage.file("ray"), name=name)
        write_json(stage.file("losses.json"), result.losses)
        stage.finish(len(tuples), steps=result.steps, train_seconds=round(result.seconds, 1),
                     loss_first=result.losses[0], loss_last=result.losses[-1], embedder=str(out))
    return str(out), stage


def granularity_stage(run: RunDir, cfg: GranularityConfig, judge, vectors: np.ndarray, texts: list[str],
                      upstream: Stage, name: str = "granularity") -> dict:
    """K from the judge's pair answers; F-beta curve and classical estimates in granularity.json."""
    stage = run.stage(name, cfg, judge.name, upstream.fingerprint)
    if not stage.done:
        hierarchy = build_hierarchy(vectors, cfg.k_max, cfg.k_min, cfg.seed)
        pairs = sample_pairs(hierarchy, cfg.pairs_per_merge, cfg.seed)
        same = judge.pairs(pairs, texts, JudgeContext(run, f"llm_{name}", upstream))
        write_table(stage.file("pairs.parquet"), pa.table({
            schema.PAIR_A: pairs[:, 0], schema.PAIR_B: pairs[:, 1], schema.MERGE_K: pairs[:, 2],
            schema.SAME: pa.array(same, pa.int8())}))
        choice = choose_k(hierarchy, pairs, same, cfg.beta)
        classical = classical_estimates(vectors, hierarchy, cfg.silhouette_sample, cfg.seed)
        summary = {"k": choice.k, "judge": judge.name, "pairs": len(pairs), "answered": choice.answered,
                   "unanswered": choice.unanswered, "said_same": choice.said_same,
                   "classical": {k: v for k, v in classical.items() if k != "curves"}}
        write_json(stage.file("granularity.json"), {**summary, "fbeta": choice.curve, "curves": classical["curves"]})
        if choice.unanswered:
            log.warning("%s: %d of %d pairs got no usable answer; they are left out", name, choice.unanswered, len(pairs))
        stage.finish(len(pairs), **summary)
    return json.loads(stage.file("granularity.json").read_text())
