import numpy as np
import pytest
from helpers import blobs
from llmclust.config import ConfigError
from llmclust.methods.clusterllm.config import TripletConfig
from llmclust.methods.clusterllm.triplets import (
    TripletSample,
    entropy,
    sample_triplets,
    soft_assignment,
)


def unit_blobs(per=40, k=6, d=16):
    return blobs(k, per, d, spread=3.0, unit=True)[0]


def test_sampling_invariants():
    vectors = unit_blobs()
    cfg = TripletConfig(budget=60, coarse_k=12, seed=1)
    sample = sample_triplets(vectors, cfg)
    rows = sample.rows
    assert len(rows) == 60 and sample.report["budget_reached"]
    assert (rows[:, 0] != rows[:, 1]).all() and (rows[:, 0] != rows[:, 2]).all()  # no anchor as its own choice
    keys = {(a, *sorted((b, c))) for a, b, c in rows}
    assert len(keys) == len(rows)  # no repeated triplet
    from llmclust.pipeline.clustering import ClusteringConfig, kmeans

    coarse = kmeans(vectors, 12, 1, ClusteringConfig(n_clusters=12, seeds=[1]))
    assert (coarse.labels[rows[:, 1]] != coarse.labels[rows[:, 2]]).all()  # choices from distinct clusters
    # anchors come from the most uncertain band
    assert len(set(rows[:, 0])) <= sample.report["anchors"] == int(0.2 * len(vectors))


def test_budget_respected_when_anchors_run_out():
    sample = sample_triplets(unit_blobs(per=5, k=2), TripletConfig(budget=10_000, coarse_k=4, max_rounds=3))
    assert 0 < len(sample.rows) < 10_000
    assert not sample.report["budget_reached"] and sample.report["rounds"] == 3


def test_table_round_trip():
    sample = sample_triplets(unit_blobs(), TripletConfig(budget=8, coarse_k=6))
    back = TripletSample.from_table(sample.to_table())
    np.testing.assert_array_equal(back.rows, sample.rows)


def test_soft_assignment_sums_to_one_and_prefers_the_nearest():
    centers = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    ids, probs = soft_assignment(np.array([[1.0, 0.0], [5.0, 0.0]]), centers, alpha=1.0, top=2, chunk=1)
    np.testing.assert_allclose(probs.sum(1), 1.0)
    assert ids[0, 0] == 0 and probs[0, 0] > probs[0, 1]
    assert entropy(probs)[1] > entropy(probs)[0]  # the midpoint is the uncertain one


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="band_low"):
        TripletConfig(band_high=0.5, band_low=0.2)
    with pytest.raises(ConfigError, match="kc_min"):
        TripletConfig(kc_min=1)
    assert TripletConfig().closest_count(100) == 2 and TripletConfig().closest_count(500) == 10
