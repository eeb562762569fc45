"""Choosing K from pairwise answers along a merge hierarchy, plus classical estimates.

1. Hierarchy: KMeans to ``k_max`` clusters (scales to millions of texts), then size-weighted
   Ward on the ``k_max`` centroids down to one cluster; the levels ``k_max .. k_min`` are kept.
2. Pairs: at every merge, ``pairs_per_merge`` (λ) pairs with one text from each side.
3. A judge says whether each pair belongs to the same category (user demonstrations set
   the granularity it should use).
4. For every level k, W_k says whether each pair is in one cluster at that level;
   k* = argmax_k F_beta(labels = the judge's answers, predictions = W_k).

Silhouette, elbow and BIC are computed on the same hierarchy, for comparison.

Example::

    h = build_hierarchy(vectors, k_max=50, k_min=2, seed=0)
    pairs = sample_pairs(h, pairs_per_merge=1, seed=0)        # (m, 3): a, b, k before the merge
    same = [labels[a] == labels[b] for a, b, _ in pairs]      # a judge's answers
    choice = choose_k(h, pairs, np.asarray(same), beta=0.92)  # choice.k, choice.curve
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmclust.pipeline.choose_k import mean_silhouette
from llmclust.pipeline.clustering import ClusteringConfig, cluster_sums, kmeans


@dataclass
class Hierarchy:
    leaf: np.ndarray  # (n,) KMeans cluster (leaf) of every text
    leaf_sizes: np.ndarray  # (k_max,)
    merges: np.ndarray  # (k_max - 1, 2) node ids merged at each step; step j makes node k_max + j
    ks: np.ndarray  # levels, k_max first
    roots: np.ndarray  # (len(ks), k_max): the node each leaf belongs to at each level

    def labels_at(self, k: int) -> np.ndarray:
        """Cluster id (0..k-1) of every text at level ``k``."""
        row = self.roots[int(np.flatnonzero(self.ks == k)[0])]
        return np.unique(row, return_inverse=True)[1][self.leaf]


def build_hierarchy(vectors: np.ndarray, k_max: int, k_min: int, seed: int) -> Hierarchy:
    n = len(vectors)
    if n <= k_max:
        raise ValueError(f"n_samples={n} should be > granularity k_max={k_max}; lower clusterllm.granularity.k_max")
    leaves = kmeans(vectors, k_max, seed, ClusteringConfig(n_clusters=k_max, seeds=[seed]))
    merges = weighted_ward(leaves.centers, np.bincount(leaves.labels, minlength=k_max))
    root = np.arange(k_max)
    ks = np.arange(k_max, k_min - 1, -1)
    roots = np.empty((len(ks), k_max), np.int64)
    roots[0] = root
    for j, (a, b) in enumerate(merges[:k_max - k_min]):
        root = np.where((root == a) | (root == b), k_max + j, root)
        roots[j + 1] = root
    return Hierarchy(leaves.labels, np.bincount(leaves.labels, minlength=k_max), merges, ks, roots)


def weighted_ward(centers: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Ward merges of KMeans centroids that count each centroid's members (scipy's Ward would
    treat a 3-text cluster like a 300-text one). Returns (k-1, 2) node ids, scipy's numbering."""
    k = len(centers)
    cent, n = centers.astype(np.float64).copy(), np.maximum(sizes.astype(np.float64), 1)
    node = np.arange(k)
    cost = np.full((k, k), np.inf)

    def refresh(i: int, active: np.ndarray) -> None:
        row = n[i] * n / (n[i] + n) * ((cent - cent[i]) ** 2).sum(1)
        row[~active] = np.inf
        row[i] = np.inf
        cost[i], cost[:, i] = row, row

    active = np.ones(k, bool)
    for i in range(k):
        refresh(i, active)
    merges = np.empty((k - 1, 2), np.int64)
    for j in range(k - 1):
        a, b = np.unravel_index(np.argmin(cost), cost.shape)
        merges[j] = node[a], node[b]
        cent[a] = (n[a] * cent[a] + n[b] * cent[b]) / (n[a] + n[b])
        n[a] += n[b]
        node[a] = k + j
        active[b] = False
        cost[b], cost[:, b] = np.inf, np.inf
        refresh(a, active)
    return merges


def _node_leaves(h: Hierarchy) -> dict[int, np.ndarray]:
    k_max = len(h.leaf_sizes)
    nodes = {i: np.asarray([i]) for i in range(k_max)}
    for j, (a, b) in enumerate(h.merges):
        nodes[k_max + j] = np.concatenate([nodes[a], nodes[b]])
    return nodes


