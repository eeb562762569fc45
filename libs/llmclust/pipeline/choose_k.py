"""Choosing K without labels (``clustering.n_clusters: auto``): the silhouette band's centre.

On a seeded sample of ``sample`` rows of the space the method clusters in (the first seed's
reduced vectors by default), KMeans is run for every K of a geometric grid from ``k_min`` to
``k_max`` (steps of 8 %, K at most sample / 8 so that a cluster averages 8 sampled rows) and
the silhouette of each clustering is taken on the same sample. One KMeans start per K makes
the curve jump by about 0.02 between neighbours, so it is smoothed over 5 grid points (±16 %
in K). The band is the run of grid points around the smoothed peak that stay within
``TOLERANCE`` (2 %) of it, and K is the band's geometric centre. Every constant is relative (a ratio, a
tolerance, rows per cluster); none names a number of classes. The cost does not grow with n
(a fixed sample; silhouette is quadratic in the sample, never in n).

What it finds (benchmarks/results/choose_k_banking77.json): with UMAP's 15 neighbours and
min_dist 0 an intent's texts gather in clumps of roughly 30-40, and the silhouette peaks
where a cluster is one clump. Banking77 test (40 texts an intent, 77 intents) gets K = 72,
band 59-87; train (130 an intent) gets 228, about 3 clusters an intent. Both beat BERTopic's
default (HDBSCAN) on ACC and NMI; only test is within 10 % of the intents. Clearly separated
classes are found at any density. The band and the curve are recorded so that a user can
see how flat the choice was; the report draws it.

Example::

    estimate = estimate_k(reduced, k_min=2, k_max=300, seed=0)
    estimate.k, estimate.band, estimate.reason
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from llmclust.store.runs import RunDir, Stage

log = logging.getLogger(__name__)

ESTIMATOR = "silhouette band centre"
GRID_RATIO = 1.08  # K grid step
ROWS_PER_CLUSTER = 8  # sampled rows a cluster must average: the grid stops at sample / 8
SMOOTHING = 5  # grid points averaged
TOLERANCE = 0.02  # the band: within 2 % of the smoothed peak


@dataclass
class KEstimate:
    k: int
    band: tuple[int, int]
    reason: str
    curve: dict = field(default_factory=dict)  # k, silhouette, smoothed: one value per grid point
    estimator: str = ESTIMATOR
    sample: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "band": list(self.band)}


def k_grid(k_min: int, k_max: int) -> list[int]:
    """Integers from ``k_min`` to ``k_max``, about ``GRID_RATIO`` apart."""
    grid, k = [], float(k_min)
    while k <= k_max:
        if not grid or round(k) > grid[-1]:
            grid.append(int(round(k)))
        k *= GRID_RATIO
    if grid[-1] != k_max:
        grid.append(k_max)
    return grid


def _smooth(values: np.ndarray) -> np.ndarray:
    if len(values) < SMOOTHING:
        return values.copy()
    pad = SMOOTHING // 2
    return np.convolve(np.pad(values, pad, mode="edge"), np.ones(SMOOTHING) / SMOOTHING, "valid")


def estimate_k(vectors: np.ndarray, k_min: int, k_max: int, seed: int, sample: int = 3000) -> KEstimate:
    """K for ``vectors`` (see the module doc); deterministic for a seed."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    t0 = time.perf_counter()
    x = vectors
    if len(x) > sample:  # sampled before the copy to float64
        x = x[np.sort(np.random.default_rng(seed).choice(len(x), sample, replace=False))]
    x = np.asarray(x, np.float64)
    top = max(k_min, min(k_max, len(x) // ROWS_PER_CLUSTER))
    grid = k_grid(k_min, top)
    silhouette = np.array([silhouette_score(x, KMeans(k, n_init=1, random_state=seed).fit(x).labels_) for k in grid])
    smoothed = _smooth(silhouette)
    peak = int(smoothed.argmax())
    near = smoothed >= smoothed[peak] - TOLERANCE * abs(smoothed[peak])
    lo = hi = peak
    while lo > 0 and near[lo - 1]:
        lo -= 1
    while hi < len(grid) - 1 and near[hi + 1]:
        hi += 1
    k = int(round(np.sqrt(grid[lo] * grid[hi])))
    edge = ""
    if hi == len(grid) - 1 and top < k_max:
        edge = f"; the grid stopped at {top} (sample / {ROWS_PER_CLUSTER}), below k_max={k_max}"
    elif lo == 0 or hi == len(grid) - 1:
        edge = "; the band reaches the end of [k_min, k_max]: widen it"
    reason = (f"the geometric centre of K {grid[lo]}-{grid[hi]}, where the smoothed silhouette of KMeans on "
              f"{len(x)} sampled rows stays within {TOLERANCE:.0%} of its peak {smoothed[peak]:.3f} at K={grid[peak]}{edge}")
    curve = {"k": grid, "silhouette": silhouette.round(4).tolist(), "smoothed": smoothed.round(4).tolist()}
    return KEstimate(k, (grid[lo], grid[hi]), reason, curve, sample=len(x), seconds=round(time.perf_counter() - t0, 2))


def choose_k_stage(run: RunDir, cfg, space: np.ndarray, upstream: Stage) -> tuple[KEstimate, Stage]:
    """:func:`estimate_k` on ``space`` as the checkpointed stage ``choose_k`` (``cfg``: the
    ClusteringConfig); its manifest holds the curve, the band and the reason."""
    k_min, k_max = cfg.k_range(len(space))
    stage = run.stage("choose_k", k_min, k_max, cfg.seeds[0], ESTIMATOR, upstream.fingerprint)

    def compute() -> KEstimate:
        return estimate_k(space, k_min, k_max, cfg.seeds[0])

    def write(stage: Stage, estimate: KEstimate) -> dict:
        facts = estimate.to_dict()
        del facts["seconds"]  # the manifest's own seconds
        return {"rows": len(space), **facts}

    def read(stage: Stage) -> KEstimate:
        m = stage.manifest
        return KEstimate(m["k"], tuple(m["band"]), m["reason"], m["curve"], m["estimator"], m["sample"], m["seconds"])

    estimate = stage.run(compute, write, read)
    log.info("K chosen: %d (band %d-%d; %s, %.1f s)", estimate.k, *estimate.band, estimate.estimator, estimate.seconds)
    return estimate, stage
