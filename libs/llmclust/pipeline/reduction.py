"""Reduction stage: embedding vectors -> a few UMAP dimensions, before KMeans.

UMAP lays out the k-nearest-neighbour graph so that each topic's neighbourhood is packed
tightly and apart from the others, which KMeans separates far better than the raw 384-d
vectors: on Banking77 test, all-MiniLM-L6-v2 + KMeans(77) goes from ACC 59.9 to 68.3
(benchmarks/reduction_banking77.py, which also runs BERTopic's UMAP + KMeans).

``fit_sample > 0`` fits on a seeded random sample and maps every other row with
``transform`` in batches of ``transform_batch_rows``, so memory and time stay bounded by the
sample at millions of texts. One reducer is fitted per KMeans seed (reducer seed = KMeans
seed), so the std over seeds includes the reduction's own variance. The vectors may be
:class:`llmclust.store.vectors.StoredVectors`: the sample is gathered and the rest transformed a
part at a time, so the whole matrix is never in memory.

Where: with cuML installed and a GPU in the Ray cluster (``use_gpu: auto``) each seed is
fitted in a Ray task holding one, with cuML's GPU UMAP; the task saves the reducer and hands
back only the reduced rows. A cuML reducer needs cuml wherever it is loaded again (``predict``,
Serve); ``use_gpu: never`` keeps to umap-learn. Without cuML, UMAP is CPU code and runs in this
process, GPU cluster or not (:mod:`llmclust.pipeline.placement`), or, where the cluster has a
free CPU for every seed and one more (``parallel_seeds: auto``), in a one-CPU Ray task per
seed, all at once (each loads the numba code the warm-up left on disk).

UMAP's kNN graph: a fit on every row, up to ``exact_knn_max_rows``, takes it exactly (brute
force, BLAS; once for all seeds) with :class:`ExactSearch` as the index ``transform`` searches;
larger fits, and fits on a sample whose other rows are transformed, take pynndescent's NN-descent.

umap-learn (and numba) are imported only when a reducer is fitted or loaded. The first fit
of a process JIT-compiles numba code: 17 s of one core on the exact path, 43 s with NN-descent
(benchmarks/results/reduce_knn.json), which :mod:`llmclust.pipeline.jit_cache` keeps on disk, so
later jobs on the machine load most of it.
:func:`start_warm_up` pays what is left in a background thread while the representation's
stages run (in Ray actors; with ``embedding.num_actors: 0`` the driver embeds beside it), so the
reduce stage finds it compiled; the stage's manifest records how long it still waited
(``warm_up_wait_s``).

Example::

    from pathlib import Path
    import numpy as np
    from llmclust.pipeline.reduction import Reducer, ReductionConfig, fit_transform

    vectors = np.random.default_rng(0).normal(size=(1000, 32)).astype(np.float32)
    cfg = ReductionConfig(method="umap", fit_sample=500)
    reducer, reduced = fit_transform(vectors, cfg, seed=0)      # (1000, 5) float32
    reducer.save(Path("/tmp/reducer"))
    Reducer.load(Path("/tmp/reducer")).transform(vectors[:10])  # (10, 5), no training data needed
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from llmclust import schema
from llmclust.config import expect, expect_choice
from llmclust.optional import optional_import
from llmclust.pipeline.jit_cache import keep_compiled
from llmclust.pipeline.placement import USE_GPU, cuml_installed, run_placed, wants_gpu
from llmclust.ray_session import fits_now, one_cpu_tasks
from llmclust.store.runs import RunDir, Stage, write_table
from llmclust.store.vectors import StoredVectors, as_array, chunks, take

Vectors = np.ndarray | StoredVectors

log = logging.getLogger(__name__)

# umap-learn warns that a search index which is not pynndescent's cannot transform: ExactSearch can.
# Set here once: catch_warnings around each fit is not thread-safe (the warm-up fits in a thread).
warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\]")

MODEL_FILE = "reducer.joblib"
META_FILE = "reducer.json"


@dataclass
class ReductionConfig:
    method: str = "none"  # none | umap
    n_components: int = 5  # output dimensions
    n_neighbors: int = 15  # kNN graph size: larger keeps more global structure
    min_dist: float = 0.0  # 0 packs neighbours tightly, which is what clustering wants
    metric: str = "cosine"  # distance in the input space
    # layout epochs (a transform runs a third); 0: UMAP's own choice, 500 below 10k rows and 200
    # above, as in BERTopic: on Banking77 test 500 gave ACC 67.79 / NMI 83.25 against 68.25 / 83.24
    # (benchmarks/results/reduction_banking77_n_epochs_0.json, reduction_banking77.json)
    n_epochs: int = 200
    fit_sample: int = 0  # 0: fit on all rows; N: fit on N seeded random rows, transform the rest
    transform_batch_rows: int = 32_768  # rows per transform call (bounds its memory; the speed per row is the same)
    # fits on up to this many rows take their kNN graph exactly (brute force, BLAS) instead of from
    # NN-descent: the same graph for every seed, and no pynndescent compile, ~80 % of a fresh
    # process's numba compile (benchmarks/results/reduce_knn.json); 0: always NN-descent
    exact_knn_max_rows: int = 20_000
    # auto: with cuML installed and a GPU in the cluster, cuML's UMAP in a Ray task on a GPU worker;
    # else umap-learn in this process | never: here, umap-learn | always: a GPU task, or an error
    use_gpu: str = "auto"
    # umap-learn's seeds at once, each in a Ray task of one CPU (a seed's UMAP is one thread):
    # auto where the cluster has a free CPU for every seed and one more | never: one after another here | always
    parallel_seeds: str = "auto"

    def __post_init__(self):
        expect_choice("method", self.method, ["none", "umap"])
        expect(self.n_components >= 1, "n_components", self.n_components, "a positive integer")
        expect(self.n_neighbors >= 2, "n_neighbors", self.n_neighbors, "an integer >= 2")
        expect(0.0 <= self.min_dist <= 1.0, "min_dist", self.min_dist, "a number in [0, 1]")
        expect_choice("metric", self.metric, ["cosine", "euclidean"])
        expect(self.n_epochs >= 0, "n_epochs", self.n_epochs, "0 (UMAP's default) or a positive integer")
        expect(self.fit_sample == 0 or self.fit_sample > self.n_neighbors, "fit_sample", self.fit_sample,
               f"0 (all rows) or more rows than n_neighbors={self.n_neighbors}")
        expect(self.transform_batch_rows > 0, "transform_batch_rows", self.transform_batch_rows, "a positive integer")
        expect(self.exact_knn_max_rows >= 0, "exact_knn_max_rows", self.exact_knn_max_rows,
               "0 (always NN-descent) or a number of rows")
        expect_choice("use_gpu", self.use_gpu, USE_GPU)
        expect_choice("parallel_seeds", self.parallel_seeds, ["auto", "never", "always"])

    @property
    def enabled(self) -> bool:
        return self.method != "none"


class Reducer:
    """A fitted reduction (identity for ``method="none"``); ``transform`` maps new rows."""

    def __init__(self, cfg: ReductionConfig, seed: int, model=None, backend: str = "umap-learn"):
        self.cfg = cfg
        self.seed = seed
        self.model = model  # fitted umap.UMAP (or cuml.manifold.UMAP), or None for method="none"
        self.backend = backend

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """(n, d) -> (n, n_components) float32, in batches of ``transform_batch_rows``."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if self.model is None:
            return vectors
        out = np.empty((len(vectors), self.cfg.n_components), np.float32)
        step = self.cfg.transform_batch_rows
        for start in range(0, len(vectors), step):
            out[start : start + step] = self.model.transform(vectors[start : start + step])
        return out

    def save(self, folder: Path) -> None:
        import joblib

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        # the pickled UMAP holds its fit sample and kNN index: all transform needs
        joblib.dump(self.model, folder / MODEL_FILE)
        meta = {"config": asdict(self.cfg), "seed": self.seed, "backend": self.backend}
        (folder / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> "Reducer":
        import joblib

        folder = Path(folder)
        meta = json.loads((folder / META_FILE).read_text())
        cfg = ReductionConfig(**meta["config"])
        backend = meta.get("backend", "umap-learn")
        if cfg.enabled:  # the clear install hint, before unpickling needs the library
            _import_cuml(f"the reducer in {folder} was fitted with cuML") if backend == "cuml" else _import_umap()
        return cls(cfg, meta["seed"], joblib.load(folder / MODEL_FILE), backend)


def _import_cuml(why: str):
    return optional_import("cuml.manifold", f"{why}: it needs cuml (and a GPU) wherever it is loaded, e.g. "
                                              "pip install cuml-cu12; or refit with reduce.use_gpu=never").UMAP


def _backend(cfg: ReductionConfig) -> str:
    """cuml where it is installed and a GPU is visible (and use_gpu allows), else umap-learn."""
    if cfg.use_gpu == "never" or not cuml_installed():
        return "umap-learn"
    import torch

    return "cuml" if torch.cuda.is_available() else "umap-learn"


def _import_umap():
    umap = optional_import("umap", "reduction.method=umap needs umap-learn: pip install umap-learn")
    keep_compiled(["umap", "pynndescent"])
    return umap


def exact_knn_applies(fit_rows: int, total_rows: int, cfg: ReductionConfig) -> bool:
    """Exact kNN where the fit takes every row (no transform of the rest against it follows)
    and they are few enough for brute force."""
    return cfg.enabled and fit_rows == total_rows <= cfg.exact_knn_max_rows and _backend(cfg) == "umap-learn"


QUERY_BLOCK = 2048  # queries per distance block: at 20,000 rows 164 MB of distances, 328 MB of argpartition's indices


class ExactSearch:
    """Brute-force kNN over the fit rows, in place of pynndescent's index for a UMAP fitted on an
    exact graph: what ``UMAP.transform`` asks of its search index (``query``, ``_angular_trees``)."""

    _angular_trees = False  # decides NN-descent's search slack (epsilon), which brute force has no use for

    def __init__(self, rows: np.ndarray, metric: str):
        self.rows, self.metric = rows, metric

    def query(self, queries: np.ndarray, k: int, epsilon: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """(indices, distances) of each query's ``k`` nearest rows, nearest first."""
        return self._nearest(np.asarray(queries, np.float32), k, themselves=False)

    def _nearest(self, queries: np.ndarray, k: int, themselves: bool) -> tuple[np.ndarray, np.ndarray]:
        """``themselves``: the queries are the rows; each is its own first neighbour at distance 0
        (float32 puts 46 % of self-distances slightly above 0, which UMAP would take for the nearest
        neighbour's distance)."""
        rows, queries = self._prepared(self.rows), self._prepared(queries)
        ids = np.empty((len(queries), k), np.int32)
        dists = np.empty((len(queries), k), np.float32)
        for start in range(0, len(queries), QUERY_BLOCK):
            block = self._distances(queries[start : start + QUERY_BLOCK], rows)
            if themselves:
                block[np.arange(len(block)), start + np.arange(len(block))] = -1.0  # clipped to 0 below
            near = np.argpartition(block, k - 1, axis=1)[:, :k]
            near_d = np.take_along_axis(block, near, axis=1)
            order = np.argsort(near_d, axis=1, kind="stable")
            ids[start : start + len(block)] = np.take_along_axis(near, order, axis=1)
            dists[start : start + len(block)] = np.take_along_axis(near_d, order, axis=1)
        return ids, np.maximum(dists, 0)  # rounding: a distance of about 0 may come out at -1e-7

    def _prepared(self, x: np.ndarray) -> np.ndarray:
        if self.metric == "cosine":
            return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        return x

    def _distances(self, queries: np.ndarray, rows: np.ndarray) -> np.ndarray:
        if self.metric == "cosine":  # both sides unit length
            return 1.0 - queries @ rows.T
        squared = (queries**2).sum(1)[:, None] + (rows**2).sum(1)[None, :] - 2.0 * (queries @ rows.T)
        return np.sqrt(np.maximum(squared, 0))


def exact_knn(rows: np.ndarray, cfg: ReductionConfig) -> tuple[np.ndarray, np.ndarray]:
    """(indices, distances) of each row's ``n_neighbors`` nearest, itself first at 0: the graph
    UMAP's ``precomputed_knn`` takes."""
    _require_rows(len(rows), cfg)
    return ExactSearch(rows, cfg.metric)._nearest(np.asarray(rows, np.float32), cfg.n_neighbors, themselves=True)


def _require_rows(n: int, cfg: ReductionConfig) -> None:
    if n <= cfg.n_neighbors:
        raise ValueError(f"reduction needs more than n_neighbors={cfg.n_neighbors} rows, got {n}")


def _fit_rows(n: int, cfg: ReductionConfig, seed: int) -> np.ndarray:
    """Sorted row numbers the reducer is fitted on: all, or a seeded sample of ``fit_sample``."""
    if cfg.fit_sample == 0 or cfg.fit_sample >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, cfg.fit_sample, replace=False))