def sample_pairs(h: Hierarchy, pairs_per_merge: int, seed: int) -> np.ndarray:
    """(m, 3) int64: text a, text b (one from each merged side), number of clusters before the merge."""
    rng = np.random.default_rng(seed)
    k_max = len(h.leaf_sizes)
    nodes = _node_leaves(h)
    texts_of = [np.flatnonzero(h.leaf == leaf) for leaf in range(k_max)]

    def draw(node: int) -> int:
        leaves = nodes[node]
        weights = h.leaf_sizes[leaves] / h.leaf_sizes[leaves].sum()
        return int(rng.choice(texts_of[int(rng.choice(leaves, p=weights))]))

    out = []
    for j, (a, b) in enumerate(h.merges[:k_max - int(h.ks[-1])]):
        out += [(draw(a), draw(b), k_max - j) for _ in range(pairs_per_merge)]
    return np.asarray(out, np.int64).reshape(-1, 3)


@dataclass
class KChoice:
    k: int
    curve: dict[int, float]  # F-beta at every level
    answered: int  # pairs with an answer (the others were dropped and counted)
    unanswered: int
    said_same: int


def choose_k(h: Hierarchy, pairs: np.ndarray, same: np.ndarray, beta: float) -> KChoice:
    """k* = argmax F_beta(judge answers, same-cluster at level k); ``same`` is 1 / 0 / -1 (no answer)."""
    from sklearn.metrics import fbeta_score

    same = np.asarray(same)
    keep = same >= 0
    if not keep.any():
        raise ValueError(f"none of the {len(same)} pairs got an answer; cannot choose K (check the judge's answers)")
    leaf_a, leaf_b = h.leaf[pairs[keep, 0]], h.leaf[pairs[keep, 1]]
    truth = same[keep].astype(int)
    curve = {}
    for i, k in enumerate(h.ks):
        together = (h.roots[i, leaf_a] == h.roots[i, leaf_b]).astype(int)
        curve[int(k)] = float(fbeta_score(truth, together, beta=beta, zero_division=0.0))
    best = max(curve, key=lambda k: (curve[k], -k))  # ties: the coarser level
    return KChoice(best, curve, int(keep.sum()), int((~keep).sum()), int(truth.sum()))


def classical_estimates(vectors: np.ndarray, h: Hierarchy, sample: int, seed: int) -> dict:
    """K chosen on the same hierarchy by silhouette (max), elbow (max distance to chord), BIC (max)."""
    n, d = vectors.shape
    k_max = len(h.leaf_sizes)
    sums = cluster_sums(vectors, h.leaf, k_max)
    sq_norms = np.bincount(h.leaf, weights=(vectors.astype(np.float64) ** 2).sum(1), minlength=k_max)
    rows = np.random.default_rng(seed).choice(n, size=min(n, sample), replace=False)
    dist = np.maximum(1 - vectors[rows] @ vectors[rows].T, 0)  # cosine distance, computed once
    np.fill_diagonal(dist, 0)
    sil, sse, bic = {}, {}, {}
    for i, k in enumerate(h.ks):
        k = int(k)
        node = np.unique(h.roots[i], return_inverse=True)[1]
        size = np.bincount(node, weights=h.leaf_sizes, minlength=k)
        node_sum = cluster_sums(sums, node, k)
        sse[k] = float(np.bincount(node, weights=sq_norms, minlength=k).sum()
                       - ((node_sum ** 2).sum(1) / np.maximum(size, 1)).sum())
        bic[k] = _bic(sse[k], size, n, d)
        labels = node[h.leaf[rows]]
        if 1 < len(np.unique(labels)) < len(rows):
            sil[k] = mean_silhouette(dist, labels)
    return {
        "silhouette": max(sil, key=sil.get),
        "elbow": _elbow(sse),
        "bic": max(bic, key=bic.get),
        "curves": {"silhouette": sil, "sse": sse, "bic": bic},
    }


def _bic(sse: float, sizes: np.ndarray, n: int, d: int) -> float:
    """BIC of a spherical Gaussian mixture with one shared variance (the X-means form; higher is better)."""
    k = len(sizes)
    variance = max(sse / max(d * (n - k), 1), 1e-12)
    sizes = sizes[sizes > 0]
    log_lik = float((sizes * np.log(sizes / n)).sum()) - n * d / 2 * np.log(2 * np.pi * variance) - d * (n - k) / 2
    params = (k - 1) + k * d + 1
    return log_lik - params / 2 * np.log(n)


def _elbow(sse: dict[int, float]) -> int:
    """Level farthest from the chord between the first and last points of the normalised curve."""
    ks = np.asarray(sorted(sse), float)
    ys = np.asarray([sse[int(k)] for k in ks])
    x = (ks - ks[0]) / max(ks[-1] - ks[0], 1e-12)
    y = (ys - ys.min()) / max(ys.max() - ys.min(), 1e-12)
    chord = np.array([x[-1] - x[0], y[-1] - y[0]])
    dist = np.abs(chord[0] * (y - y[0]) - chord[1] * (x - x[0])) / np.linalg.norm(chord)
    return int(ks[int(np.argmax(dist))])
