import sys

import numpy as np
import pytest
from llmclust.config import ConfigError
from llmclust.pipeline.reduction import (
    ExactSearch,
    Reducer,
    ReductionConfig,
    exact_knn,
    exact_knn_applies,
    fit_transform,
)


@pytest.mark.parametrize("key, value", [
    ("method", "tsne"), ("n_components", 0), ("n_neighbors", 1), ("min_dist", 1.5), ("metric", "hamming"),
    ("n_epochs", -1), ("fit_sample", 10), ("transform_batch_rows", 0), ("exact_knn_max_rows", -1),
])
def test_config_rejects_bad_values(key, value):
    with pytest.raises(ConfigError, match=f"^{key}="):
        ReductionConfig(**{key: value})


def test_enabled_and_none_is_identity(tmp_path):
    assert ReductionConfig(method="umap").enabled and not ReductionConfig().enabled
    x = np.arange(12, dtype=np.float64).reshape(4, 3)
    reducer, out = fit_transform(x, ReductionConfig(), seed=0)
    assert out.dtype == np.float32 and np.array_equal(out, x)
    reducer.save(tmp_path)
    assert np.array_equal(Reducer.load(tmp_path).transform(x), x)


def test_missing_umap_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)  # makes `import umap` raise ImportError
    with pytest.raises(ImportError, match="pip install umap-learn"):
        fit_transform(np.zeros((50, 4), np.float32), ReductionConfig(method="umap"), seed=0)


def test_exact_knn_only_where_every_row_is_fitted_and_they_are_few():
    cfg = ReductionConfig(method="umap", exact_knn_max_rows=1000)
    assert exact_knn_applies(1000, 1000, cfg)
    assert not exact_knn_applies(1001, 1001, cfg)  # too many for brute force
    assert not exact_knn_applies(500, 5000, cfg)  # a sample: the rest is transformed against it (NN-descent's search)
    assert not exact_knn_applies(10, 10, ReductionConfig(method="umap", exact_knn_max_rows=0))
    assert not exact_knn_applies(10, 10, ReductionConfig(method="none"))


def test_exact_knn_is_each_rows_nearest_itself_first():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 16)).astype(np.float32)
    ids, dists = exact_knn(x, ReductionConfig(method="umap", n_neighbors=5))
    assert ids.shape == dists.shape == (200, 5) and ids.dtype == np.int32 and dists.dtype == np.float32
    assert (ids[:, 0] == np.arange(200)).all() and (dists[:, 0] == 0).all()  # exactly: UMAP reads it as "itself"
    twins = np.vstack([x[:1], x[:1], x[1:50]])  # a duplicate text: each copy still comes first in its own row
    assert (exact_knn(twins, ReductionConfig(method="umap", n_neighbors=5))[0][:2, 0] == [0, 1]).all()
    with pytest.raises(ValueError, match="more than n_neighbors=5 rows, got 5"):
        exact_knn(x[:5], ReductionConfig(method="umap", n_neighbors=5))
    normed = x / np.linalg.norm(x, axis=1, keepdims=True)
    truth = np.argsort(-(normed @ normed.T), axis=1)[:, :5]  # cosine, brute force by hand
    assert (np.sort(ids, axis=1) == np.sort(truth, axis=1)).all()
    assert (ExactSearch(x, "cosine").query(x[:3], 5)[0] == ids[:3]).all()


def test_seeds_for_gpu_tasks_get_no_exact_graph_and_no_cpu_tasks(monkeypatch, tmp_path):
    """cuML on GPU workers (a GPU in the cluster, cuml installed): each seed goes to run_placed's
    GPU task, which builds its own graph; neither the exact graph nor one-CPU tasks are made."""
    from llmclust.pipeline import reduction
    from llmclust.store.runs import RunDir

    calls = []

    def placed(fn, *args, **kwargs):
        calls.append(args)
        return np.zeros((len(args[0]), 5), np.float32), {"seconds": 0.0, "cpu_s": 0.0, "load_average": 0.0}

    monkeypatch.setattr(reduction, "wants_gpu", lambda *args: True)
    monkeypatch.setattr(reduction, "run_placed", placed)
    monkeypatch.setattr(reduction, "seeds_in_parallel", lambda *args: pytest.fail("one-CPU tasks asked for"))
    run = RunDir(tmp_path / "run")
    x = np.random.default_rng(0).normal(size=(100, 8)).astype(np.float32)
    reduction.reduce_stage(run, ReductionConfig(method="umap", parallel_seeds="always"), x, run.stage("up", 1), [0, 1])
    assert len(calls) == 2 and all(knn is None for *_, knn in calls)


