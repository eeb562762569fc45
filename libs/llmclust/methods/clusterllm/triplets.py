"""Entropy-based triplet sampling: which (anchor, choice 1, choice 2) questions to ask the judge.

The embedder is least sure about texts that sit between clusters, so those are the anchors
worth asking about:

1. cluster the embeddings coarsely (KMeans with ``coarse_k`` centres);
2. soft-assign every text to the centres with a Student-t kernel and keep its ``K_c``
   closest centres (``K_c = max(ceil(kc_fraction * coarse_k), kc_min)``), renormalised;
3. rank texts by the entropy of that assignment and keep the band
   ``[band_high, band_low)`` of the ranking as anchors (0 %-20 %: the most uncertain fifth);
4. per anchor, draw two different clusters among its ``K_c`` closest and one text from
   each; a choice equal to the anchor and a repeated triplet are skipped (and counted).
   Rounds over the anchors repeat until ``budget`` triplets are drawn or ``max_rounds``.

Example::

    cfg = TripletConfig(budget=64, coarse_k=10)
    sample = sample_triplets(vectors, cfg)       # vectors: (n, d) normalised
    sample.rows[:2]     # array([[anchor, choice_1, choice_2], ...]) of row positions
    sample.report       # {'triplets': 64, 'skipped_self': 0, 'skipped_repeat': 3, ...}
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from llmclust import schema
from llmclust.methods.clusterllm import columns
from llmclust.methods.clusterllm.config import TripletConfig
from llmclust.optional import import_faiss
from llmclust.pipeline.clustering import ClusteringConfig, kmeans, student_t_assignment


@dataclass
class TripletSample:
    rows: np.ndarray  # (m, 3) int64 row positions: anchor, choice 1, choice 2
    entropy: np.ndarray  # (m,) the anchor's entropy
    report: dict = field(default_factory=dict)

    def to_table(self) -> pa.Table:
        return pa.table({
            columns.ANCHOR: pa.array(self.rows[:, 0], pa.int64()),
            columns.CHOICE_1: pa.array(self.rows[:, 1], pa.int64()),
            columns.CHOICE_2: pa.array(self.rows[:, 2], pa.int64()),
            columns.ENTROPY: pa.array(self.entropy.astype(np.float32)),
        })

    @classmethod
    def from_table(cls, table: pa.Table) -> "TripletSample":
        schema.require_columns(table, [columns.ANCHOR, columns.CHOICE_1, columns.CHOICE_2, columns.ENTROPY], "triplets")
        rows = np.stack([table.column(c).to_numpy() for c in (columns.ANCHOR, columns.CHOICE_1, columns.CHOICE_2)], 1)
        return cls(rows.astype(np.int64), table.column(columns.ENTROPY).to_numpy())


def soft_assignment(vectors: np.ndarray, centers: np.ndarray, alpha: float, top: int,
                    chunk: int = 65_536) -> tuple[np.ndarray, np.ndarray]:
    """Student-t assignment restricted to the ``top`` closest centres, renormalised.

    Returns (closest centre ids (n, top), nearest first; their probabilities (n, top)). The
    closest centres come from a faiss flat search in chunks of ``chunk`` rows (float32 BLAS
    and a top-k heap: with numpy distances the stage took 1.4x the plain faiss time at 1M
    texts); the probabilities are computed in float64.
    """
    faiss = import_faiss()
    index = faiss.IndexFlatL2(centers.shape[1])
    index.add(np.ascontiguousarray(centers, dtype=np.float32))
    ids = np.empty((len(vectors), top), np.int64)
    probs = np.empty((len(vectors), top), np.float64)
    for start in range(0, len(vectors), chunk):
        dist, near = index.search(np.ascontiguousarray(vectors[start:start + chunk], dtype=np.float32), top)
        ids[start:start + chunk] = near
        probs[start:start + chunk] = student_t_assignment(np.maximum(dist.astype(np.float64), 0), alpha)
    return ids, probs


def entropy(probs: np.ndarray) -> np.ndarray:
    return -(probs * np.log(np.clip(probs, 1e-12, None))).sum(1)


def sample_triplets(vectors: np.ndarray, cfg: TripletConfig) -> TripletSample:
    """Draw up to ``cfg.budget`` triplets from the most uncertain anchors (see module doc)."""
    n = len(vectors)
    k = min(cfg.coarse_k, n // 2)
    if k < 2:
        raise ValueError(f"triplet sampling needs at least 4 texts for 2 coarse clusters, got n={n}")
    coarse = kmeans(vectors, k, cfg.seed, ClusteringConfig(n_clusters=k, seeds=[cfg.seed], algorithm="auto"))
    order = np.argsort(coarse.labels, kind="stable")  # members of every cluster in one pass, not k
    bounds = np.searchsorted(coarse.labels[order], np.arange(k + 1))
    members = [order[bounds[c]:bounds[c + 1]] for c in range(k)]
    one_hot = sp.csr_matrix((np.ones(n, np.float32), (coarse.labels, np.arange(n))), shape=(k, n))
    sizes = np.diff(bounds)[:, None]
    centers = np.where(sizes > 0, (one_hot @ vectors) / np.maximum(sizes, 1), coarse.centers)
    kc = cfg.closest_count(k)
    closest, probs = soft_assignment(vectors, centers, cfg.alpha, kc)
    h = entropy(probs)
    order = np.argsort(-h, kind="stable")
    anchors = order[int(cfg.band_high * n):max(int(cfg.band_low * n), int(cfg.band_high * n) + 1)]

    rng = np.random.default_rng(cfg.seed)
    seen: set[tuple[int, int]] = set()
    out: list[tuple[int, int, int]] = []
    skipped = {"skipped_self": 0, "skipped_repeat": 0, "skipped_empty_cluster": 0}
    rounds = 0
    while len(out) < cfg.budget and rounds < cfg.max_rounds:
        rounds += 1
        for a in anchors:
            c1, c2 = rng.choice(closest[a], size=2, replace=False)
            if not len(members[c1]) or not len(members[c2]):
                skipped["skipped_empty_cluster"] += 1
                continue
            x1, x2 = int(rng.choice(members[c1])), int(rng.choice(members[c2]))
            if a in (x1, x2):
                skipped["skipped_self"] += 1
                continue
            key = (int(a), *sorted((x1, x2)))
            if key in seen:
                skipped["skipped_repeat"] += 1
                continue
            seen.add(key)
            out.append((int(a), x1, x2))
            if len(out) == cfg.budget:
                break
    rows = np.asarray(out, np.int64).reshape(-1, 3)
    report = {"triplets": len(rows), "budget": cfg.budget, "anchors": len(anchors), "rounds": rounds,
              "coarse_k": k, "k_c": kc, "budget_reached": len(rows) == cfg.budget, **skipped}
    return TripletSample(rows, h[rows[:, 0]], report)
