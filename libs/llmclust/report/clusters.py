"""The report's cluster table: size, share, representative texts, keywords and the LLM's labels.

Representative texts are the members nearest their cluster's centre (assignments.parquet's
``score`` is the cosine to it). Keywords are class TF-IDF words (:mod:`llmclust.pipeline.naming`) of
the texts the map is laid out from (a sample of large corpora). The LLM labels behind a name come from the method's own outputs
(:meth:`llmclust.methods.base.TextClusterer.report_labels`: LUMI's most frequent pseudo-labels,
co-training's interpretations of the representative texts).

Example::

    import numpy as np
    representatives(np.array([0, 0, 1, 0]), np.array([0.2, 0.9, 0.5, 0.7]), k=2, top=2)
    # [array([1, 3]), array([2])]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pyarrow as pa

from llmclust import schema
from llmclust.pipeline.clustering import members_by_cluster
from llmclust.pipeline.naming import keyword_names

REPRESENTATIVES = 5
KEYWORDS = 8


@dataclass
class ClusterRow:
    cluster: int
    name: str
    size: int
    share: float  # of all clustered texts
    representatives: list[str]  # nearest the centre first
    keywords: str
    llm_labels: list[str]  # empty for methods without LLM labels


def representatives(clusters: np.ndarray, scores: np.ndarray, k: int, top: int = REPRESENTATIVES) -> list[np.ndarray]:
    """Per cluster, the positions of its ``top`` highest-scoring members, best first."""
    return [rows[:top] for rows in members_by_cluster(clusters, k, scores)]


def cluster_rows(assignments: pa.Table, names: list[str], sample: np.ndarray,
                 llm_labels: Callable[[np.ndarray, list[np.ndarray], int], list[list[str]] | None]) -> list[ClusterRow]:
    """One row per cluster, largest first. ``assignments`` is in ROW order (position = ROW, the
    key the LLM stages' tables use); keywords come from the texts at the ``sample`` positions;
    ``llm_labels(clusters, representatives, k)`` gives the method's labels behind each name."""
    k = len(names)
    clusters = assignments.column(schema.CLUSTER).to_numpy()
    texts = assignments.column(schema.TEXT)
    sizes = np.bincount(clusters, minlength=k)
    reps = representatives(clusters, assignments.column(schema.SCORE).to_numpy(), k)
    llm = llm_labels(clusters, reps, k) or [[]] * k
    keywords = keyword_names(texts.take(sample).to_pylist(), clusters[sample], k, words=KEYWORDS)
    out = [ClusterRow(c, names[c], int(sizes[c]), float(sizes[c] / len(clusters)),
                      texts.take(reps[c]).to_pylist(), keywords[c], llm[c]) for c in range(k)]
    return sorted(out, key=lambda r: (-r.size, r.cluster))