# The tests below run umap: the first fit and transform of a process JIT-compile numba code.

CFG = ReductionConfig(method="umap", fit_sample=600, transform_batch_rows=250)


@pytest.fixture(scope="module")
def blobs():
    from sklearn.datasets import make_blobs

    x, y = make_blobs(n_samples=1200, n_features=50, centers=8, cluster_std=4.0, random_state=0)
    return x.astype(np.float32), y


@pytest.fixture(scope="module")
def reduced(blobs):
    return fit_transform(blobs[0], CFG, seed=0)


@pytest.mark.slow
def test_fit_sample_path_gives_every_row_a_vector(blobs, reduced):
    reducer, out = reduced
    assert out.shape == (1200, 5) and out.dtype == np.float32 and np.isfinite(out).all()
    assert reducer.model.embedding_.shape == (600, 5)  # fitted on the sample only
    fitted = np.isin(out, reducer.model.embedding_).all(axis=1)
    assert fitted.sum() == 600  # the sample keeps its layout; the other 600 were transformed
    new = reducer.transform(blobs[0][:7] + 0.01)
    assert new.shape == (7, 5) and new.dtype == np.float32


@pytest.mark.slow
def test_same_seed_same_output_other_seed_differs(blobs, reduced):
    again = fit_transform(blobs[0], CFG, seed=0)[1]
    assert np.array_equal(again, reduced[1])
    assert not np.allclose(fit_transform(blobs[0], CFG, seed=1)[1], reduced[1])


@pytest.mark.slow
def test_save_load_round_trip(tmp_path, blobs, reduced):
    reducer = reduced[0]
    reducer.save(tmp_path / "reducer")
    loaded = Reducer.load(tmp_path / "reducer")
    assert loaded.cfg == CFG and loaded.seed == 0
    x = blobs[0][:300] + 0.01
    np.testing.assert_allclose(loaded.transform(x), reducer.transform(x), atol=1e-5)


@pytest.mark.slow
def test_reduced_kmeans_recovers_blobs(blobs, reduced):
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    labels = KMeans(8, random_state=0, n_init=1).fit_predict(reduced[1])
    assert adjusted_rand_score(blobs[1], labels) > 0.9  # a random or collapsed layout scores ~0


def test_cuml_is_used_where_installed_with_a_gpu_and_named_when_missing(tmp_path, monkeypatch):
    """The backend choice and what a cuML-fitted reducer needs when loaded again. cuml and a GPU
    are faked here (CI has neither): a stand-in class records what the real one is built with."""
    import types

    import torch
    from llmclust.pipeline import placement, reduction

    made = {}

    class FakeCumlUMAP:
        def __init__(self, **kwargs):
            made.update(kwargs)

        def fit(self, x):
            self.embedding_ = np.asarray(x, np.float32)[:, :5]
            return self

        def transform(self, x):
            return np.asarray(x, np.float32)[:, :5]

    fake = types.ModuleType("cuml")
    fake.manifold = types.SimpleNamespace(UMAP=FakeCumlUMAP)
    monkeypatch.setitem(sys.modules, "cuml", fake)
    monkeypatch.setitem(sys.modules, "cuml.manifold", fake.manifold)
    monkeypatch.setattr(placement.importlib.util, "find_spec", lambda name: object() if name == "cuml" else None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    x = np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)
    reducer, out = fit_transform(x, ReductionConfig(method="umap", fit_sample=20), seed=3)
    assert reducer.backend == "cuml" and out.shape == (40, 5)
    assert made == {"n_neighbors": 15, "n_components": 5, "min_dist": 0.0, "metric": "cosine", "n_epochs": 200,
                    "random_state": 3, "output_type": "numpy"}
    assert reduction._backend(ReductionConfig(method="umap", use_gpu="never")) == "umap-learn"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert reduction._backend(ReductionConfig(method="umap")) == "umap-learn"  # cuml installed, no GPU here

    reducer.model = None  # what matters below is the metadata: the backend it was fitted with
    reducer.save(tmp_path / "r")
    monkeypatch.setitem(sys.modules, "cuml.manifold", None)  # cuml missing where the run is served
    with pytest.raises(ImportError, match=r"fitted with cuML: it needs cuml .*reduce\.use_gpu=never"):
        Reducer.load(tmp_path / "r")


