"""The contract all three methods share, scikit-learn style.

``__init__`` stores the config only; ``fit(texts)`` runs the checkpointed pipeline and
returns self; learned attributes end in ``_``; ``predict`` embeds new texts with the final
embedder and assigns each to the nearest cluster centroid.

A method overrides :meth:`TextClusterer.representation` (the vectors KMeans runs on) and
optionally :meth:`TextClusterer.name_clusters`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from llmclust import pipeline, schema
from llmclust.clustering import assign
from llmclust.config import to_dict
from llmclust.embedding import SentenceEmbedder
from llmclust.job import JobConfig, init_ray
from llmclust.models import resolve_model
from llmclust.naming import keyword_names
from llmclust.runs import RunDir, Stage

log = logging.getLogger(__name__)


class NotFittedError(RuntimeError):
    pass


@dataclass
class Representation:
    """What a method hands to clustering: the vectors, and how to embed new texts."""

    vectors: np.ndarray  # (n, d) the space KMeans runs in
    stage: Stage  # the stage that produced them (its fingerprint chains on)
    embed_vectors: np.ndarray  # (n, d') the final embedder's vectors of the corpus
    embedder_path: str  # the final embedder (a fine-tuned one for trained methods)


class TextClusterer:
    """Base clusterer: embed -> KMeans. Subclasses change the representation."""

    method = "baseline"

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
        run = RunDir(cfg.run.dir)
        run.save_config(to_dict(cfg))
        init_ray(cfg.ray)
        table, corpus = pipeline.corpus_stage(run, cfg, texts)
        rep = self.representation(run, table, corpus)
        runs, cluster = pipeline.cluster_stage(run, cfg, rep.vectors, rep.stage)
        best = min(runs, key=lambda r: r.inertia)
        names = self.name_clusters(run, table, best.labels, cfg.clustering.n_clusters)
        metrics = pipeline.evaluate_stage(run, cfg, table, runs, cluster)
        centroids = pipeline.publish(run, cfg, table, best, names, rep.embed_vectors, rep.embedder_path, metrics)
        self.labels_ = best.labels
        self.cluster_centers_ = best.centers
        self.cluster_names_ = names
        self.centroids_ = centroids
        self.embedder_path_ = rep.embedder_path
        self.ids_ = table.column(schema.ID).to_pylist()
        self.metrics_ = metrics
        self.run_dir_ = run.path
        log.info("%s: %d texts in %d clusters; outputs in %s", self.method, len(best.labels), len(names), run.path)
        return self

    def fit_predict(self, texts: list[str] | None = None) -> np.ndarray:
        return self.fit(texts).labels_

    def predict(self, texts: list[str]) -> np.ndarray:
        """Cluster id of each new text: nearest centroid in the final embedder's space."""
        if not hasattr(self, "centroids_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(texts) first")
        vectors = self._embedder().encode(list(texts))
        return assign(vectors, self.centroids_, top=1)[0][:, 0]

    # -- what methods override -----------------------------------------------------------
    def representation(self, run: RunDir, table: pa.Table, corpus: Stage) -> Representation:
        vectors, stage = pipeline.embed_stage(run, self.config, table, corpus)
        return Representation(vectors, stage, vectors, resolve_model(self.config.embedding.model))

    def name_clusters(self, run: RunDir, table: pa.Table, labels: np.ndarray, k: int) -> list[str]:
        return keyword_names(table.column(schema.TEXT).to_pylist(), labels, k)

    def _embedder(self) -> SentenceEmbedder:
        if getattr(self, "_embedder_cache", None) is None:
            self._embedder_cache = SentenceEmbedder(self.config.embedding, self.embedder_path_)
        return self._embedder_cache
