import numpy as np
import pytest
from llmclust.methods.cotrain.preference import (
    density_scores,
    duplicate_matrix,
    multi_kmeans,
    preference_pairs,
)


def _blobs(seed=0):
    """Two tight blobs of greedy embeddings; candidates: 0 = greedy, 1 = near blob, 2 = far away."""
    rng = np.random.default_rng(seed)
    centres = np.array([[5.0, 0.0], [0.0, 5.0]], np.float32)
    greedy = np.concatenate([centres[0] + 0.1 * rng.normal(size=(20, 2)),
                             centres[1] + 0.1 * rng.normal(size=(20, 2))]).astype(np.float32)
    near = greedy + 0.05
    far = greedy + np.array([20.0, 20.0], np.float32)
    return greedy, np.stack([greedy, near, far], axis=1)


def test_multi_kmeans_finds_the_blobs_in_every_run():
    greedy, _ = _blobs()
    centres = multi_kmeans(greedy, k=2, runs=10, seed=0)
    assert centres.shape == (10, 2, 2)
    for run in centres:
        nearest = np.sort(np.round(run[np.argsort(run[:, 0])]).ravel())
        assert np.allclose(nearest, [0, 0, 5, 5], atol=1)


def test_density_prefers_the_candidate_inside_the_dense_region():
    greedy, candidates = _blobs()
    scores = density_scores(greedy, candidates, k=2, runs=20, seed=0)
    assert scores.shape == (40, 3)
    assert (scores[:, 2] > scores[:, 0] + 10).all()  # the far candidate is never preferred
    pairs = preference_pairs(scores, np.ones((40, 3), bool), max_pairs=1000)
    assert set(pairs.chosen.tolist()) <= {0, 1}
    assert 2 in pairs.rejected.tolist() and len(pairs) == 80
    assert pairs.report["texts_without_pair"] == 0


def test_invalid_duplicates_and_cap_are_counted():
    scores = np.array([[0.1, 0.5, 0.9], [0.7, 0.2, 0.3], [0.5, 0.5, 0.5]], np.float32)
    valid = np.array([[True, True, True], [False, True, True], [True, False, False]])
    same = duplicate_matrix([["a", "A ", "b"], ["x", "y", "z"], ["p", "q", "r"]])
    pairs = preference_pairs(scores, valid, max_pairs=10, same=same)
    # text 0: chosen 0, candidate 1 duplicates it -> one pair (0, 2); text 1: chosen 1 -> (1, 2)
    assert list(zip(pairs.row, pairs.chosen, pairs.rejected)) == [(0, 0, 2), (1, 1, 2)]
    assert pairs.report == {"texts": 3, "invalid_skipped": 3, "duplicates_skipped": 1,
                            "texts_without_pair": 1, "pairs_available": 2, "sampled_out": 0}
    capped = preference_pairs(scores, valid, max_pairs=1, same=same, seed=3)
    assert len(capped) == 1 and capped.report["sampled_out"] == 1


def test_random_preference_picks_among_valid_candidates():
    scores = np.tile(np.array([[0.0, 1.0, 2.0, 3.0]], np.float32), (200, 1))
    density = preference_pairs(scores, np.ones((200, 4), bool), max_pairs=10_000)
    random = preference_pairs(scores, np.ones((200, 4), bool), max_pairs=10_000, random_choice=True, seed=1)
    assert set(density.chosen.tolist()) == {0}
    assert set(random.chosen.tolist()) == {0, 1, 2, 3}


def test_hundred_runs_score_every_candidate_reproducibly():
    rng = np.random.default_rng(0)
    greedy = rng.normal(size=(1000, 384)).astype(np.float32)
    candidates = rng.normal(size=(1000, 4, 384)).astype(np.float32)
    scores = density_scores(greedy, candidates, k=20, runs=100, seed=0, iters=10)
    assert scores.shape == (1000, 4) and np.isfinite(scores).all()
    np.testing.assert_array_equal(scores, density_scores(greedy, candidates, k=20, runs=100, seed=0, iters=10))


def test_too_few_texts_for_k_is_explained():
    with pytest.raises(ValueError, match="n_samples=3 should be >= n_clusters=5"):
        multi_kmeans(np.zeros((3, 2), np.float32), k=5, runs=1)


def test_large_inputs_fit_a_sample_and_groups_of_runs_change_nothing(monkeypatch):
    """Beyond k x MAX_POINTS_PER_CENTRE rows the runs fit a sample; runs fitted in groups give the same scores."""
    greedy, candidates = _blobs()
    whole = density_scores(greedy, candidates, k=2, runs=4, seed=0)
    monkeypatch.setattr("llmclust.methods.cotrain.preference.MAX_BATCH_FLOATS", 80)  # one run per group
    assert np.allclose(density_scores(greedy, candidates, k=2, runs=4, seed=0), whole, atol=1e-5)
    monkeypatch.setattr("llmclust.methods.cotrain.preference.MAX_POINTS_PER_CENTRE", 5)  # 10 of the 40 rows
    sampled = density_scores(greedy, candidates, k=2, runs=4, seed=0)
    assert (sampled[:, 2] > sampled[:, 0] + 10).all()