def _fit(vectors: Vectors, cfg: ReductionConfig, seed: int, knn=None) -> tuple[Reducer, np.ndarray]:
    """The fitted reducer and the row numbers it was fitted on; ``knn``: the fit rows' exact kNN
    graph (:func:`exact_knn`) when the caller already has it (every seed fits the same rows)."""
    rows = _fit_rows(len(vectors), cfg, seed)
    if not cfg.enabled:
        return Reducer(cfg, seed), rows
    _require_rows(len(rows), cfg)
    common = dict(n_neighbors=cfg.n_neighbors, n_components=cfg.n_components, min_dist=cfg.min_dist,
                  metric=cfg.metric, n_epochs=cfg.n_epochs or None, random_state=seed)
    backend = _backend(cfg)
    everything = len(rows) == len(vectors) and isinstance(vectors, np.ndarray)
    data = np.asarray(vectors, np.float32) if everything else take(vectors, rows)  # no copy when fitting on all
    if backend == "cuml":
        model = _import_cuml("reduce on a GPU")(**common, output_type="numpy")
    else:
        if knn is None and exact_knn_applies(len(rows), len(vectors), cfg):
            knn = exact_knn(data, cfg)
        if knn is not None:  # UMAP writes into the graph it is given (this seed's own copy); transform
            # searches the fit rows themselves (the model pickles them once)
            knn = (knn[0].copy(), knn[1].copy(), ExactSearch(data, cfg.metric))
        model = _import_umap().UMAP(
            **common,
            # a seed makes UMAP single-threaded; n_jobs=1 says so instead of warning about it
            n_jobs=1,
            # NN-descent at every size: below 4096 rows UMAP otherwise computes all pairwise
            # distances through a Python callback (~15 s at 3k rows), and small runs would not
            # exercise the code path that large ones take
            force_approximation_algorithm=True,
            precomputed_knn=knn or (None, None, None),
        )
    model.fit(data)
    return Reducer(cfg, seed, model, backend), rows


