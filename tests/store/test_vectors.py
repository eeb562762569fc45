"""Vectors left in a stage's parts: read a part at a time, and every consumer of them (reduce,
centroids, publish scores) gives what it gives on the same vectors as one array."""

import numpy as np
import pyarrow as pa
import pytest
from llmclust import schema
from llmclust.pipeline.clustering import centroids_of
from llmclust.pipeline.embedding import stored_vectors
from llmclust.store.parts import PartStore
from llmclust.store.runs import DamagedOutput, RunDir
from llmclust.store.vectors import StoredVectors, chunks, take


def store(tmp_path, x: np.ndarray, bounds=(0, 7, 19, 30)) -> StoredVectors:
    stage = RunDir(tmp_path).stage("embed", 1)
    parts = PartStore(stage)
    for start, stop in zip(bounds[:-1], bounds[1:]):  # parts of uneven sizes, written out of order
        parts.write(start, stop, pa.table({schema.ROW: pa.array(np.arange(start, stop), pa.int64()),
                                           schema.EMBEDDING: schema.to_fixed_list(x[start:stop])}))
    stage.finish(len(x))
    return stored_vectors(stage.path, lazy=True)


@pytest.fixture
def x():
    v = np.random.default_rng(0).normal(size=(30, 6)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_chunks_take_and_load_match_the_array(tmp_path, x):
    stored = store(tmp_path, x)
    assert stored.shape == (30, 6) and len(stored) == 30
    np.testing.assert_array_equal(stored.load(), x)
    starts = [(s, len(b)) for s, b in stored.chunks(5)]
    assert starts == [(0, 5), (5, 2), (7, 5), (12, 5), (17, 2), (19, 5), (24, 5), (29, 1)]  # never across a part
    rows = np.array([29, 0, 8, 8, 18, 7])
    np.testing.assert_array_equal(stored.take(rows), x[rows])  # the order asked, repeats kept
    np.testing.assert_array_equal(take(x, rows), x[rows])
    assert [s for s, _ in chunks(x, 12)] == [0, 12, 24]


def test_centroids_from_parts_equal_centroids_from_the_array(tmp_path, x):
    labels = np.random.default_rng(1).integers(0, 4, 30)
    np.testing.assert_allclose(centroids_of(store(tmp_path, x), labels, 4), centroids_of(x, labels, 4), rtol=1e-6)


def test_a_damaged_part_is_reported_when_the_stage_is_read(tmp_path, x):
    stored = store(tmp_path, x)
    part = sorted(stored.parts.path.glob("part-*.parquet"))[1]
    part.write_bytes(part.read_bytes()[:-10])
    with pytest.raises(DamagedOutput, match="does not match its checksum"):
        stored_vectors(stored.parts.path.parent, lazy=True)


@pytest.mark.slow
def test_reduction_from_parts_equals_reduction_from_the_array(tmp_path):
    from llmclust.pipeline.reduction import ReductionConfig, fit_transform
    from sklearn.datasets import make_blobs

    x = make_blobs(n_samples=400, n_features=16, centers=4, random_state=0)[0].astype(np.float32)
    cfg = ReductionConfig(method="umap", fit_sample=150, transform_batch_rows=60, n_epochs=50)
    # parts on multiples of the batch: the same transform batches as the array's (UMAP's transform
    # of a row depends on the rows transformed with it)
    from_parts = fit_transform(store(tmp_path, x, bounds=(0, 120, 240, 400)), cfg, seed=3)[1]
    np.testing.assert_allclose(from_parts, fit_transform(x, cfg, seed=3)[1], atol=1e-5)
