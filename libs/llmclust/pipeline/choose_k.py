"""Choosing K without labels (``clustering.n_clusters: auto``): the silhouette band's centre of
mass, over several re-reduced samples.

Each of ``REPEATS`` repeats draws its own seeded sample of ``SAMPLE`` rows, reduces it as the
job reduces (UMAP, fitted on the sample alone), and runs KMeans for every K of a geometric grid
from ``k_min`` to ``k_max`` (8 % apart; K at most sample / 8, so that a cluster averages 8
sampled rows), scoring each clustering by its silhouette on the sample. The repeats' curves are
averaged, smoothed over 5 grid points (±16 % in K), and the band is the run of grid points
around the peak that stay within ``TOLERANCE`` (5 %) of it; K is the band's centre of mass in
log K, each point weighted by its height above the band's floor.

Why a fixed-size sample, reduced afresh: UMAP's neighbourhood is a fixed number of rows (15), so
the clumps it draws are a fixed number of rows too, and on the whole corpus the silhouette peak
follows the corpus size rather than its classes: Banking77 test (3,080 texts, 77 intents) gave
72, train (10,003 texts, the same 77 intents) 228. Reduced at one sample size, both read the
same structure (benchmarks/results/choose_k_banking77.json). Why eight repeats: one repeat's K
moves by a quarter or more with its sample and layout (train: 60 to 111 over forty); the mean of
eight moves by 2.2 % (test) and 6.5 % (train), as relative standard deviations over random sets of
eight of forty samples, and five estimates from disjoint samples span 6.6 % and 9.0 %. Under 3 %
between five would take about 25 repeats an estimate on test and 200 on train: the top of the
curve is flat (within 1 % of its peak from K = 59 to 87 on test, 55 to 101 on train), so its
noise decides where the band sits. Ward linkage in place of KMeans (no KMeans noise) and the
band's geometric middle in place of its centre of mass each narrow it on one set and widen it on
the other; fewer UMAP epochs make a repeat cheaper but lower K (100 epochs: 73
on both sets, 50: 68; exploratory runs, not a benchmark here). The samples are seeded by
``clustering.k_seed``, not by the clustering seeds: those vary the partition at one K (a job's
metrics are mean ± std over them), and K moving with them would mix the estimate's noise into
that spread; so K is the same whatever the seeds, the same ``k_seed`` on the same vectors gives the
same K run after run (vectors differing in their last bits move it as another ``k_seed`` would:
UMAP carries the difference into its layout), and ``k_stderr`` says how far that is
(benchmarks/results/choose_k_spread.json). Why reduced even when the job clusters unreduced
vectors: the silhouette of raw sentence embeddings keeps rising with K (test: 211, train: 288, in
exploratory runs that are not a benchmark here). No constant names a number of classes, and
corpora of other shapes cut from Banking77 train (12 to 77 intents, 20 to 130 texts each) land
within -13 % to +28 % of their intents. Many small classes beside large ones are not found: 77
intents of 8 to 130 texts gave 18. The sample size is not neutral either: train's K is 75, 79
and 127 at 2,400, 3,000 and 6,000 sampled rows (32 to 47 a cluster), so where classes overlap
as Banking77's intents do, K reads UMAP's clump scale as well as the classes, and a corpus of
far more than 75 such classes is likely to come out low (its band says how far it may be).

The cost does not grow with the corpus: eight reductions of 3,000 rows and eight curves (more
rows only where k_max is above 375: 8 a cluster, at most 12,000), the repeats in parallel Ray
tasks where the cluster has the CPUs (as ``reduce.parallel_seeds``). On Banking77 test a
repeat takes 1.7 s of UMAP and 1.3 s of KMeans and silhouettes, which :func:`mean_silhouette`
made one pass over the distances each (2.9 s with sklearn's), so eight repeats cost about a
tenth more than five did (100k texts: 26.6 against 24.1 s).

Example::

    estimate = estimate_k(vectors, k_min=2, k_max=300, seeds=estimation_seeds(0), reduce=ReductionConfig("umap"))
    estimate.k, estimate.band, estimate.reason, estimate.k_by_sample, estimate.k_stderr
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Callable

import numpy as np

from llmclust.pipeline.reduction import ReductionConfig, Vectors, fit_transform, seeds_in_parallel
from llmclust.ray_session import one_cpu_tasks
from llmclust.store.runs import RunDir, Stage
from llmclust.store.vectors import take

log = logging.getLogger(__name__)

ESTIMATOR = "silhouette band's centre of mass over re-reduced samples"
SAMPLE = 3000  # rows a repeat reduces and scores (more where k_max asks for 8 a cluster)
MAX_SAMPLE = 12_000  # its pairwise distances: 576 MB (float32); K is then at most 1,500
REPEATS = 8  # samples, each with its own layout: their curves are averaged
GRID_RATIO = 1.08  # K grid step
ROWS_PER_CLUSTER = 8  # sampled rows a cluster must average: the grid stops at sample / 8
SMOOTHING = 5  # grid points averaged
TOLERANCE = 0.05  # the band: within 5 % of the smoothed peak


@dataclass
class KEstimate:
    k: int
    band: tuple[int, int]
    reason: str
    # k, silhouette (the repeats' mean), smoothed: one value per grid point; by_sample: each repeat's curve
    curve: dict = field(default_factory=dict)
    k_by_sample: list[int] = field(default_factory=list)  # each repeat's own band centre: the spread a single one has
    estimator: str = ESTIMATOR
    sample: int = 0
    seconds: float = 0.0

    @property
    def k_stderr(self) -> float:
        """K's standard error over the repeats: on average, how far another ``k_seed`` lands."""
        return standard_error(self.k_by_sample)

    def to_dict(self) -> dict:
        return {**asdict(self), "band": list(self.band), "k_stderr": self.k_stderr}


