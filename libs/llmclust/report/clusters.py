"""The report's cluster table: size, share, representative texts, keywords and the LLM's labels.

Representative texts are the members nearest their cluster's centre (assignments.parquet's
``score`` is the cosine to it). Keywords are class TF-IDF words (:mod:`llmclust.naming`) of
the texts the map is laid out from (a sample of large corpora). The LLM labels behind a name come from the method's own outputs:
LUMI's pseudo-labels (the most frequent in the cluster, with counts) and co-training's greedy
interpretations of the representative texts (last iteration).

Example::

    import numpy as np
    representatives(np.array([0, 0, 1, 0]), np.array([0.2, 0.9, 0.5, 0.7]), k=2, top=2)
    # [array([1, 3]), array([2])]
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from llmclust import schema
from llmclust.naming import keyword_names

REPRESENTATIVES = 5
KEYWORDS = 8
LLM_LABELS = 5


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
    order = np.lexsort((-scores, clusters))  # by cluster, then best score first
    starts = np.searchsorted(clusters[order], np.arange(k + 1))
    return [order[starts[c]: min(starts[c] + top, starts[c + 1])] for c in range(k)]


def lumi_labels(run_path: Path, clusters: np.ndarray, k: int) -> list[list[str]] | None:
    """Each cluster's most frequent LUMI pseudo-labels, as 'label (count)'."""
    file = run_path / "lumi_pool" / "pseudo_labels.parquet"
    if not file.exists():
        return None
    table = pq.read_table(file, columns=[schema.ROW, schema.PSEUDO_LABELS])
    counts = [Counter() for _ in range(k)]
    for row, labels in zip(table.column(schema.ROW).to_pylist(), table.column(schema.PSEUDO_LABELS).to_pylist()):
        counts[clusters[row]].update(labels)
    return [[f"{label} ({n})" for label, n in c.most_common(LLM_LABELS)] for c in counts]


def cotrain_labels(run_path: Path, reps: list[np.ndarray]) -> list[list[str]] | None:
    """The final LLM's greedy interpretation of each representative text."""
    finished = [p.parent for p in run_path.glob("iter*_interpretations/manifest.json")]
    if not finished:
        return None
    last = max(finished, key=lambda p: int(re.match(r"iter(\d+)_", p.name).group(1)))
    table = pq.read_table(last / "candidates.parquet", columns=[schema.ID, schema.CANDIDATE, schema.TEXT])
    greedy = table.filter(pc.equal(table.column(schema.CANDIDATE), 0)).sort_by(schema.ID)
    texts = greedy.column(schema.TEXT).to_pylist()  # position i: text row i (ids are row positions)
    return [[texts[r] for r in rows] for rows in reps]


def cluster_rows(run_path: Path, method: str, assignments: pa.Table, names: list[str],
                 sample: np.ndarray) -> list[ClusterRow]:
    """One row per cluster, largest first. ``assignments`` is in ROW order (position = ROW, the
    key the LLM stages' tables use); keywords come from the texts at the ``sample`` positions."""
    k = len(names)
    clusters = assignments.column(schema.CLUSTER).to_numpy()
    texts = assignments.column(schema.TEXT)
    sizes = np.bincount(clusters, minlength=k)
    reps = representatives(clusters, assignments.column(schema.SCORE).to_numpy(), k)
    llm = {"lumi": lambda: lumi_labels(run_path, clusters, k),
           "cotrain": lambda: cotrain_labels(run_path, reps)}.get(method, lambda: None)() or [[]] * k
    keywords = keyword_names(texts.take(sample).to_pylist(), clusters[sample], k, words=KEYWORDS)
    out = [ClusterRow(c, names[c], int(sizes[c]), float(sizes[c] / len(clusters)),
                      texts.take(reps[c]).to_pylist(), keywords[c], llm[c]) for c in range(k)]
    return sorted(out, key=lambda r: (-r.size, r.cluster))
