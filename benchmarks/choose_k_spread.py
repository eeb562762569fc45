"""How far ``n_clusters: auto`` moves with the estimate's own samples (``clustering.k_seed``; the
clustering seeds do not move it), and what it would take to bring that under 3 %, on Banking77
test (3080 texts) and train (10,003), 77 intents.

    python benchmarks/choose_k_spread.py      # -> benchmarks/results/choose_k_spread.json (about 7 minutes)

Forty repeats per set, seeds 0..39: each is one of ``choose_k``'s repeats (the seed's sample,
reduced with that seed, the silhouette curve of KMeans), so repeats 8j..8j+7 are exactly the
estimate of a job with ``k_seed: 8j`` (``k_by_job``: five such jobs, disjoint samples;
``spread``: max / min - 1 over them). From the same forty curves:

- ``rel_std_by_repeats``: the relative standard deviation of K when a job averages R repeats
  (random R-of-40 draws, R = 5, 8, 10, 20; scaled by sqrt(39 / (40 - R)), since draws from only
  forty curves vary less than fresh ones), and ``repeats_for_3_percent``: the R at which five jobs would land
  within 3 % of each other (their expected range, 2.33 standard deviations, at 3 %), the
  variance taken as falling with 1 / R;
- ``rules``: the same at the estimator's R for the band's centre of mass (the estimator), the band's
  geometric middle and the smoothed peak;
- ``ward``: Ward linkage on the same layouts instead of KMeans (deterministic for a layout, so
  it removes KMeans' own noise), the other candidate for a steadier curve;
- ``k_stderr_by_job``: the standard error each job reports (``k_choice.k_stderr``: its
  repeats' own K), beside ``k_std_between_jobs``, the spread it stands for;
- ``flat_top``: the K range over which the mean of the forty curves stays within 1 % of its peak;
- ``seconds``: a repeat's reduction, KMeans curve and Ward curve.
"""

from __future__ import annotations

import time

from common import RESULTS, TEST_CSV, TRAIN_CSV, write_result

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from llmclust.pipeline.choose_k import (REPEATS, band_indices, draw_samples, estimation_reduce,  # noqa: E402
                                        k_from_curve, sample_plan, silhouette_curve, silhouettes, standard_error)
from llmclust.pipeline.clustering import ClusteringConfig  # noqa: E402
from llmclust.pipeline.embedding import EmbeddingConfig, make_embedder  # noqa: E402
from llmclust.pipeline.reduction import ReductionConfig, fit_transform  # noqa: E402

JOBS = 5
DRAWS = 400  # random R-of-40 draws per R
RANGE_OF_FIVE = 2.326  # expected max - min of five normal draws, in standard deviations


def ward_curve(x: np.ndarray, grid: list[int]) -> np.ndarray:
    """Silhouette of Ward linkage cut at each K of ``grid`` (one tree for the whole grid)."""
    from scipy.cluster.hierarchy import fcluster, linkage

    tree = linkage(x, "ward")
    return silhouettes(x, grid, lambda k: fcluster(tree, k, "maxclust"))


def rule(grid: list[int], curve: np.ndarray, name: str) -> float:
    k, _, (lo, peak, hi) = k_from_curve(grid, curve)
    return {"centre_of_mass": k, "band_middle": float(np.sqrt(grid[lo] * grid[hi])), "peak": grid[peak]}[name]


def rel_std(grid: list[int], curves: np.ndarray, repeats: int, name: str = "centre_of_mass") -> float:
    rng = np.random.default_rng(0)
    n = len(curves)
    ks = np.array([rule(grid, curves[rng.choice(n, repeats, replace=False)].mean(axis=0), name) for _ in range(DRAWS)])
    return round(float(ks.std() / ks.mean() * np.sqrt((n - 1) / (n - repeats))), 4)