_warm_up: threading.Thread | None = None
WARM_UP_ROWS = 300  # enough rows for UMAP to take every code path a real fit takes (NN-descent, layout)


def _compile(cfg: ReductionConfig, rows: int) -> None:
    """A tiny fit down the paths a fit of ``rows`` rows will take: exact kNN or NN-descent, and
    a transform where the fit is on a sample (NN-descent's search)."""
    t0 = time.time()
    fit_rows = min(rows, cfg.fit_sample or rows)
    warm = replace(cfg, n_epochs=10, fit_sample=WARM_UP_ROWS // 2 if fit_rows < rows else 0,
                   exact_knn_max_rows=WARM_UP_ROWS if exact_knn_applies(fit_rows, rows, cfg) else 0)
    x = np.random.default_rng(0).normal(size=(WARM_UP_ROWS, 8)).astype(np.float32)
    fit_transform(x, warm, seed=0)
    log.info("reduce warm-up: umap-learn's numba code compiled in %.1f s", time.time() - t0)


def start_warm_up(cfg: ReductionConfig, rows: int) -> None:
    """Compile umap-learn's numba code for a reduction of ``rows`` rows in a background thread,
    once per process, when this process will fit UMAP itself (umap-learn, not cuML). Start it
    before work that leaves the driver mostly idle (stages in Ray actors); :func:`wait_for_warm_up`
    joins it."""
    global _warm_up
    if _warm_up is not None or not cfg.enabled or _backend(cfg) != "umap-learn":
        return
    _warm_up = threading.Thread(target=_compile, args=(cfg, rows), name="umap-warm-up", daemon=True)
    _warm_up.start()


