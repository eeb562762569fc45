"""Top-k cosine neighbours with faiss: exact for small corpora, IVF beyond ``ivf_min_rows``.

Exact search is quadratic (1M x 384 takes seconds on a GPU, 4M minutes; a 50k self-search is
already 2 TFLOP, minutes on 2 CPU cores), so large corpora use an inverted-file index trained on a sample:
``nlist = 4 sqrt(n)`` cells, ``nprobe`` of them visited per query. On clustered 384-d
vectors nprobe = 32 finds 99 % of the exact top 10 at 50k rows and more at 1M
(benchmarks/results/scale.json, ``ivf_recall_at_10``); a query then costs about
12 sqrt(n) vector products, so the whole search grows as n^1.5, not n^2. ``auto`` picks IVF
when queries x rows reach ``ivf_min_rows``^2 (a self-search of 50k rows, or 1M queries
against 2.5k rows). Queries run in batches to bound memory. A GPU index is used when faiss
was built with GPU support and a device is visible.

Example::

    idx, sims = knn(vectors, NeighboursConfig(k=10))   # (n, 10) rows and cosine scores, self excluded
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from llmclust import schema
from llmclust.config import expect, expect_choice
from llmclust.models import import_faiss
from llmclust.placement import USE_GPU, run_placed
from llmclust.runs import RunDir, Stage, write_table

log = logging.getLogger(__name__)


@dataclass
class NeighboursConfig:
    k: int = 10  # neighbours per text, itself excluded
    index: str = "auto"  # auto | flat (exact) | ivf (approximate)
    ivf_min_rows: int = 50_000  # auto switches to IVF at this many rows (self-search; see the module doc)
    nlist: int = 0  # IVF cells; 0: 4 * sqrt(n)
    nprobe: int = 32  # IVF cells visited per query
    query_batch: int = 16_384  # queries per search call
    use_gpu: str = "auto"  # auto: on a GPU worker when the Ray cluster has one | never | always

    def __post_init__(self):
        expect(self.k > 0, "k", self.k, "a positive integer")
        expect_choice("index", self.index, ["auto", "flat", "ivf"])
        expect(self.ivf_min_rows > 0, "ivf_min_rows", self.ivf_min_rows, "a positive integer")
        expect(self.nlist >= 0, "nlist", self.nlist, "0 (automatic) or a positive integer")
        expect(self.nprobe > 0, "nprobe", self.nprobe, "a positive integer")
        expect(self.query_batch > 0, "query_batch", self.query_batch, "a positive integer")
        expect_choice("use_gpu", self.use_gpu, USE_GPU)


def _gpu_count(faiss) -> int:
    return faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0


def index_kind(cfg: NeighboursConfig, rows: int, queries: int | None = None) -> str:
    """flat or ivf: ``auto`` goes approximate once exact search would cost a 50k self-search."""
    if cfg.index != "auto":
        return cfg.index
    return "ivf" if rows * (rows if queries is None else queries) >= cfg.ivf_min_rows ** 2 else "flat"


def build_index(vectors: np.ndarray, cfg: NeighboursConfig, queries: int | None = None):
    """An inner-product index over normalised ``vectors`` (so scores are cosines), for
    ``queries`` queries (None: each row searches the others)."""
    faiss = import_faiss()

    n, d = vectors.shape
    kind = index_kind(cfg, n, queries)
    gpus = _gpu_count(faiss)
    if cfg.use_gpu == "always" and not gpus:
        raise RuntimeError("neighbours.use_gpu=always but faiss sees no GPU; install faiss-gpu or set use_gpu=auto")
    on_gpu = bool(gpus) and cfg.use_gpu != "never"
    nlist = cfg.nlist or max(1, int(4 * math.sqrt(n)))
    index = faiss.IndexFlatIP(d) if kind == "flat" else faiss.IndexIVFFlat(
        faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
    if on_gpu:  # before training: the IVF k-means is the expensive part, and it runs on the GPU too
        index = faiss.index_cpu_to_all_gpus(index)
    if kind == "ivf":
        index.train(vectors[np.random.default_rng(0).choice(n, min(n, nlist * 64), replace=False)])
        # ParameterSpace sets nprobe on a CPU and a GPU IVF index alike
        (faiss.GpuParameterSpace() if on_gpu else faiss.ParameterSpace()).set_index_parameter(
            index, "nprobe", min(cfg.nprobe, nlist))
    index.add(vectors)
    log.info("neighbour index: %s over %d x %d (%s)", kind, n, d, "gpu" if on_gpu else "cpu")
    return index


def knn(vectors: np.ndarray, cfg: NeighboursConfig, queries: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-k neighbours of every row (or of ``queries``) among ``vectors``; self-matches removed."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    self_search = queries is None
    queries = vectors if self_search else np.ascontiguousarray(queries, dtype=np.float32)
    k = min(cfg.k, len(vectors) - (1 if self_search else 0))
    if k <= 0:
        raise ValueError(f"need at least {2 if self_search else 1} vectors for neighbours, got {len(vectors)}")
    index = build_index(vectors, cfg, None if self_search else len(queries))
    extra = 1 if self_search else 0
    ids = np.empty((len(queries), k), np.int64)
    sims = np.empty((len(queries), k), np.float32)
    for start in range(0, len(queries), cfg.query_batch):
        q = queries[start : start + cfg.query_batch]
        s, i = index.search(q, k + extra)
        if self_search:
            i, s = _drop_self(i, s, np.arange(start, start + len(q)), k)
        missing = i < 0  # IVF may find fewer than k: repeat the best hit instead of a bogus row
        if missing.any():
            i, s = np.where(missing, i[:, :1], i), np.where(missing, s[:, :1], s)
        ids[start : start + len(q)], sims[start : start + len(q)] = i, s
    return ids, sims


def _drop_self(ids: np.ndarray, sims: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Remove each row's own id; where it is absent (duplicates, IVF misses) drop the last hit."""
    is_self = ids == rows[:, None]
    keep = ~is_self
    keep[~is_self.any(axis=1), -1] = False
    return ids[keep].reshape(len(ids), k), sims[keep].reshape(len(ids), k)