def flat_top(grid: list[int], mean: np.ndarray) -> dict:
    """The K range around the peak of ``mean`` (unsmoothed) that stays within 1 % of it."""
    lo, peak, hi = band_indices(mean, tolerance=0.01)
    return {"peak_k": grid[peak], "peak": round(float(mean[peak]), 4), "from_k": grid[lo], "to_k": grid[hi]}


def jobs(grid: list[int], curves: np.ndarray) -> list[int]:
    return [k_from_curve(grid, curves[j * REPEATS:(j + 1) * REPEATS].mean(axis=0))[0] for j in range(JOBS)]


def spread(ks: list[int]) -> float:
    return round(max(ks) / min(ks) - 1, 3)


def one_set(name: str, vectors: np.ndarray) -> dict:
    size, grid = sample_plan(len(vectors), *ClusteringConfig(n_clusters="auto").k_range(len(vectors)))
    reduce = estimation_reduce(ReductionConfig(method="umap", parallel_seeds="never"))
    seeds = list(range(JOBS * REPEATS))
    kmeans, ward, seconds = [], [], []
    for seed, rows in zip(seeds, draw_samples(vectors, size, seeds)):
        t0 = time.perf_counter()
        layout = fit_transform(rows, reduce, seed)[1]
        t1 = time.perf_counter()
        kmeans.append(silhouette_curve(layout, grid, seed))
        t2 = time.perf_counter()
        ward.append(ward_curve(np.asarray(layout, np.float64), grid))
        seconds.append((t1 - t0, t2 - t1, time.perf_counter() - t2))
        print(f"{name}: repeat {seed + 1}/{len(seeds)}", flush=True)
    kmeans, ward = np.array(kmeans), np.array(ward)
    by_r = {r: rel_std(grid, kmeans, r) for r in sorted({5, REPEATS, 10, 20})}  # 40 of 40 would always draw the same
    target = 0.03 / RANGE_OF_FIVE
    k_by_job, ward_by_job = jobs(grid, kmeans), jobs(grid, ward)
    single = [k_from_curve(grid, c)[0] for c in kmeans]
    stderr = [standard_error(single[j * REPEATS:(j + 1) * REPEATS]) for j in range(JOBS)]
    out = {"n": len(vectors), "k_by_job": k_by_job, "spread": spread(k_by_job),
           "rel_std_by_repeats": by_r, "repeats_for_3_percent": int(np.ceil(REPEATS * (by_r[REPEATS] / target) ** 2)),
           "single_repeat_k": single, "k_stderr_by_job": stderr, "k_stderr_mean": round(float(np.mean(stderr)), 2),
           "k_std_between_jobs": round(float(np.std(k_by_job, ddof=1)), 2),
           "flat_top": flat_top(grid, kmeans.mean(axis=0)),
           "rules": {"centre_of_mass": by_r[REPEATS],  # the estimator's own rule: by_r's draws at its R
                     **{r: rel_std(grid, kmeans, REPEATS, r) for r in ("band_middle", "peak")}},
           "ward": {"k_by_job": ward_by_job, "spread": spread(ward_by_job),
                    "rel_std": rel_std(grid, ward, REPEATS)},
           "seconds": dict(zip(("reduce", "kmeans_curve", "ward_curve"), np.round(np.mean(seconds, axis=0), 2).tolist()))}
    print(name, out, flush=True)
    return out


def main() -> None:
    embedder = make_embedder(EmbeddingConfig(device="cpu"))
    result = {"what": f"choose_k's repeats (seeds 0..39): {JOBS} jobs of {REPEATS} (k_seed 0, {REPEATS}, ...), "
                      "and what more repeats, other band rules or Ward linkage would change", "repeats_per_job": REPEATS}
    for name, path in (("test", TEST_CSV), ("train", TRAIN_CSV)):
        result[name] = one_set(name, embedder.encode(pd.read_csv(path)["text"].tolist()))
    write_result(RESULTS / "choose_k_spread.json", result)


if __name__ == "__main__":
    main()