def test_warm_up_compiles_in_the_background_and_the_stage_waits_for_it(monkeypatch):
    from llmclust.pipeline import reduction

    monkeypatch.setattr(reduction, "_warm_up", None)
    assert reduction.wait_for_warm_up() == 0.0  # none started
    reduction.start_warm_up(ReductionConfig(method="none"), 1000)
    assert reduction._warm_up is None  # nothing to compile without UMAP
    reduction.start_warm_up(ReductionConfig(method="umap"), 1000)
    started = reduction._warm_up
    assert started is not None and started.name == "umap-warm-up"
    reduction.start_warm_up(ReductionConfig(method="umap"), 1000)
    assert reduction._warm_up is started  # once per process
    assert reduction.wait_for_warm_up() >= 0.0 and not started.is_alive()


@pytest.mark.slow
def test_fit_on_every_row_takes_the_exact_graph_and_transforms_through_it(tmp_path, blobs):
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    cfg = ReductionConfig(method="umap")  # 1200 rows, all fitted: exact kNN
    reducer, out = fit_transform(blobs[0], cfg, seed=0)
    index = reducer.model._knn_search_index
    assert isinstance(index, ExactSearch) and index.rows is reducer.model._raw_data  # no NN-descent index, no 2nd copy
    assert adjusted_rand_score(blobs[1], KMeans(8, random_state=0, n_init=1).fit_predict(out)) > 0.9
    reducer.save(tmp_path / "reducer")
    x = blobs[0][:50] + 0.01
    new = Reducer.load(tmp_path / "reducer").transform(x)  # predict and Serve: new texts through it
    np.testing.assert_allclose(new, reducer.transform(x), atol=1e-5)
    nearest = ((new[:, None] - out[None]) ** 2).sum(-1).argmin(1)  # each lands among its own blob
    assert (blobs[1][nearest] == blobs[1][:50]).mean() > 0.9


@pytest.mark.slow
def test_seeds_fitted_in_ray_tasks_at_once_give_what_one_after_another_gives(ray_cluster, tmp_path, blobs):
    from dataclasses import replace

    from llmclust.pipeline.reduction import reduce_stage, seeds_in_parallel
    from llmclust.store.runs import RunDir

    run = RunDir(tmp_path / "run")
    upstream = run.stage("up", 1)
    x, cfg = blobs[0][:400], ReductionConfig(method="umap", n_epochs=50)
    assert not seeds_in_parallel(cfg, 2, x)  # the tests' Ray has 2 CPUs: not one per seed and one more
    assert not seeds_in_parallel(replace(cfg, parallel_seeds="always"), 1, x)  # one seed: nothing to overlap
    here, _ = reduce_stage(run, replace(cfg, parallel_seeds="never"), x, upstream, [0, 1], name="here")
    tasks, stage = reduce_stage(run, replace(cfg, parallel_seeds="always"), x, upstream, [0, 1], name="tasks")
    for seed in (0, 1):
        np.testing.assert_array_equal(tasks[seed], here[seed])  # the same layout, fitted in another process
        assert Reducer.load(stage.path / f"seed_{seed}").transform(x[:3]).shape == (3, 5)
    assert len(stage.manifest["seed_timing"]) == 2  # each seed's seconds, taken in its task