def to_table(ids: np.ndarray, sims: np.ndarray) -> pa.Table:
    n, k = ids.shape
    offsets = pa.array(np.arange(0, n * k + 1, k, dtype=np.int32))
    return pa.table({
        schema.ROW: pa.array(np.arange(n), pa.int64()),
        schema.NEIGHBOURS: pa.ListArray.from_arrays(offsets, pa.array(ids.reshape(-1))),
        schema.SCORES: pa.ListArray.from_arrays(offsets, pa.array(sims.reshape(-1))),
    })


def from_table(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    schema.require_columns(table, [schema.NEIGHBOURS, schema.SCORES], "neighbours")
    n = table.num_rows
    ids = table.column(schema.NEIGHBOURS).combine_chunks().values.to_numpy().reshape(n, -1)
    sims = table.column(schema.SCORES).combine_chunks().values.to_numpy().reshape(n, -1)
    return ids, sims


def neighbours_stage(run: RunDir, cfg: NeighboursConfig, vectors: np.ndarray, upstream: Stage,
                     name: str = "neighbours") -> tuple[np.ndarray, np.ndarray, Stage]:
    """Top-k neighbours of every row, stored as neighbours.parquet."""
    stage = run.stage(name, cfg, upstream.fingerprint)

    def write(stage: Stage, found: tuple[np.ndarray, np.ndarray]) -> dict:
        write_table(stage.file("neighbours.parquet"), to_table(*found))
        return {"rows": len(found[0]), "k": int(found[0].shape[1])}

    ids, sims = stage.run(lambda: run_placed(knn, vectors, cfg, use_gpu=cfg.use_gpu, what=f"stage {name}"), write,
                          lambda stage: from_table(pq.read_table(stage.file("neighbours.parquet"))))
    return ids, sims, stage
