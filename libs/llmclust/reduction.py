"""Reduction stage: embedding vectors -> a few UMAP dimensions, before KMeans.

UMAP lays out the k-nearest-neighbour graph so that each topic's neighbourhood is packed
tightly and apart from the others, which KMeans separates far better than the raw 384-d
vectors: on Banking77 test, all-MiniLM-L6-v2 + KMeans(77) goes from ACC 59.9 to 68.3
(benchmarks/reduction_banking77.py, which also runs BERTopic's UMAP + KMeans).

``fit_sample > 0`` fits on a seeded random sample and maps every other row with
``transform`` in batches of ``transform_batch_rows``, so memory and time stay bounded by the
sample at millions of texts. One reducer is fitted per KMeans seed (reducer seed = KMeans
seed), so the std over seeds includes the reduction's own variance.

umap-learn (and numba) are imported only when a reducer is fitted or loaded. The first fit
and the first ``transform`` of a process JIT-compile numba code: ~30 s of CPU, once.

Example::

    from pathlib import Path
    import numpy as np
    from llmclust.reduction import Reducer, ReductionConfig, fit_transform

    vectors = np.random.default_rng(0).normal(size=(1000, 32)).astype(np.float32)
    cfg = ReductionConfig(method="umap", fit_sample=500)
    reducer, reduced = fit_transform(vectors, cfg, seed=0)      # (1000, 5) float32
    reducer.save(Path("/tmp/reducer"))
    Reducer.load(Path("/tmp/reducer")).transform(vectors[:10])  # (10, 5), no training data needed
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from llmclust import schema
from llmclust.config import expect, expect_choice
from llmclust.runs import RunDir, Stage, write_table

MODEL_FILE = "reducer.joblib"
META_FILE = "reducer.json"


@dataclass
class ReductionConfig:
    method: str = "none"  # none | umap
    n_components: int = 5  # output dimensions
    n_neighbors: int = 15  # kNN graph size: larger keeps more global structure
    min_dist: float = 0.0  # 0 packs neighbours tightly, which is what clustering wants
    metric: str = "cosine"  # distance in the input space
    n_epochs: int = 200  # layout epochs (transform runs a third); UMAP's own default is 500 below 10k rows
    fit_sample: int = 0  # 0: fit on all rows; N: fit on N seeded random rows, transform the rest
    transform_batch_rows: int = 100_000  # rows per transform call (bounds its kNN-query memory)

    def __post_init__(self):
        expect_choice("method", self.method, ["none", "umap"])
        expect(self.n_components >= 1, "n_components", self.n_components, "a positive integer")
        expect(self.n_neighbors >= 2, "n_neighbors", self.n_neighbors, "an integer >= 2")
        expect(0.0 <= self.min_dist <= 1.0, "min_dist", self.min_dist, "a number in [0, 1]")
        expect_choice("metric", self.metric, ["cosine", "euclidean"])
        expect(self.n_epochs >= 1, "n_epochs", self.n_epochs, "a positive integer")
        expect(self.fit_sample == 0 or self.fit_sample > self.n_neighbors, "fit_sample", self.fit_sample,
               f"0 (all rows) or more rows than n_neighbors={self.n_neighbors}")
        expect(self.transform_batch_rows > 0, "transform_batch_rows", self.transform_batch_rows, "a positive integer")

    @property
    def enabled(self) -> bool:
        return self.method != "none"


class Reducer:
    """A fitted reduction (identity for ``method="none"``); ``transform`` maps new rows."""

    def __init__(self, cfg: ReductionConfig, seed: int, model=None):
        self.cfg = cfg
        self.seed = seed
        self.model = model  # fitted umap.UMAP, or None for method="none"

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
        (folder / META_FILE).write_text(json.dumps({"config": asdict(self.cfg), "seed": self.seed}, indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> "Reducer":
        import joblib

        folder = Path(folder)
        meta = json.loads((folder / META_FILE).read_text())
        cfg = ReductionConfig(**meta["config"])
        if cfg.enabled:
            _import_umap()  # the clear install hint, before unpickling needs umap
        return cls(cfg, meta["seed"], joblib.load(folder / MODEL_FILE))


def _import_umap():
    try:
        import umap
    except ImportError as e:
        raise ImportError("reduction.method=umap needs umap-learn: pip install umap-learn") from e
    return umap


def _fit_rows(n: int, cfg: ReductionConfig, seed: int) -> np.ndarray:
    """Sorted row numbers the reducer is fitted on: all, or a seeded sample of ``fit_sample``."""
    if cfg.fit_sample == 0 or cfg.fit_sample >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, cfg.fit_sample, replace=False))


def _fit(vectors: np.ndarray, cfg: ReductionConfig, seed: int) -> tuple[Reducer, np.ndarray]:
    """The fitted reducer and the row numbers it was fitted on."""
    vectors = np.asarray(vectors, dtype=np.float32)
    rows = _fit_rows(len(vectors), cfg, seed)
    if not cfg.enabled:
        return Reducer(cfg, seed), rows
    if len(rows) <= cfg.n_neighbors:
        raise ValueError(f"reduction needs more than n_neighbors={cfg.n_neighbors} rows, got {len(rows)}")
    umap = _import_umap()
    model = umap.UMAP(
        n_neighbors=cfg.n_neighbors, n_components=cfg.n_components, min_dist=cfg.min_dist, metric=cfg.metric,
        n_epochs=cfg.n_epochs,
        # a seed makes UMAP single-threaded; n_jobs=1 says so instead of warning about it
        random_state=seed, n_jobs=1,
        # NN-descent at every size: below 4096 rows UMAP otherwise computes all pairwise
        # distances through a Python callback (~15 s at 3k rows), and small runs would not
        # exercise the code path that large ones take
        force_approximation_algorithm=True,
    )
    model.fit(vectors if len(rows) == len(vectors) else vectors[rows])  # no copy when fitting on all
    return Reducer(cfg, seed, model), rows


def fit_reducer(vectors: np.ndarray, cfg: ReductionConfig, seed: int) -> Reducer:
    """Fit on ``vectors`` (or on a seeded sample of ``cfg.fit_sample`` of them)."""
    return _fit(vectors, cfg, seed)[0]


def fit_transform(vectors: np.ndarray, cfg: ReductionConfig, seed: int) -> tuple[Reducer, np.ndarray]:
    """Fit, and reduce every row: the fitted rows keep their layout, the rest are transformed."""
    vectors = np.asarray(vectors, dtype=np.float32)
    reducer, rows = _fit(vectors, cfg, seed)
    if reducer.model is None:
        return reducer, vectors
    out = np.empty((len(vectors), cfg.n_components), np.float32)
    out[rows] = reducer.model.embedding_
    # index the rest batch by batch: one fancy-indexed copy of all of it would double memory
    rest = np.setdiff1d(np.arange(len(vectors)), rows)
    for start in range(0, len(rest), cfg.transform_batch_rows):
        batch = rest[start : start + cfg.transform_batch_rows]
        out[batch] = reducer.transform(vectors[batch])
    return reducer, out


def reduce_stage(run: RunDir, cfg: ReductionConfig, vectors: np.ndarray, upstream: Stage, seeds: list[int],
                 name: str = "reduce") -> tuple[dict[int, np.ndarray], Stage]:
    """One reducer per KMeans seed, fitted on ``vectors``: {seed: reduced vectors} and the stage.

    Each seed's fitted reducer is kept in ``<stage>/seed_<s>/`` so that ``predict`` and the
    Serve endpoint map new texts through the one the published clustering used.
    """
    stage = run.stage(name, cfg, list(seeds), upstream.fingerprint)

    def compute() -> dict[int, tuple[Reducer, np.ndarray]]:
        return {seed: fit_transform(vectors, cfg, seed) for seed in seeds}

    def write(stage: Stage, fitted: dict) -> dict:
        for seed, (reducer, _) in fitted.items():
            reducer.save(reducer_dir(stage.path, seed))
        write_table(stage.file("reduced.parquet"), pa.table(
            {schema.SEED_LABELS.format(seed=s): schema.to_fixed_list(v) for s, (_, v) in fitted.items()}))
        return {"rows": len(vectors), "dim": cfg.n_components, "seeds": list(seeds)}

    def read(stage: Stage) -> dict:
        table = pq.read_table(stage.file("reduced.parquet"))
        return {s: (None, schema.from_fixed_list(table.column(schema.SEED_LABELS.format(seed=s)))) for s in seeds}

    fitted = stage.run(compute, write, read)
    return {seed: reduced for seed, (_, reduced) in fitted.items()}, stage


def reducer_dir(stage_path: Path, seed: int) -> Path:
    return Path(stage_path) / f"seed_{seed}"
