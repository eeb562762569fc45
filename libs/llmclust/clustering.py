"""Clustering of embedding matrices: KMeans with a given K, over several recorded seeds.

``auto`` uses exact Lloyd KMeans (scikit-learn) up to ``minibatch_min_rows`` rows and
faiss' KMeans beyond (a Lloyd step on 1M x 384 is milliseconds on a GPU, seconds on CPU);
``minibatch`` is scikit-learn's mini-batch KMeans for memory-bound machines.

Example::

    runs = cluster_over_seeds(vectors, ClusteringConfig(n_clusters=77, seeds=[0, 1, 2]))
    best = min(runs, key=lambda r: r.inertia)      # best.labels, best.centers
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from llmclust.config import expect, expect_choice


@dataclass
class ClusteringConfig:
    n_clusters: int = 20  # K
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])  # one KMeans run per seed
    algorithm: str = "auto"  # auto | kmeans | minibatch | faiss
    n_init: int = 1  # restarts per seed (the papers report n_init=1 means over seeds)
    max_iter: int = 300
    minibatch_min_rows: int = 200_000  # auto switches to faiss KMeans at this many rows

    def __post_init__(self):
        expect(self.n_clusters >= 2, "n_clusters", self.n_clusters, "an integer >= 2")
        expect(len(self.seeds) > 0, "seeds", self.seeds, "a non-empty list of integers")
        expect(len(set(self.seeds)) == len(self.seeds), "seeds", self.seeds, "distinct seeds")
        expect_choice("algorithm", self.algorithm, ["auto", "kmeans", "minibatch", "faiss"])
        expect(self.n_init > 0, "n_init", self.n_init, "a positive integer")
        expect(self.max_iter > 0, "max_iter", self.max_iter, "a positive integer")


@dataclass
class KMeansRun:
    seed: int
    labels: np.ndarray  # (n,) int64
    centers: np.ndarray  # (k, d) float32
    inertia: float


def kmeans(vectors: np.ndarray, k: int, seed: int, cfg: ClusteringConfig) -> KMeansRun:
    """One KMeans fit; fails with the sizes when there are fewer rows than clusters."""
    n = len(vectors)
    if n < k:
        raise ValueError(f"n_samples={n} should be >= n_clusters={k}; lower clustering.n_clusters")
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    algorithm = cfg.algorithm
    if algorithm == "auto":
        algorithm = "faiss" if n >= cfg.minibatch_min_rows else "kmeans"
    if algorithm == "faiss":
        return _faiss_kmeans(x, k, seed, cfg)
    from sklearn.cluster import KMeans, MiniBatchKMeans

    cls = MiniBatchKMeans if algorithm == "minibatch" else KMeans
    extra = {"batch_size": 4096} if algorithm == "minibatch" else {}
    model = cls(n_clusters=k, random_state=seed, n_init=cfg.n_init, max_iter=cfg.max_iter, **extra).fit(x)
    return KMeansRun(seed, model.labels_.astype(np.int64), model.cluster_centers_.astype(np.float32), float(model.inertia_))


def _faiss_kmeans(x: np.ndarray, k: int, seed: int, cfg: ClusteringConfig) -> KMeansRun:
    import faiss

    km = faiss.Kmeans(x.shape[1], k, niter=min(cfg.max_iter, 50), nredo=cfg.n_init, seed=seed,
                      gpu=faiss.get_num_gpus() > 0 if hasattr(faiss, "get_num_gpus") else False,
                      max_points_per_centroid=1024)
    km.train(x)
    dist, labels = km.index.search(x, 1)
    return KMeansRun(seed, labels[:, 0].astype(np.int64), km.centroids.astype(np.float32), float(dist.sum()))


def cluster_over_seeds(vectors: np.ndarray, cfg: ClusteringConfig, k: int | None = None) -> list[KMeansRun]:
    return [kmeans(vectors, k or cfg.n_clusters, seed, cfg) for seed in cfg.seeds]


def assign(vectors: np.ndarray, centers: np.ndarray, top: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Nearest ``top`` centres by cosine: (n, top) cluster ids and similarities, best first."""
    c = centers / np.maximum(np.linalg.norm(centers, axis=1, keepdims=True), 1e-12)
    sims = vectors @ c.T
    top = min(top, len(centers))
    idx = np.argsort(-sims, axis=1)[:, :top]
    return idx, np.take_along_axis(sims, idx, axis=1)


def centroids_of(vectors: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Normalised mean vector of each cluster's members (zeros for an empty cluster)."""
    sums = np.zeros((k, vectors.shape[1]), np.float64)
    np.add.at(sums, labels, vectors)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return (sums / np.maximum(norms, 1e-12)).astype(np.float32)
