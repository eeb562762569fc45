"""K chosen without labels: the estimator on separated blobs, its config checks, its report section."""

from dataclasses import replace
from typing import Callable

import numpy as np
import pytest
from llmclust import ray_session
from llmclust.config import ConfigError, from_dict
from llmclust.pipeline import choose_k
from llmclust.pipeline.choose_k import estimate_k, estimation_reduce, k_grid
from llmclust.pipeline.clustering import ClusteringConfig
from llmclust.pipeline.reduction import ReductionConfig

UMAP = ReductionConfig(method="umap", n_epochs=50, parallel_seeds="never")
SEEDS = [0, 1, 2]


def test_grid_is_geometric_and_ends_at_both_bounds():
    grid = k_grid(2, 300)
    assert grid[0] == 2 and grid[-1] == 300 and grid == sorted(set(grid))
    steps = np.exp(np.diff(np.log(grid[10:])))
    assert steps.max() < 1.12 and abs(np.median(steps) - 1.08) < 0.01  # about 8 % apart once K is past rounding


@pytest.mark.parametrize("centres", [6, 25])
def test_separated_blobs_get_their_number_within_the_band(centres):
    from sklearn.datasets import make_blobs

    x, _ = make_blobs(n_samples=60 * centres, n_features=5, centers=centres, cluster_std=0.4, center_box=(-30, 30),
                      random_state=1)
    found = estimate_k(x, 2, 100, SEEDS, UMAP)
    assert found.band[0] <= found.k <= found.band[1]
    assert abs(found.k - centres) <= max(1, 0.1 * centres), found.reason
    assert found.curve["k"][0] == 2 and len(found.curve["silhouette"]) == len(found.curve["k"])
    assert np.asarray(found.curve["by_sample"]).shape == (len(SEEDS), len(found.curve["k"]))
    assert len(found.k_by_sample) == len(SEEDS) and "averaged over 3 reduced samples" in found.reason
    assert estimate_k(x, 2, 100, SEEDS, UMAP).to_dict() | {"seconds": 0} == found.to_dict() | {"seconds": 0}  # run after run


def test_each_repeat_reduces_its_own_sample_read_in_one_pass(monkeypatch):
    x = np.arange(40 * 3, dtype=np.float32).reshape(40, 3)
    reads, seen = [], []
    monkeypatch.setattr(choose_k, "take", lambda v, rows: reads.append(rows) or v[rows])
    monkeypatch.setattr(choose_k, "repeat_curve", lambda rows, reduce, grid, seed: seen.append((rows, reduce, seed))
                        or np.linspace(0, 1, len(grid)))
    found = estimate_k(x, 2, 3, [7, 8], UMAP, sample=24)  # 24 rows a repeat (>= 8 per cluster at k_max=3)
    assert len(reads) == 1 and [s for _, _, s in seen] == [7, 8]
    first, second = seen[0][0], seen[1][0]
    assert first.shape == second.shape == (24, 3) and not np.array_equal(first, second)
    assert set(map(tuple, first)) <= set(map(tuple, x))  # rows of the corpus, whole
    assert seen[0][1].use_gpu == "never" and seen[0][1].fit_sample == 0  # a 24-row fit needs no GPU, no sub-sample
    assert found.sample == 24 and found.k_by_sample == [3, 3]  # a rising curve: the band is at the top
    assert found.k_stderr == 0.0 and found.to_dict()["k_stderr"] == 0.0


def test_the_estimate_says_how_far_other_samples_would_move_it():
    estimate = choose_k.KEstimate(81, (59, 101), "", k_by_sample=[78, 72, 74, 60, 108])
    assert estimate.k_stderr == pytest.approx(np.std([78, 72, 74, 60, 108], ddof=1) / np.sqrt(5), abs=0.05)
    assert estimate.to_dict()["k_stderr"] == estimate.k_stderr == 8.0
    assert choose_k.standard_error([77]) == 0.0  # one repeat: no spread to report


