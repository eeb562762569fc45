"""Assigning new texts to a finished run's clusters, the same way in ``predict`` and in Serve.

A run that clustered the embedder's own vectors through a reducer (``reduce.method: umap``)
assigns a new text as it clustered the corpus: its embedding goes through the same fitted
reducer to the nearest KMeans centre in the reduced space. Every other run assigns by cosine
to the cluster centroids in the embedder's space (LUMI's pooled vectors and co-training's
interpretations need an LLM that serving does not run). Either way the reported score is the
cosine of the text to its cluster's centroid in the embedder's space.

Example::

    assigner = Assigner.from_run(Path("runs/local"))
    ids, scores = assigner.top(make_embedder(EmbeddingConfig()).encode(["card lost"]), top=2)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from llmclust import schema
from llmclust.pipeline.clustering import assign


class Assigner:
    def __init__(self, centroids: np.ndarray, reducer=None, space_centres: np.ndarray | None = None):
        self.centroids = centroids  # (k, d) normalised, embedder space
        self.reducer, self.space_centres = reducer, space_centres  # both or neither

    def top(self, vectors: np.ndarray, top: int = 2) -> tuple[np.ndarray, np.ndarray]:
        """(n, top) cluster ids, nearest first, and the cosine of each text to those centroids."""
        if self.reducer is None:
            return assign(vectors, self.centroids, top)
        reduced = self.reducer.transform(vectors)
        dist = ((reduced[:, None, :] - self.space_centres[None, :, :]) ** 2).sum(-1)
        ids = np.argsort(dist, axis=1)[:, :min(top, len(self.space_centres))]
        return ids, np.einsum("nd,ntd->nt", vectors, self.centroids[ids])

    @classmethod
    def from_run(cls, run_path: Path, result: dict | None = None) -> "Assigner":
        """The assigner of a finished run (``result``: its result.json, read if not given)."""
        run_path = Path(run_path)
        result = result or json.loads((run_path / "result.json").read_text())
        clusters = pq.read_table(run_path / result["clusters"]).sort_by(schema.CLUSTER)
        centroids = schema.from_fixed_list(clusters.column(schema.CENTROID))
        if not result.get("reducer"):
            return cls(centroids)
        from llmclust.pipeline.reduction import Reducer

        return cls(centroids, Reducer.load(run_path / result["reducer"]),
                   schema.from_fixed_list(clusters.column(schema.SPACE_CENTRE)))