def standard_error(ks: list[int]) -> float:
    """The standard error of the mean of ``ks`` (the repeats' own K; 0 for fewer than two): it stands
    in for the spread of K between ``k_seed`` values. Over five estimates from disjoint samples it
    averaged 1.9 on Banking77 test and 5.1 on train, where their K moved by 1.9 and 2.7 (standard
    deviations; one estimate's own figure: test 0.8 to 3.2, train 4.3 to 6.1;
    benchmarks/results/choose_k_spread.json)."""
    return round(float(np.std(ks, ddof=1) / np.sqrt(len(ks))), 1) if len(ks) > 1 else 0.0


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
    pad = SMOOTHING // 2  # edges repeated: a grid of any length keeps its length
    return np.convolve(np.pad(values, pad, mode="edge"), np.ones(SMOOTHING) / SMOOTHING, "valid")


def band_indices(smoothed: np.ndarray, tolerance: float = TOLERANCE) -> tuple[int, int, int]:
    """Grid indices (low, peak, high) of the run around the peak within ``tolerance`` of it."""
    peak = int(smoothed.argmax())
    near = smoothed >= smoothed[peak] - tolerance * abs(smoothed[peak])
    lo = hi = peak
    while lo > 0 and near[lo - 1]:
        lo -= 1
    while hi < len(smoothed) - 1 and near[hi + 1]:
        hi += 1
    return lo, peak, hi


def _centre(grid: list[int], smoothed: np.ndarray, lo: int, peak: int, hi: int) -> int:
    """K: the centre of mass in log K of the band (:func:`band_indices`'s indices), each grid point
    weighted by its height above the band's floor (its edges, where noise decides, weigh least)."""
    weight = smoothed[lo : hi + 1] - (smoothed[peak] - TOLERANCE * abs(smoothed[peak]))
    if weight.sum() <= 0:  # a flat band
        weight = np.ones_like(weight)
    return int(round(float(np.exp(np.average(np.log(grid[lo : hi + 1]), weights=weight)))))


def k_from_curve(grid: list[int], curve: np.ndarray) -> tuple[int, np.ndarray, tuple[int, int, int]]:
    """K from one curve (a repeat's, or their mean), the smoothed curve and the band's indices."""
    smoothed = _smooth(curve)
    band = band_indices(smoothed)
    return _centre(grid, smoothed, *band), smoothed, band