def wait_for_warm_up() -> float:
    """Seconds spent waiting for a running warm-up to finish (0 when none was started or it is done)."""
    if _warm_up is None or not _warm_up.is_alive():
        return 0.0
    t0 = time.time()
    _warm_up.join()
    return round(time.time() - t0, 2)


def fit_transform(vectors: Vectors, cfg: ReductionConfig, seed: int, knn=None) -> tuple[Reducer, np.ndarray]:
    """Fit, and reduce every row: the fitted rows keep their layout, the rest are transformed,
    ``transform_batch_rows`` at a time (stored vectors are read a part at a time)."""
    reducer, rows = _fit(vectors, cfg, seed, knn)
    if reducer.model is None:
        return reducer, np.asarray(as_array(vectors), np.float32)
    out = np.empty((len(vectors), cfg.n_components), np.float32)
    out[rows] = reducer.model.embedding_
    fitted = np.zeros(len(vectors), bool)
    fitted[rows] = True
    for start, block in chunks(vectors, cfg.transform_batch_rows):
        rest = ~fitted[start : start + len(block)]
        if rest.any():
            out[start + np.flatnonzero(rest)] = reducer.transform(block[rest])
    return reducer, out


def fit_and_save(vectors: Vectors, cfg: ReductionConfig, seed: int, folder: Path, knn=None) -> np.ndarray:
    """Fit, save the reducer in ``folder`` and return every row reduced: where it runs (a GPU
    task) keeps the model, which holds its fit sample; only the small reduced array travels."""
    reducer, reduced = fit_transform(vectors, cfg, seed, knn)
    reducer.save(folder)
    return reduced


