import numpy as np
import pytest

from llmclust.neighbours import build_index, index_kind, NeighboursConfig, from_table, knn, to_table


def unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def brute(x, k):
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    return np.argsort(-sims, axis=1)[:, :k]


def test_exact_matches_brute_force_and_excludes_self():
    x = unit(np.random.default_rng(0).normal(size=(300, 16)))
    ids, sims = knn(x, NeighboursConfig(k=5, index="flat"))
    assert (ids != np.arange(300)[:, None]).all()
    assert (ids == brute(x, 5)).mean() > 0.99
    assert (np.diff(sims, axis=1) <= 1e-6).all()


def test_ivf_recall_is_high():
    x = unit(np.random.default_rng(1).normal(size=(2000, 16)))
    ids, _ = knn(x, NeighboursConfig(k=10, index="ivf", nlist=16, nprobe=8))
    truth = brute(x, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, truth)])
    assert recall > 0.9
    assert (ids >= 0).all()
    import faiss

    index = build_index(x, NeighboursConfig(index="ivf", nlist=16, nprobe=8))
    assert faiss.extract_index_ivf(index).nprobe == 8 and index.is_trained and index.ntotal == 2000


def test_duplicates_still_exclude_self_and_table_round_trips():
    x = unit(np.array([[1, 0], [1, 0], [0, 1], [0.7, 0.7]], np.float32))
    ids, sims = knn(x, NeighboursConfig(k=2))
    assert (ids != np.arange(4)[:, None]).all()
    back_ids, back_sims = from_table(to_table(ids, sims))
    assert (back_ids == ids).all() and np.allclose(back_sims, sims)


def test_too_few_vectors():
    with pytest.raises(ValueError, match="at least 2 vectors"):
        knn(np.ones((1, 4), np.float32), NeighboursConfig(k=3))


def test_auto_goes_approximate_when_exact_search_would_cost_a_50k_self_search():
    cfg = NeighboursConfig()
    assert cfg.ivf_min_rows == 50_000
    assert index_kind(cfg, 49_999) == "flat" and index_kind(cfg, 50_000) == "ivf"
    assert index_kind(cfg, 2_500, queries=1_000_000) == "ivf"  # many queries against few rows
    assert index_kind(cfg, 3_080, queries=770) == "flat"
    assert index_kind(NeighboursConfig(index="flat"), 10**7) == "flat"