@pytest.mark.parametrize("sizes", [[1, 2, 3, 50, 144], [100, 100], [1, 1, 198]])
def test_the_silhouette_is_sklearns(sizes):
    from sklearn.metrics import pairwise_distances, silhouette_score

    rng = np.random.default_rng(len(sizes))
    labels = rng.permutation(np.repeat(np.arange(len(sizes)) * 3 + 1, sizes))  # codes need not be 0..k-1
    x = rng.normal(size=(len(labels), 4)) + labels[:, None] * 0.5
    x[1] = x[0]  # a duplicate: a zero distance
    distances = pairwise_distances(x).astype(np.float32)
    ours = choose_k.mean_silhouette(distances, labels)
    assert ours == pytest.approx(silhouette_score(distances, labels, metric="precomputed"), abs=1e-6)
    assert -1 < ours < 1
    with pytest.raises(ValueError, match="at least 2 clusters; got 1"):
        choose_k.mean_silhouette(distances, np.zeros(len(labels), int))


def test_the_estimate_reduces_even_where_the_job_does_not():
    assert estimation_reduce(ReductionConfig(method="none")).method == "umap"  # raw-space silhouettes rise with K
    mine = replace(UMAP, n_neighbors=30, use_gpu="always", fit_sample=500)
    assert estimation_reduce(mine) == replace(mine, use_gpu="never", fit_sample=0)  # otherwise as the job reduces
    assert estimation_reduce(replace(mine, n_epochs=0)).n_epochs == ReductionConfig.n_epochs  # not UMAP's 500 at 3k rows


def test_the_grid_stops_at_an_eighth_of_the_sample_and_says_so(monkeypatch):
    rising = lambda rows, reduce, grid, seed: np.linspace(0, 1, len(grid))  # noqa: E731  (the peak at the top)
    monkeypatch.setattr(choose_k, "repeat_curve", rising)
    x = np.zeros((240, 3), np.float32)
    found = estimate_k(x, 2, 200, SEEDS, UMAP)  # k_max=200 asks for 1,600 rows: there are 240
    assert found.sample == 240 and max(found.curve["k"]) == 30 and found.band[1] == 30
    assert "the grid stopped at 30 (sample / 8), below k_max=200" in found.reason
    big = estimate_k(np.zeros((20_000, 3), np.float32), 2, 5000, SEEDS, UMAP)
    assert big.sample == choose_k.MAX_SAMPLE and max(big.curve["k"]) == choose_k.MAX_SAMPLE // 8  # memory bounded


def test_auto_and_its_bounds_are_checked_before_any_work():
    assert ClusteringConfig(n_clusters="auto").auto_k and ClusteringConfig(n_clusters=None).auto_k  # None: the Python API
    assert from_dict(ClusteringConfig, {"n_clusters": "auto"}).auto_k  # YAML / command line
    assert not ClusteringConfig(n_clusters=12).auto_k
    assert ClusteringConfig(n_clusters="auto").k_range(10_000) == (2, 300)
    assert ClusteringConfig(n_clusters="auto").k_range(100) == (2, 50)  # k_max 0: half the texts, if fewer than 300
    with pytest.raises(ConfigError, match=r"^n_clusters='many'.*or auto"):
        ClusteringConfig(n_clusters="many")
    with pytest.raises(ConfigError, match=r"^k_max=5.*above k_min=10"):
        ClusteringConfig(n_clusters="auto", k_min=10, k_max=5)
    with pytest.raises(ConfigError, match=r"^k_min=1"):
        ClusteringConfig(k_min=1)


def test_the_report_draws_the_curve_and_says_why():
    from llmclust.report.k_choice import k_choice_section

    x = np.random.default_rng(0).normal(size=(300, 3)) + np.repeat(np.eye(3) * 12, 100, axis=0)
    choice = estimate_k(x, 2, 30, SEEDS, UMAP).to_dict()
    section = k_choice_section(choice)
    assert section.title == "How K was chosen" and f"K = {choice['k']}" in section.text
    assert "without labels" in section.text and choice["reason"] in section.text
    spread = {**choice, "k_by_sample": [3, 5, 4], "k_stderr": 0.6}
    assert "±0.6" in k_choice_section(spread).text and "clustering.k_seed" in k_choice_section(spread).text
    before = {k: v for k, v in spread.items() if k != "k_stderr"}  # a run made before k_stderr was stored
    assert "±0.6" in k_choice_section(before).text
    older = {**{k: v for k, v in before.items() if k != "k_by_sample"}, "k_by_seed": [3, 5, 4],  # keys of runs before k_seed
             "curve": {**{k: v for k, v in choice["curve"].items() if k != "by_sample"}, "by_seed": choice["curve"]["by_sample"]}}
    assert "±0.6" in k_choice_section(older).text and len(k_choice_section(older).figure.data) == len(section.figure.data)
    assert "a job with other seeds" in k_choice_section(older).text and "k_seed" not in k_choice_section(older).text
    assert [trace.name for trace in section.figure.data] == ["sample 1", "sample 2", "sample 3", "mean", "smoothed"]