def reduce_stage(run: RunDir, cfg: ReductionConfig, vectors: Vectors, upstream: Stage, seeds: list[int],
                 name: str = "reduce") -> tuple[dict[int, np.ndarray], Stage]:
    """One reducer per KMeans seed, fitted on ``vectors``: {seed: reduced vectors} and the stage.

    Each seed's fitted reducer is kept in ``<stage>/seed_<s>/`` so that ``predict`` and the
    Serve endpoint map new texts through the one the published clustering used.
    """
    # where the seeds run does not change what they compute: not part of the stage's identity
    stage = run.stage(name, replace(cfg, parallel_seeds="auto"), list(seeds), upstream.fingerprint)

    timings = {}  # into the manifest: the warm-up wait, each seed's wall and CPU seconds

    def compute() -> dict[int, np.ndarray]:
        timings["warm_up_wait_s"] = wait_for_warm_up()
        rows, knn = vectors, None
        # cuML in GPU tasks (a GPU in the cluster, cuml installed) builds its own graph, one task a seed
        on_gpu = wants_gpu(cfg.use_gpu, f"stage {name}", cuml_installed())
        if not on_gpu and exact_knn_applies(_fit_rows(len(vectors), cfg, 0).size, len(vectors), cfg):
            t0 = time.time()  # every seed fits all rows: one graph for all of them
            rows = np.asarray(as_array(vectors), np.float32)  # at most exact_knn_max_rows
            knn = exact_knn(rows, cfg)
            timings["exact_knn_s"] = round(time.time() - t0, 2)
        where = "a Ray task each" if not on_gpu and seeds_in_parallel(cfg, len(seeds), rows) else ""
        if where:
            import ray

            data, graph = ray.put(rows), ray.put(knn)  # stored once, read by every task
            done = dict(zip(seeds, one_cpu_tasks(_fit_seed, [(data, cfg, s, reducer_dir(stage.path, s), graph)
                                                              for s in seeds])))
        else:
            done = {s: run_placed(_fit_seed, rows, cfg, s, reducer_dir(stage.path, s), knn, use_gpu=cfg.use_gpu,
                                  what=f"stage {name}", gpu_code=cuml_installed()) for s in seeds}
        for seed, (_, timing) in done.items():
            timings.setdefault("seed_timing", {})[seed] = timing
            log.info("reduce seed %d: %s to %d dimensions, %d rows in %.1f s (%.1f s of CPU, load %.1f%s)", seed,
                     cfg.method, cfg.n_components, len(vectors), timing["seconds"], timing["cpu_s"],
                     timing["load_average"], f"; {where}" if where else "")
        return {seed: reduced for seed, (reduced, _) in done.items()}

    def write(stage: Stage, reduced: dict[int, np.ndarray]) -> dict:
        write_table(stage.file("reduced.parquet"), pa.table(
            {schema.SEED_LABELS.format(seed=s): schema.to_fixed_list(v) for s, v in reduced.items()}))
        return {"rows": len(vectors), "dim": cfg.n_components, "seeds": list(seeds), **timings}

    def read(stage: Stage) -> dict[int, np.ndarray]:
        table = pq.read_table(stage.file("reduced.parquet"))
        return {s: schema.from_fixed_list(table.column(schema.SEED_LABELS.format(seed=s))) for s in seeds}

    return stage.run(compute, write, read), stage


