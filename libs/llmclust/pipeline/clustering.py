"""Clustering of embedding matrices: KMeans with a given K, over several recorded seeds.

``auto`` uses exact Lloyd KMeans (scikit-learn, k-means++ initialisation) below
``minibatch_min_rows`` rows and faiss' KMeans from there on (trained on at most 1024 points
per centre, then every row assigned: a Lloyd step on 1M x 384 is milliseconds on a GPU, a
second on CPU); ``minibatch`` is scikit-learn's mini-batch KMeans for memory-bound machines.

scikit-learn's KMeans runs with BLAS limited to one thread. Its Lloyd loop parallelises with
OpenMP and already pins BLAS to one thread inside; but its k-means++ initialisation makes
one small BLAS call per centre, and OpenBLAS' spinning worker threads turn each into a wait
for a time slice when the cores are shared: 95 s instead of 4.6 s for the k-means++ of
20k x 384, K = 100 on 2 cores at load average 8-10 (most likely the cluster stage's 301 s
against plain KMeans' 60 s in issue #13).

Example::

    runs = cluster_over_seeds(vectors, ClusteringConfig(n_clusters=77, seeds=[0, 1, 2]))
    best = best_run(runs)                          # best.labels, best.centers
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from llmclust import schema
from llmclust.config import expect, expect_choice, to_dict
from llmclust.optional import import_faiss
from llmclust.pipeline.placement import USE_GPU, faiss_has_gpu, run_placed
from llmclust.store.runs import RunDir, Stage, write_table
from llmclust.store.vectors import CHUNK_ROWS, StoredVectors, chunks


@dataclass
class ClusteringConfig:
    n_clusters: int | str = 20  # K, or "auto" (None from Python): chosen between k_min and k_max (pipeline.choose_k)
    k_min: int = 2  # with n_clusters: auto, the smallest K considered
    k_max: int = 0  # and the largest; 0: 300 or half the texts, if fewer (the estimator also stops at 1/8 of its sample)
    k_seed: int = 0  # with n_clusters: auto, the estimate's own seed: K stays put whatever `seeds` are
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])  # one KMeans run per seed
    algorithm: str = "auto"  # auto | kmeans | minibatch | faiss
    n_init: int = 1  # restarts per seed (the papers report n_init=1 means over seeds)
    max_iter: int = 300
    minibatch_min_rows: int = 50_000  # auto switches to faiss KMeans at this many rows (see scale.json)
    use_gpu: str = "auto"  # faiss KMeans on a GPU worker when the Ray cluster has one | never | always

    def __post_init__(self):
        if self.n_clusters is None:
            self.n_clusters = "auto"
        expect(self.n_clusters == "auto" or (isinstance(self.n_clusters, int) and self.n_clusters >= 2), "n_clusters",
               self.n_clusters, "an integer >= 2, or auto (chosen between k_min and k_max)")
        expect(self.k_min >= 2, "k_min", self.k_min, "an integer >= 2")
        expect(self.k_max == 0 or self.k_max > self.k_min, "k_max", self.k_max,
               f"0 (300 or half the texts) or an integer above k_min={self.k_min}")
        expect(type(self.k_seed) is int and 0 <= self.k_seed < 2**31, "k_seed", self.k_seed, "an integer from 0 to 2**31 - 1")
        expect(len(self.seeds) > 0, "seeds", self.seeds, "a non-empty list of integers")
        expect(len(set(self.seeds)) == len(self.seeds), "seeds", self.seeds, "distinct seeds")
        expect_choice("algorithm", self.algorithm, ["auto", "kmeans", "minibatch", "faiss"])
        expect(self.n_init > 0, "n_init", self.n_init, "a positive integer")
        expect(self.max_iter > 0, "max_iter", self.max_iter, "a positive integer")
        expect_choice("use_gpu", self.use_gpu, USE_GPU)

    @property
    def auto_k(self) -> bool:
        return self.n_clusters == "auto"

    def k_range(self, rows: int) -> tuple[int, int]:
        """(k_min, k_max) for ``n_clusters: auto`` on ``rows`` texts."""
        return self.k_min, self.k_max or max(self.k_min + 1, min(300, rows // 2))

    def resolved_algorithm(self, rows: int) -> str:
        if self.algorithm != "auto":
            return self.algorithm
        return "faiss" if rows >= self.minibatch_min_rows else "kmeans"


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
    algorithm = cfg.resolved_algorithm(n)
    if algorithm == "faiss":
        return _faiss_kmeans(x, k, seed, cfg)
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from threadpoolctl import threadpool_limits

    cls = MiniBatchKMeans if algorithm == "minibatch" else KMeans
    extra = {"batch_size": 4096} if algorithm == "minibatch" else {}
    with threadpool_limits(1, user_api="blas"):  # see the module docstring
        model = cls(n_clusters=k, random_state=seed, n_init=cfg.n_init, max_iter=cfg.max_iter, **extra).fit(x)
    return KMeansRun(seed, model.labels_.astype(np.int64), model.cluster_centers_.astype(np.float32), float(model.inertia_))


def _faiss_kmeans(x: np.ndarray, k: int, seed: int, cfg: ClusteringConfig) -> KMeansRun:
    faiss = import_faiss()

    km = faiss.Kmeans(x.shape[1], k, niter=min(cfg.max_iter, 50), nredo=cfg.n_init, seed=seed,
                      gpu=faiss.get_num_gpus() > 0 if hasattr(faiss, "get_num_gpus") else False,
                      max_points_per_centroid=1024)
    km.train(x)
    dist, labels = km.index.search(x, 1)
    return KMeansRun(seed, labels[:, 0].astype(np.int64), km.centroids.astype(np.float32), float(dist.sum()))


Space = np.ndarray | dict  # one (n, d) matrix for every seed, or {seed: matrix} (a reducer per seed)


def cluster_over_seeds(vectors: Space, cfg: ClusteringConfig, k: int | None = None) -> list[KMeansRun]:
    spaces = vectors if isinstance(vectors, dict) else dict.fromkeys(cfg.seeds, vectors)
    return [kmeans(spaces[seed], k or cfg.n_clusters, seed, cfg) for seed in cfg.seeds]


def best_run(runs: list[KMeansRun], same_space: bool = True) -> KMeansRun:
    """The run whose assignments are published.

    In one space, the lowest inertia. Inertias of runs in different spaces (a reducer per
    seed) do not compare, so there it is the most typical run: the one whose labels agree
    best with the other seeds' (mean adjusted Rand index), needing no ground truth.
    """
    if same_space or len(runs) < 3:
        return min(runs, key=lambda r: r.inertia)
    from sklearn.metrics import adjusted_rand_score

    agreement = [sum(adjusted_rand_score(r.labels, o.labels) for o in runs if o is not r) for r in runs]
    return runs[int(np.argmax(agreement))]


def cluster_stage(run: RunDir, cfg: ClusteringConfig, vectors: Space, upstream: Stage,
                  name: str = "cluster") -> tuple[list[KMeansRun], Stage]:
    """KMeans once per seed (on that seed's space when ``vectors`` is {seed: matrix}); labels of
    every seed kept (for mean/std metrics)."""
    rows = len(next(iter(vectors.values()))) if isinstance(vectors, dict) else len(vectors)
    # neither where it runs nor the seed K was estimated with (K is n_clusters here) changes the result,
    # and runs written before either setting existed stay valid
    identity = {k: v for k, v in to_dict(cfg).items() if k not in ("use_gpu", "k_seed")}
    stage = run.stage(name, identity, upstream.fingerprint)
    use_gpu = cfg.use_gpu if cfg.resolved_algorithm(rows) == "faiss" else "never"

    def compute() -> list[KMeansRun]:
        # scikit-learn's KMeans (below minibatch_min_rows) needs no faiss at all: ask about it only for faiss'
        return run_placed(cluster_over_seeds, vectors, cfg, use_gpu=use_gpu, what=f"stage {name}",
                          gpu_code=use_gpu != "never" and faiss_has_gpu())

    def write(stage: Stage, runs: list[KMeansRun]) -> dict:
        write_table(stage.file("labels.parquet"), pa.table({schema.SEED_LABELS.format(seed=r.seed): r.labels for r in runs}))
        np.save(stage.file("centers.npy"), np.stack([r.centers for r in runs]))
        return {"rows": rows, "k": cfg.n_clusters, "inertia": {r.seed: r.inertia for r in runs}}

    def read(stage: Stage) -> list[KMeansRun]:
        labels, centers = pq.read_table(stage.file("labels.parquet")), np.load(stage.file("centers.npy"))
        inertia = stage.manifest["inertia"]
        return [KMeansRun(s, labels.column(schema.SEED_LABELS.format(seed=s)).to_numpy(), centers[i], inertia[str(s)])
                for i, s in enumerate(cfg.seeds)]

    return stage.run(compute, write, read), stage


def assign(vectors: np.ndarray, centers: np.ndarray, top: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Nearest ``top`` centres by cosine: (n, top) cluster ids and similarities, best first."""
    c = centers / np.maximum(np.linalg.norm(centers, axis=1, keepdims=True), 1e-12)
    sims = vectors @ c.T
    top = min(top, len(centers))
    idx = np.argsort(-sims, axis=1)[:, :top]
    return idx, np.take_along_axis(sims, idx, axis=1)


def student_t_assignment(sq_dists, alpha: float = 1.0):
    """Soft assignment q_ij of points to centres from squared distances (n, k): the Student-t
    kernel (1 + d_ij / alpha) ** (-(alpha + 1) / 2), normalised over the centres.

    Written with operators only, so it serves numpy arrays (ClusterLLM's entropy) and torch
    tensors (DEC's differentiable loss) alike.
    """
    q = (1.0 + sq_dists / alpha) ** (-(alpha + 1.0) / 2.0)
    return q / q.sum(-1)[..., None]


def cluster_sums(vectors: np.ndarray | StoredVectors, labels: np.ndarray, k: int) -> np.ndarray:
    """(k, d) float64 sum of each cluster's member vectors; stored vectors are summed a part at a time."""
    import scipy.sparse as sp

    labels = np.asarray(labels)
    sums = np.zeros((k, vectors.shape[1]), np.float64)
    for start, block in chunks(vectors, CHUNK_ROWS):  # bounds the sparse product's temporaries too
        rows = len(block)
        # a sparse one-hot product: np.add.at's unbuffered scatter took 12.8 s, this 0.85 s (100k x 384, 2 shared cores)
        one_hot = sp.csr_matrix((np.ones(rows, np.float32), (labels[start : start + rows], np.arange(rows))),
                                shape=(k, rows))
        block = np.asarray(block)
        sums += one_hot @ (block if block.dtype == np.float64 else block.astype(np.float32, copy=False))
    return sums


def centroids_of(vectors: np.ndarray | StoredVectors, labels: np.ndarray, k: int) -> np.ndarray:
    """Normalised mean vector of each cluster's members (zeros for an empty cluster)."""
    sums = cluster_sums(vectors, labels, k)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return (sums / np.maximum(norms, 1e-12)).astype(np.float32)


def members_by_cluster(labels: np.ndarray, k: int, scores: np.ndarray | None = None) -> list[np.ndarray]:
    """The rows of each cluster 0..k-1 in one sort (a pass per cluster is n x k: minutes at 1M texts):
    in row order, or highest ``scores`` first (ties in row order)."""
    labels = np.asarray(labels)
    order = np.argsort(labels, kind="stable") if scores is None else np.lexsort((-np.asarray(scores), labels))
    bounds = np.searchsorted(labels[order], np.arange(k + 1))
    return [order[bounds[c]:bounds[c + 1]] for c in range(k)]