def test_the_repeats_in_ray_tasks_give_the_same_estimate(ray_cluster, monkeypatch):
    from sklearn.datasets import make_blobs

    x, _ = make_blobs(n_samples=400, n_features=5, centers=8, cluster_std=0.5, center_box=(-30, 30), random_state=2)
    here = estimate_k(x, 2, 40, SEEDS, UMAP)
    asked = []
    monkeypatch.setattr(ray_session, "make_room", lambda per_unit, units: asked.append((per_unit, units)))
    in_tasks = estimate_k(x, 2, 40, SEEDS, replace(UMAP, parallel_seeds="always"))
    assert asked == [({"CPU": 1}, 3)]  # the task path ran: room for three one-CPU tasks
    assert in_tasks.curve == here.curve and in_tasks.k == here.k and in_tasks.k_by_sample == here.k_by_sample


def stage_inputs(tmp_path, monkeypatch, record: Callable[[tuple], None]):
    """A run, its upstream stage and 200 vectors; ``estimate_k`` replaced by a fixed K = 9 that
    hands ``record`` its positional arguments."""
    from llmclust.store.runs import RunDir

    run = RunDir(tmp_path / "run")
    monkeypatch.setattr(choose_k, "estimate_k", lambda *a, **k: record(a) or choose_k.KEstimate(
        9, (7, 12), "why", {"k": [9]}, [9] * choose_k.REPEATS))
    return run, run.stage("embed", 1), np.random.default_rng(0).normal(size=(200, 4)).astype(np.float32)


def test_the_stage_is_reused_whatever_runs_the_repeats_and_redone_when_the_reduction_changes(tmp_path, monkeypatch):
    computed = []
    run, upstream, x = stage_inputs(tmp_path, monkeypatch, lambda a: computed.append(a[4]))
    cfg = ClusteringConfig(n_clusters="auto", seeds=[0])
    first, stage = choose_k.choose_k_stage(run, cfg, UMAP, x, upstream)
    again, same = choose_k.choose_k_stage(run, cfg, replace(UMAP, parallel_seeds="always", transform_batch_rows=7,
                                                            use_gpu="always", fit_sample=50), x, upstream)
    assert len(computed) == 1 and same.fingerprint == stage.fingerprint and again.k == first.k == 9
    assert again.to_dict() | {"seconds": 0} == first.to_dict() | {"seconds": 0}  # read back whole from the manifest
    other, elsewhere = choose_k.choose_k_stage(run, cfg, replace(UMAP, n_neighbors=30), x, upstream)
    assert len(computed) == 2 and elsewhere.fingerprint != stage.fingerprint


def test_k_follows_k_seed_not_the_clustering_seeds(tmp_path, monkeypatch):
    asked = []
    run, upstream, x = stage_inputs(tmp_path, monkeypatch, lambda a: asked.append(a[3]))
    _, stage = choose_k.choose_k_stage(run, ClusteringConfig(n_clusters="auto", seeds=[0, 1]), UMAP, x, upstream)
    _, same = choose_k.choose_k_stage(run, ClusteringConfig(n_clusters="auto", seeds=[5, 6, 7]), UMAP, x, upstream)
    assert asked == [list(range(choose_k.REPEATS))] and same.fingerprint == stage.fingerprint  # reused, not redone
    _, other = choose_k.choose_k_stage(run, ClusteringConfig(n_clusters="auto", k_seed=10), UMAP, x, upstream)
    assert asked[1] == list(range(10, 10 + choose_k.REPEATS)) and other.fingerprint != stage.fingerprint
    with pytest.raises(ConfigError, match=r"^k_seed=-1"):
        ClusteringConfig(n_clusters="auto", k_seed=-1)