def mean_silhouette(distances: np.ndarray, labels: np.ndarray) -> float:
    """sklearn's ``silhouette_score(distances, labels, metric="precomputed")`` (a point alone in its
    cluster scores 0), in one pass over the distances: every row's summed distance to each cluster
    is one sparse one-hot product, where sklearn walks the matrix in chunks per cluster (4-7x
    slower at 3,000 rows; a repeat's curve spent 2.2 of its 2.9 s there). The sums stay float32:
    on the forty 3,000-row curves of each Banking77 set they matched sklearn's to 1.1e-7 (an
    exploratory comparison; the tests hold it to 1e-6)."""
    from scipy import sparse

    labels = np.unique(labels, return_inverse=True)[1].ravel()  # codes 0..k-1, whatever the labeller's
    n, k = len(labels), int(labels.max()) + 1
    if k < 2:
        raise ValueError(f"a silhouette needs at least 2 clusters; got {k}")
    members = sparse.csr_matrix((np.ones(n, distances.dtype), (labels, np.arange(n))), shape=(k, n))
    sums = np.asarray(members @ distances).T  # (n, k); the matrix is symmetric
    size = np.bincount(labels, minlength=k).astype(np.float64)
    own = size[labels]
    rows = np.arange(n)
    within = sums[rows, labels] / np.maximum(own - 1, 1)
    means = sums / size
    means[rows, labels] = np.inf
    nearest = means.min(axis=1)
    scale = np.maximum(within, nearest)
    score = np.divide(nearest - within, scale, out=np.zeros(n), where=(own > 1) & (scale > 0))
    return float(score.mean())


def silhouettes(x: np.ndarray, grid: list[int], labels_at: Callable[[int], np.ndarray]) -> np.ndarray:
    """The silhouette of ``labels_at(k)`` on ``x`` for each K of ``grid``; the distances are computed
    once for the whole grid."""
    from sklearn.metrics import pairwise_distances

    distances = pairwise_distances(x).astype(np.float32)  # half the memory; silhouettes agree to 1e-6
    return np.array([mean_silhouette(distances, labels_at(k)) for k in grid])


def silhouette_curve(x: np.ndarray, grid: list[int], seed: int) -> np.ndarray:
    """:func:`silhouettes` of KMeans (one start, ``seed``) on ``x``."""
    from sklearn.cluster import KMeans

    x = np.asarray(x, np.float64)
    return silhouettes(x, grid, lambda k: KMeans(k, n_init=1, random_state=seed).fit(x).labels_)


def repeat_curve(rows: np.ndarray, reduce: ReductionConfig, grid: list[int], seed: int) -> np.ndarray:
    """One repeat: ``rows`` (a sample) reduced with ``seed``, then :func:`silhouette_curve`."""
    return silhouette_curve(fit_transform(rows, reduce, seed)[1], grid, seed)


def draw_samples(vectors: Vectors, size: int, seeds: list[int]) -> list[np.ndarray]:
    """Each seed's sample of ``size`` rows (all rows when there are fewer), read in one pass."""
    n = len(vectors)
    picks = [np.arange(n) if n <= size else np.sort(np.random.default_rng(s).choice(n, size, replace=False))
             for s in seeds]
    union = np.unique(np.concatenate(picks))
    block = np.asarray(take(vectors, union), np.float32)
    return [block[np.searchsorted(union, p)] for p in picks]


def _curves(samples: list[np.ndarray], reduce: ReductionConfig, grid: list[int], seeds: list[int]) -> np.ndarray:
    """Every repeat's curve: one-CPU Ray tasks at once where the cluster has a CPU for each and one
    more (or ``parallel_seeds: always``), else one after another here."""
    calls = [(x, reduce, grid, s) for x, s in zip(samples, seeds)]
    if seeds_in_parallel(reduce, len(seeds), samples[0]):
        return np.array(one_cpu_tasks(repeat_curve, calls))
    return np.array([repeat_curve(*call) for call in calls])


def estimation_reduce(reduce: ReductionConfig) -> ReductionConfig:
    """How the samples are reduced: as the job reduces (UMAP when it does not), fitted on the
    whole sample, with umap-learn here or in CPU tasks (a 3,000-row fit needs no GPU), and with
    ReductionConfig's default epochs where the job leaves them to UMAP, whose own choice at
    this size (500) made the estimate 1.5x as long for K = 76 instead of 74 (100k texts, five
    samples, ``benchmarks/scale_job.py --auto-k`` run before this default)."""
    return replace(reduce, method="umap", fit_sample=0, use_gpu="never", n_epochs=reduce.n_epochs or ReductionConfig.n_epochs)


