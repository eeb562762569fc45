import numpy as np
import pytest
from helpers import blobs
from llmclust.pipeline.clustering import (
    ClusteringConfig,
    assign,
    centroids_of,
    cluster_over_seeds,
    kmeans,
)
from llmclust.pipeline.evaluation import cluster_accuracy


@pytest.mark.parametrize("algorithm", ["kmeans", "minibatch", "faiss"])
def test_each_algorithm_recovers_blobs(algorithm):
    x, y = blobs()
    run = kmeans(x, 4, 0, ClusteringConfig(n_clusters=4, algorithm=algorithm, n_init=3))
    assert cluster_accuracy(y, run.labels) == 1.0
    assert run.centers.shape == (4, 8)


def test_seeds_are_recorded_and_deterministic():
    x, _ = blobs()
    cfg = ClusteringConfig(n_clusters=4, seeds=[1, 2])
    a, b = cluster_over_seeds(x, cfg), cluster_over_seeds(x, cfg)
    assert [r.seed for r in a] == [1, 2]
    assert all((r.labels == s.labels).all() for r, s in zip(a, b))


def test_too_few_rows_says_both_numbers():
    with pytest.raises(ValueError, match="n_samples=3 should be >= n_clusters=4"):
        kmeans(np.zeros((3, 2), np.float32), 4, 0, ClusteringConfig(n_clusters=4))


def test_assign_and_centroids():
    x = np.array([[1, 0], [0.9, 0.1], [0, 1]], np.float32)
    c = centroids_of(x, np.array([0, 0, 1]), 2)
    np.testing.assert_allclose(np.linalg.norm(c, axis=1), 1, rtol=1e-6)
    idx, sims = assign(np.array([[0.1, 1.0]], np.float32), c, top=2)
    assert idx.tolist() == [[1, 0]] and sims[0, 0] > sims[0, 1]


def test_scikit_learn_runs_with_one_blas_thread(monkeypatch):
    """k-means++ makes many small BLAS calls; spinning BLAS threads made it 20x slower on shared cores."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_info

    seen = []
    original = KMeans.fit

    def spy(self, x, *args, **kwargs):
        seen.extend(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")
        return original(self, x, *args, **kwargs)

    monkeypatch.setattr(KMeans, "fit", spy)
    x, _ = blobs()
    kmeans(x, 4, 0, ClusteringConfig(n_clusters=4, algorithm="kmeans"))
    assert seen and set(seen) == {1}


def test_auto_uses_faiss_from_50k_rows():
    cfg = ClusteringConfig()
    assert cfg.resolved_algorithm(49_999) == "kmeans" and cfg.resolved_algorithm(50_000) == "faiss"


def test_the_cluster_stage_below_the_faiss_threshold_needs_no_faiss(monkeypatch, tmp_path):
    import sys

    from llmclust.pipeline.clustering import cluster_stage
    from llmclust.store.runs import RunDir

    monkeypatch.setitem(sys.modules, "faiss", None)  # `import faiss` raises: faiss is an extra
    x, _ = blobs()
    run = RunDir(tmp_path)
    runs, _ = cluster_stage(run, ClusteringConfig(n_clusters=4, seeds=[0]), x, run.stage("input"))
    assert len(runs) == 1 and len(np.unique(runs[0].labels)) == 4


def test_the_cluster_stage_is_reused_whatever_seed_k_was_estimated_with(tmp_path):
    from llmclust.pipeline.clustering import cluster_stage
    from llmclust.store.runs import RunDir

    x, _ = blobs()
    run = RunDir(tmp_path)
    _, first = cluster_stage(run, ClusteringConfig(n_clusters=4, seeds=[0]), x, run.stage("input"))
    _, again = cluster_stage(run, ClusteringConfig(n_clusters=4, seeds=[0], k_seed=8), x, run.stage("input"))
    _, other = cluster_stage(run, ClusteringConfig(n_clusters=5, seeds=[0], k_seed=8), x, run.stage("input"))
    assert again.fingerprint == first.fingerprint != other.fingerprint  # K, not how it was found, names the stage
