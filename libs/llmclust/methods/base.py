"""The contract all methods share, scikit-learn style.

``__init__`` stores the config only (``fit`` never changes it); ``fit(texts)`` runs the
checkpointed pipeline and returns self; learned attributes end in ``_``; ``predict`` embeds
new texts with the final embedder and assigns each to the nearest of ``cluster_centers_``.

    corpus -> representation (the method's part) -> [reduce] -> cluster -> evaluate -> name -> publish

A method overrides :meth:`TextClusterer.representation` (the vectors KMeans runs on) and
optionally :meth:`TextClusterer.name_clusters`. A method that already clustered its final
space (co-training clusters every iteration) hands that clustering forward in
:attr:`Representation.clustered` instead of letting ``fit`` compute it a second time.

The generic layers ask a method, never name it: ``llm_plan`` (the LLM calls it will make,
checked against ``llm.max_calls`` before any is sent), ``summary_lines`` (its lines in a job's
closing summary) and, for a finished run, ``report_sections``, ``report_labels`` and
``k_choice`` (what the report shows of it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from llmclust import schema
from llmclust.llm.budget import StagePlan, announce
from llmclust.llm.engines import keep_engines
from llmclust.methods.job import JobConfig
from llmclust.models import resolve_model
from llmclust.pipeline.assigner import Assigner
from llmclust.pipeline.choose_k import KEstimate, choose_k_stage
from llmclust.pipeline.clustering import KMeansRun, best_run, cluster_stage
from llmclust.pipeline.corpus import check_job_inputs, corpus_stage
from llmclust.pipeline.embedders import Embedder
from llmclust.pipeline.embedding import embed_stage, keep_embedder, make_embedder, preload_embedder
from llmclust.pipeline.evaluation import GroundTruth, evaluate_stage
from llmclust.pipeline.naming import keyword_names
from llmclust.pipeline.publish import publish
from llmclust.pipeline.reduction import reduce_stage, reducer_dir, start_warm_up
from llmclust.ray_session import init_ray
from llmclust.store.runs import RunDir, Stage
from llmclust.store.vectors import StoredVectors, as_array

log = logging.getLogger(__name__)


class NotFittedError(RuntimeError):
    pass


@dataclass
class Clustered:
    """KMeans over the seeds, and its metrics when ground truth is configured."""

    runs: list[KMeansRun]
    metrics: dict | None
    stage: Stage
    reduce: Stage | None = None  # the reduce stage (a fitted reducer per seed) when reduction is on

    def best(self) -> KMeansRun:
        return best_run(self.runs, same_space=self.reduce is None)

    def reducer_path(self, seed: int) -> Path | None:
        return reducer_dir(self.reduce.path, seed) if self.reduce is not None else None


@dataclass
class Representation:
    """What a method hands to clustering: the vectors, and how to embed new texts."""

    vectors: np.ndarray | StoredVectors  # (n, d) the space KMeans runs in
    stage: Stage  # the stage that produced them (its fingerprint chains on)
    embed_vectors: np.ndarray | StoredVectors  # (n, d') the final embedder's vectors of the corpus
    embedder_path: str  # the final embedder (a fine-tuned one for trained methods)
    n_clusters: int | None = None  # K the method chose (ClusterLLM); None: clustering.n_clusters
    clustered: Clustered | None = None  # the method clustered ``vectors`` already
    # what the LLM contributed, as plain key/value facts (result.json ``llm_audit``, the report's
    # "LLM signal audit"); None: the method reports none
    audit: dict | None = None

    @property
    def in_embedder_space(self) -> bool:
        """The method clustered the final embedder's own vectors (baseline, ClusterLLM), so new
        texts can be placed exactly as the corpus was, reducer included."""
        return self.vectors is self.embed_vectors


@dataclass
class ReportSection:
    """A part of the report a method adds: a paragraph (plain text: the report escapes it) and/or a
    plotly figure."""

    title: str
    text: str = ""
    figure: Any = None  # a plotly Figure
    figure_height: int = 380


class TextClusterer:
    """Base clusterer: embed -> KMeans. Subclasses change the representation."""

    method = "baseline"
    compares_to_baseline = True  # with ground truth, also cluster the untrained embedder's vectors beside it
    uses_llm = False  # the job needs llm.model (checked before Ray starts)

    @property
    def chooses_k(self) -> bool:
        """The method picks K itself, so ``clustering.n_clusters`` is not held against the corpus size."""
        return False

    def __init__(self, config: JobConfig | None = None):
        self.config = config or JobConfig(method=self.method)

    # -- the scikit-learn contract -------------------------------------------------------
    def fit(self, texts: list[str] | None = None) -> "TextClusterer":
        """Cluster ``texts`` (or, when None, the corpus at ``config.corpus.path``)."""
        cfg = self.config
        if texts is not None and (isinstance(texts, str) or not all(isinstance(t, str) for t in texts)):
            raise TypeError("fit(texts) expects a list of strings (or None to read config.corpus.path)")
        if texts is None and not cfg.corpus.path:
            raise ValueError("fit() got no texts and config.corpus.path is empty; pass texts or set corpus.path")
        run = RunDir(cfg.run.dir)  # config.yaml is written by publish, beside the result it describes
        # LLM engines and an in-driver embedder load once for every stage of the fit that uses them:
        # kept until a stage needs the engines' CPUs or GPUs (ray_session.make_room) or the fit ends
        with keep_engines(), keep_embedder():
            preload_embedder(cfg.embedding)  # num_actors=0: the driver's model loads while Ray starts
            init_ray(cfg.ray)
            table, corpus = corpus_stage(run, cfg.corpus, texts)
            check_job_inputs(cfg, table, fixed_k=not self.chooses_k)  # K and the label column, before any embedding
            self._truth = GroundTruth(cfg.evaluation, cfg.corpus, table.column(schema.ID).combine_chunks())
            start_warm_up(cfg.reduce, len(table))  # numba: compiled while the representation is built (in actors, mostly)
            self.k_estimate_ = self.choose_k(run, table, corpus) if cfg.clustering.auto_k else None
            if self.k_estimate_ is not None:  # every later stage sees the chosen K; the user's config is kept
                self.config = replace(cfg, clustering=replace(cfg.clustering, n_clusters=self.k_estimate_.k))
            try:
                rep = self.representation(run, table, corpus)
                clustered = rep.clustered or self.cluster(run, rep.vectors, rep.stage, n_clusters=rep.n_clusters)
                best = clustered.best()
                k = len(best.centers)
                baseline_metrics = None
                if self._compares(cfg):
                    # the reference on the same texts with the same K: the untrained embedder's vectors
                    # (the stored embed stage when the method made one) through the same clustering
                    base_vectors, base_stage = embed_stage(run, cfg.embedding, table, corpus, lazy=True)
                    baseline_metrics = self.cluster(run, base_vectors, base_stage, prefix="baseline_", n_clusters=k).metrics
                    baseline_metrics = {**baseline_metrics, "k": k, "embedder": resolve_model(cfg.embedding.model)}
                names = self.name_clusters(run, table, best.labels, k)
            finally:
                self.config = cfg
        reducer = clustered.reducer_path(best.seed) if rep.in_embedder_space else None
        extra = {"baseline_metrics": baseline_metrics} if baseline_metrics is not None else {}
        if rep.audit is not None:
            extra["llm_audit"] = rep.audit
        if self.k_estimate_ is not None:
            extra["k_choice"] = {**self.k_estimate_.to_dict(), "final_k": k, "decided_by": self.k_decided_by()}
        centroids = publish(run, cfg, table, best, names, rep.embed_vectors, rep.embedder_path, clustered.metrics,
                            reducer_path=reducer, **extra)
        self.labels_ = best.labels
        # predict assigns as the corpus was clustered: through the reducer to these centres, or
        # (no reducer, or a space only an LLM produces) by cosine to the embedder-space centroids
        self._assigner = Assigner.from_run(run.path)
        self.cluster_centers_ = best.centers if reducer is not None else centroids
        self.space_centers_ = best.centers  # KMeans centres in the space the method clustered in
        self.n_clusters_ = k
        self.seed_ = best.seed  # the KMeans (and reducer) seed whose clustering is published
        self.cluster_names_ = names
        self.embedder_path_ = rep.embedder_path
        self.metrics_ = clustered.metrics
        self.baseline_metrics_ = baseline_metrics  # None for the baseline itself or without ground truth
        self.llm_audit_ = rep.audit
        self.run_dir_ = run.path
        self._embedder_cache = None
        log.info("%s: %d texts in %d clusters; outputs in %s", self.method, len(best.labels), k, run.path)
        return self

    def fit_predict(self, texts: list[str] | None = None) -> np.ndarray:
        return self.fit(texts).labels_

    def predict(self, texts: list[str]) -> np.ndarray:
        """Cluster id of each new text: the nearest of ``cluster_centers_`` to :meth:`represent`'s vectors."""
        return self._fitted_assigner().top(self._embedder().encode(list(texts)), top=1)[0][:, 0]

    def represent(self, texts: list[str]) -> np.ndarray:
        """New texts in the space of ``cluster_centers_``: the final embedder's vectors, through the
        published reducer when the run assigns through one."""
        vectors = self._embedder().encode(list(texts))
        reducer = self._fitted_assigner().reducer
        return reducer.transform(vectors) if reducer is not None else vectors

    def _fitted_assigner(self) -> Assigner:
        if not hasattr(self, "_assigner"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(texts) first")
        return self._assigner

    # -- shared by methods ---------------------------------------------------------------
    def cluster(self, run: RunDir, vectors: np.ndarray | StoredVectors, upstream: Stage, prefix: str = "",
                n_clusters: int | None = None) -> Clustered:
        """KMeans over the configured seeds (stage ``<prefix>cluster``), after the reduce stage
        (``<prefix>reduce``, a reducer per seed) when ``reduce.method`` is set, and its evaluation."""
        clustering = self.config.clustering
        if n_clusters is not None:
            clustering = replace(clustering, n_clusters=n_clusters)
        reduce = None
        if self.config.reduce.enabled:  # fitted on a sample and transformed part by part
            space, reduce = reduce_stage(run, self.config.reduce, vectors, upstream, clustering.seeds, f"{prefix}reduce")
            upstream = reduce
        else:  # KMeans needs the whole matrix in this process
            space = as_array(vectors)
        runs, stage = cluster_stage(run, clustering, space, upstream, f"{prefix}cluster")
        return Clustered(runs, evaluate_stage(run, self._truth, runs, stage, f"{prefix}evaluate"), stage, reduce)

    def choose_k(self, run: RunDir, table: pa.Table, corpus: Stage) -> KEstimate:
        """``clustering.n_clusters: auto``: K estimated on the untrained embedder's vectors (reduced
        samples of them, :mod:`llmclust.pipeline.choose_k`), before any method-specific stage, so
        every method clusters with the K its baseline comparison uses."""
        cfg = self.config
        vectors, stage = embed_stage(run, cfg.embedding, table, corpus, lazy=True)
        return choose_k_stage(run, cfg.clustering, cfg.reduce, vectors, stage)[0]

    def _compares(self, cfg: JobConfig) -> bool:
        """Whether the fit clusters the untrained embedder's vectors beside the method's (``baseline_``)."""
        return self.compares_to_baseline and cfg.evaluation.enabled and cfg.evaluation.compare_baseline

    # -- what methods override -----------------------------------------------------------
    def representation(self, run: RunDir, table: pa.Table, corpus: Stage) -> Representation:
        # left in the stage's parts: reduce and publish stream them, so the driver never holds them all
        vectors, stage = embed_stage(run, self.config.embedding, table, corpus, lazy=True)
        return Representation(vectors, stage, vectors, resolve_model(self.config.embedding.model))

    def name_clusters(self, run: RunDir, table: pa.Table, labels: np.ndarray, k: int) -> list[str]:
        return keyword_names(table.column(schema.TEXT).to_pylist(), labels, k)

    def llm_plan(self, texts: list[str]) -> list[StagePlan]:
        """The LLM stages this method will run on ``texts`` (none without an LLM)."""
        return []

    def announce_llm_plan(self, run: RunDir, texts: list[str]) -> None:
        """Log and record :meth:`llm_plan`; stop before any LLM work when it cannot fit ``llm.max_calls``."""
        announce(run, self.config, texts, self.llm_plan(texts))

    def summary_lines(self) -> list[str]:
        """The method's own lines of a job's closing summary: by default each LLM audit's decision."""
        return [f"LLM audit, {a['decision']}" for a in (getattr(self, "llm_audit_", None) or {}).values()]

    # -- what the report asks of a finished run (class methods: no fitted model is needed) --
    @classmethod
    def report_sections(cls, run_path: Path) -> list[ReportSection]:
        """Sections of the method's own (co-training's iterations, ...), after the metrics."""
        return []

    @classmethod
    def report_labels(cls, run_path: Path, clusters: np.ndarray, representatives: list[np.ndarray],
                      k: int) -> list[list[str]] | None:
        """The LLM's labels behind each cluster's name (None: the method has none)."""
        return None

    @classmethod
    def k_choice(cls, run_path: Path, config: dict) -> ReportSection | None:
        """How the method chose K, when it did (None: ``clustering.n_clusters`` or the estimate was used)."""
        return None

    def k_decided_by(self) -> str:
        """With ``n_clusters: auto``, what set the final K (result.json's ``k_choice.decided_by``)."""
        return "the estimate"

    def _embedder(self) -> Embedder:
        if getattr(self, "_embedder_cache", None) is None:
            self._embedder_cache = make_embedder(self.config.embedding, self.embedder_path_)
        return self._embedder_cache
