import numpy as np
import pytest
from llmclust.config import ConfigError
from llmclust.methods.clusterllm.config import Demonstration, GranularityConfig
from llmclust.methods.clusterllm.granularity import (
    build_hierarchy,
    choose_k,
    classical_estimates,
    sample_pairs,
)
from llmclust.methods.clusterllm.judges import OracleJudge
from sklearn.datasets import make_blobs

TRUE_K = 12


@pytest.fixture(scope="module")
def blobs():
    x, y = make_blobs(n_samples=1200, centers=TRUE_K, n_features=16, cluster_std=1.0, random_state=0)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), y


def test_hierarchy_levels(blobs):
    x, _ = blobs
    h = build_hierarchy(x, k_max=40, k_min=2, seed=0)
    assert list(h.ks[[0, -1]]) == [40, 2]
    for k in (40, 17, 2):
        assert len(np.unique(h.labels_at(k))) == k


def test_pairs_come_from_the_two_merged_sides(blobs):
    x, _ = blobs
    h = build_hierarchy(x, k_max=40, k_min=2, seed=0)
    pairs = sample_pairs(h, pairs_per_merge=2, seed=0)
    assert len(pairs) == 2 * 38
    for a, b, k in pairs:
        labels = h.labels_at(int(k))
        assert labels[a] != labels[b]  # separate just before the merge
        assert h.labels_at(int(k) - 1)[a] == h.labels_at(int(k) - 1)[b]  # together right after


def test_oracle_answers_recover_the_known_k(blobs):
    x, y = blobs
    h = build_hierarchy(x, k_max=60, k_min=2, seed=0)
    pairs = sample_pairs(h, pairs_per_merge=1, seed=0)
    same = OracleJudge(y).pairs(pairs).same()
    choice = choose_k(h, pairs, same, beta=0.92)
    assert choice.k == TRUE_K and choice.answered == len(pairs) and choice.unanswered == 0
    assert choice.curve[TRUE_K] == max(choice.curve.values())
    classical = classical_estimates(x, h, sample=500, seed=0)
    assert set(classical) == {"silhouette", "elbow", "bic", "curves"}
    # well-separated blobs: the classical estimates land near the true K as well
    assert all(abs(classical[m] - TRUE_K) <= 2 for m in ("silhouette", "elbow", "bic"))


def test_unanswered_pairs_are_dropped_and_counted(blobs):
    x, y = blobs
    h = build_hierarchy(x, k_max=30, k_min=2, seed=0)
    pairs = sample_pairs(h, 1, 0)
    same = OracleJudge(y).pairs(pairs).same()
    same[:5] = -1
    choice = choose_k(h, pairs, same, 0.92)
    assert choice.unanswered == 5 and choice.answered == len(pairs) - 5
    with pytest.raises(ValueError, match="none of the"):
        choose_k(h, pairs, np.full(len(pairs), -1), 0.92)


def test_config_checks():
    with pytest.raises(ConfigError, match="k_max"):
        GranularityConfig(k_max=2, k_min=2)
    with pytest.raises(ConfigError, match="text_a"):
        Demonstration(text_a="", text_b="x")
    with pytest.raises(ValueError, match="k_max"):
        build_hierarchy(np.zeros((10, 4), np.float32), k_max=20, k_min=2, seed=0)