def _fit_seed(vectors: Vectors, cfg: ReductionConfig, seed: int, folder: Path, knn) -> tuple[np.ndarray, dict]:
    """:func:`fit_and_save` and its timing, taken where it runs: CPU seconds far below the wall
    clock mean the seed waited (for the cores, or for a compile), not that its code was slow."""
    t0, cpu0 = time.time(), time.process_time()
    reduced = fit_and_save(vectors, cfg, seed, folder, knn)
    return reduced, {"seconds": round(time.time() - t0, 2), "cpu_s": round(time.process_time() - cpu0, 2),
                     "load_average": round(os.getloadavg()[0], 2)}


def seeds_in_parallel(cfg: ReductionConfig, seeds: int, vectors: Vectors) -> bool:
    """Whether the seeds' umap-learn fits go to Ray tasks at once (see ``parallel_seeds``): in-memory
    vectors only (stored ones, beyond the exact graph's size, are read a part at a time, here)."""
    import ray

    if cfg.parallel_seeds == "never" or not cfg.enabled or _backend(cfg) != "umap-learn" or seeds < 2 \
            or not isinstance(vectors, np.ndarray) or not ray.is_initialized():
        return False
    return cfg.parallel_seeds == "always" or fits_now({"CPU": 1}, seeds + 1)


def reducer_dir(stage_path: Path, seed: int) -> Path:
    return Path(stage_path) / f"seed_{seed}"