def sample_plan(rows: int, k_min: int, k_max: int, sample: int = SAMPLE) -> tuple[int, list[int]]:
    """The rows a repeat samples from ``rows`` and the K grid its curve covers (up to sample / 8)."""
    size = min(rows, max(sample, min(MAX_SAMPLE, ROWS_PER_CLUSTER * k_max)))
    return size, k_grid(k_min, max(k_min, min(k_max, size // ROWS_PER_CLUSTER)))


def estimate_k(vectors: Vectors, k_min: int, k_max: int, seeds: list[int], reduce: ReductionConfig,
               sample: int = SAMPLE) -> KEstimate:
    """K for ``vectors`` (see the module doc); the same K for the same seeds, run after run."""
    t0 = time.perf_counter()
    size, grid = sample_plan(len(vectors), k_min, k_max, sample)
    top = grid[-1]
    curves = _curves(draw_samples(vectors, size, seeds), estimation_reduce(reduce), grid, seeds)
    mean = curves.mean(axis=0)
    k, smoothed, (lo, peak, hi) = k_from_curve(grid, mean)
    k_by_sample = [k_from_curve(grid, c)[0] for c in curves]
    edge = ""
    if hi == len(grid) - 1 and top < k_max:
        edge = f"; the grid stopped at {top} (sample / {ROWS_PER_CLUSTER}), below k_max={k_max}"
    elif lo == 0 or hi == len(grid) - 1:
        edge = "; the band reaches the end of [k_min, k_max]: widen it"
    reason = (f"the centre of mass (in log K) of K {grid[lo]}-{grid[hi]}, where the smoothed silhouette of KMeans, "
              f"averaged over {len(seeds)} reduced samples of {size} rows, stays within {TOLERANCE:.0%} of its "
              f"peak {smoothed[peak]:.3f} at K={grid[peak]}{edge}")
    curve = {"k": grid, "silhouette": mean.round(4).tolist(), "smoothed": smoothed.round(4).tolist(),
             "by_sample": curves.round(4).tolist()}
    return KEstimate(k, (grid[lo], grid[hi]), reason, curve, k_by_sample, sample=size,
                     seconds=round(time.perf_counter() - t0, 2))


def estimation_seeds(k_seed: int) -> list[int]:
    """The repeats' seeds: ``REPEATS`` from ``clustering.k_seed``. Not from the clustering seeds: those
    vary the partition at one K (metrics are mean ± std over them), and K moving with them would
    confound the two; how far K moves with its own samples is ``k_stderr``."""
    return [k_seed + r for r in range(REPEATS)]


def choose_k_stage(run: RunDir, cfg, reduce: ReductionConfig, vectors: Vectors, upstream: Stage) -> tuple[KEstimate, Stage]:
    """:func:`estimate_k` on ``vectors`` as the checkpointed stage ``choose_k`` (``cfg``: the
    ClusteringConfig); its manifest holds the curves, the band and the reason."""
    k_min, k_max = cfg.k_range(len(vectors))
    seeds = estimation_seeds(cfg.k_seed)
    # where the repeats run changes nothing, nor does the transform batch (every sampled row is fitted)
    how = replace(estimation_reduce(reduce), parallel_seeds="auto", transform_batch_rows=ReductionConfig.transform_batch_rows)
    constants = (ESTIMATOR, SAMPLE, MAX_SAMPLE, GRID_RATIO, ROWS_PER_CLUSTER, SMOOTHING, TOLERANCE)
    stage = run.stage("choose_k", k_min, k_max, seeds, constants, how, upstream.fingerprint)

    def compute() -> KEstimate:
        return estimate_k(vectors, k_min, k_max, seeds, reduce)

    def write(stage: Stage, estimate: KEstimate) -> dict:
        facts = estimate.to_dict()
        del facts["seconds"]  # the manifest's own seconds
        return {"rows": len(vectors), **facts}

    def read(stage: Stage) -> KEstimate:
        m = stage.manifest
        return KEstimate(m["k"], tuple(m["band"]), m["reason"], m["curve"], m["k_by_sample"], m["estimator"],
                         m["sample"], m["seconds"])

    estimate = stage.run(compute, write, read)
    log.info("K chosen: %d ± %.1f over samples (k_seed %d; band %d-%d; %s, %.1f s)", estimate.k, estimate.k_stderr,
             cfg.k_seed, *estimate.band, estimate.estimator, estimate.seconds)
    return estimate, stage
