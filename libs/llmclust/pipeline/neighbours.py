"""Top-k cosine neighbours with faiss: exact for small corpora, an inverted-file index beyond.

Exact search is quadratic (a 50k self-search is already 2 TFLOP, minutes on 2 CPU cores), so
large corpora use an approximate index; ``auto`` goes approximate when queries x rows reach
``approximate_min_rows``^2 (a self-search of 50k rows, or 1M queries against 2.5k rows).

``ivf`` (what ``auto`` picks) cuts the rows into ``n / ivf_list_rows`` cells by k-means
(trained on ``ivf_train_per_cell`` rows a cell) and scans the ``nprobe`` cells nearest a
query. With cells of a fixed size a query costs the same at any n, and on CPU the cells
nearest a query are found through an HNSW graph over the cell centres (log n), so the
search grows about linearly; the cells are scanned as contiguous memory.
benchmarks/results/scale.json measures it at 100k-1M against plain faiss. ``hnsw``, a graph
over all rows, is there for query-heavy use; ``auto`` does not pick it because in an
exploratory run at 1M rows on 2 CPU cores (not one of the repository's benchmarks) its random
memory access made it slower than ``ivf`` and grow faster with n. On a GPU the cell centres are scanned exactly (faiss
has no GPU HNSW).

An approximate index is tuned to ``target_recall``: on ``recall_sample`` queries its top k
are compared with exact search, and ``nprobe`` (HNSW's ``efSearch``) doubles until the recall
is reached. In a self-search a row that does not find itself was missed by the index and is
searched again wider (:func:`search`). The recall and the setting are recorded in the
stage's manifest. Queries run in batches to bound memory. A GPU index is used when faiss was
built with GPU support and a device is visible.

Example::

    idx, sims = knn(vectors, NeighboursConfig(k=10))   # (n, 10) rows and cosine scores, self excluded
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from llmclust import schema
from llmclust.config import expect, expect_choice
from llmclust.optional import import_faiss
from llmclust.pipeline.placement import USE_GPU, faiss_has_gpu, run_placed
from llmclust.store.runs import RunDir, Stage, write_table

log = logging.getLogger(__name__)

MAX_EF_SEARCH = 4096  # HNSW search width at which tuning gives up (recall then is what it is)


@dataclass
class NeighboursConfig:
    k: int = 10  # neighbours per text, itself excluded
    index: str = "auto"  # auto | flat (exact) | hnsw | ivf (approximate)
    approximate_min_rows: int = 50_000  # auto goes approximate at this many rows (self-search; see the module doc)
    target_recall: float = 0.95  # an approximate index is tuned until its recall@k on a sample reaches this; 0: no tuning
    recall_sample: int = 256  # queries the recall is measured on (against exact search)
    hnsw_m: int = 32  # HNSW graph degree
    ef_construction: int = 80  # HNSW build-time search width
    ef_search: int = 32  # HNSW query-time search width to start tuning from
    ivf_list_rows: int = 256  # IVF: rows per cell (nlist = n / this)
    ivf_train_per_cell: int = 40  # IVF: k-means training rows per cell
    nlist: int = 0  # IVF cells; 0: n / ivf_list_rows
    nprobe: int = 8  # IVF cells visited per query, to start tuning from
    query_batch: int = 16_384  # queries per search call
    use_gpu: str = "auto"  # auto: on a GPU worker when the Ray cluster has one | never | always

    def __post_init__(self):
        expect(self.k > 0, "k", self.k, "a positive integer")
        expect_choice("index", self.index, ["auto", "flat", "hnsw", "ivf"])
        expect(self.approximate_min_rows > 0, "approximate_min_rows", self.approximate_min_rows, "a positive integer")
        expect(0 <= self.target_recall <= 1, "target_recall", self.target_recall, "a number in [0, 1] (0: no tuning)")
        expect(self.recall_sample > 0, "recall_sample", self.recall_sample, "a positive integer")
        expect(self.hnsw_m >= 4, "hnsw_m", self.hnsw_m, "an integer >= 4")
        expect(self.ef_construction > 0, "ef_construction", self.ef_construction, "a positive integer")
        expect(self.ef_search > 0, "ef_search", self.ef_search, "a positive integer")
        expect(self.ivf_list_rows > 0, "ivf_list_rows", self.ivf_list_rows, "a positive integer")
        expect(self.ivf_train_per_cell >= 39, "ivf_train_per_cell", self.ivf_train_per_cell,
               "an integer >= 39 (faiss k-means needs that many rows a centre)")
        expect(self.nlist >= 0, "nlist", self.nlist, "0 (automatic) or a positive integer")
        expect(self.nprobe > 0, "nprobe", self.nprobe, "a positive integer")
        expect(self.query_batch > 0, "query_batch", self.query_batch, "a positive integer")
        expect_choice("use_gpu", self.use_gpu, USE_GPU)


def _gpu_count(faiss) -> int:
    return faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0


def index_kind(cfg: NeighboursConfig, rows: int, queries: int | None = None) -> str:
    """flat, hnsw or ivf: ``auto`` goes IVF once exact search would cost a 50k self-search."""
    if cfg.index != "auto":
        return cfg.index
    return "ivf" if rows * (rows if queries is None else queries) >= cfg.approximate_min_rows ** 2 else "flat"


@dataclass
class Index:
    """A built faiss index and what it was tuned to."""

    faiss_index: object
    kind: str
    setting: dict  # {"ef_search": ...} or {"nprobe": ...}; {} for exact search
    on_gpu: bool = False
    recall: float | None = None  # measured recall@k on the sample (None: exact, or not tuned)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.faiss_index.search(queries, k)


def build_index(vectors: np.ndarray, cfg: NeighboursConfig, queries: int | None = None) -> Index:
    """An inner-product index over normalised ``vectors`` (so scores are cosines), for
    ``queries`` queries (None: each row searches the others), not yet tuned."""
    faiss = import_faiss()

    n, d = vectors.shape
    gpus = _gpu_count(faiss)
    if cfg.use_gpu == "always" and not gpus:
        raise RuntimeError("neighbours.use_gpu=always but faiss sees no GPU; install faiss-gpu or set use_gpu=auto")
    on_gpu = bool(gpus) and cfg.use_gpu != "never"
    kind = index_kind(cfg, n, queries)
    if kind == "hnsw":
        if on_gpu:
            raise ValueError("neighbours.index=hnsw runs on CPU only (faiss has no GPU HNSW); "
                             "use index=ivf or auto on GPU, or use_gpu=never")
        index = faiss.IndexHNSWFlat(d, cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = cfg.ef_construction
        index.add(vectors)
        built = Index(index, kind, {})
        _set(built, "ef_search", cfg.ef_search)
    elif kind == "ivf":
        nlist = _nlist(cfg, n)
        # the cell centres: exact on a GPU, through an HNSW graph on CPU (thousands of them at 1M rows)
        quantizer = faiss.IndexFlatIP(d) if on_gpu else faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
        index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        if on_gpu:  # before training: the IVF k-means is the expensive part, and it runs on the GPU too
            index = faiss.index_cpu_to_all_gpus(index)
        index.train(vectors[np.random.default_rng(0).choice(n, min(n, nlist * cfg.ivf_train_per_cell), replace=False)])
        index.add(vectors)
        built = Index(index, kind, {}, on_gpu)
        _set(built, "nprobe", min(cfg.nprobe, nlist))
    else:
        index = faiss.IndexFlatIP(d)
        if on_gpu:
            index = faiss.index_cpu_to_all_gpus(index)
        index.add(vectors)
        built = Index(index, kind, {}, on_gpu)
    log.info("neighbour index: %s over %d x %d (%s)", kind, n, d, "gpu" if on_gpu else "cpu")
    return built


def _nlist(cfg: NeighboursConfig, rows: int) -> int:
    return cfg.nlist or max(1, rows // cfg.ivf_list_rows)


def _set(index: Index, name: str, value: int) -> None:
    faiss = import_faiss()
    if name == "ef_search":
        index.faiss_index.hnsw.efSearch = value
    else:  # ParameterSpace sets nprobe on a CPU and a GPU IVF index alike
        space = faiss.GpuParameterSpace() if index.on_gpu else faiss.ParameterSpace()
        space.set_index_parameter(index.faiss_index, "nprobe", value)
        if not index.on_gpu:  # the centre graph must return at least nprobe cells
            space.set_index_parameter(index.faiss_index, "quantizer_efSearch", max(64, 2 * value))
    index.setting = {name: value}


def tune_recall(index: Index, vectors: np.ndarray, queries: np.ndarray | None, cfg: NeighboursConfig) -> Index:
    """Raise efSearch / nprobe (doubling) until recall@k on a sample of the queries, against
    exact search, reaches ``cfg.target_recall``; records the recall reached."""
    if index.kind == "flat" or cfg.target_recall == 0:
        return index
    faiss = import_faiss()
    self_search = queries is None
    pool = vectors if self_search else queries
    sample = np.sort(np.random.default_rng(0).choice(len(pool), min(len(pool), cfg.recall_sample), replace=False))
    k = min(cfg.k + (1 if self_search else 0), len(vectors))
    _, truth = faiss.knn(pool[sample], vectors, k, metric=faiss.METRIC_INNER_PRODUCT)
    name, value = next(iter(index.setting.items()))
    limit = _limit(index, cfg, len(vectors))
    while True:
        found = search(index, pool[sample], k, sample if self_search else None, limit)[1]
        index.recall = _recall(found, truth, sample if self_search else None)
        if index.recall >= cfg.target_recall or value >= limit:
            break
        value = min(2 * value, limit)
        _set(index, name, value)
    if index.recall < cfg.target_recall:
        log.warning("neighbour index %s: recall@%d %.3f at %s=%d, below target_recall=%.2f",
                    index.kind, cfg.k, index.recall, name, value, cfg.target_recall)
    log.info("neighbour index %s: recall@%d %.3f at %s=%d", index.kind, cfg.k, index.recall, name, value)
    return index


def _limit(index: Index, cfg: NeighboursConfig, rows: int) -> int:
    return MAX_EF_SEARCH if index.kind == "hnsw" else _nlist(cfg, rows)


def search(index: Index, queries: np.ndarray, k: int, rows: np.ndarray | None,
           limit: int) -> tuple[np.ndarray, np.ndarray]:
    """``index.search``; in a self-search (``rows``: each query's own row) the queries whose own
    row is not among their hits are searched again with a 4x wider setting (up to ``limit``),
    twice at most.

    A search that misses the query itself has not reached its neighbourhood (a few per cent of
    rows on tight topics); those rows carry most of the lost recall, and re-searching them
    costs little. The recall the stage reaches is measured against exact search and recorded.
    """
    sims, ids = index.search(queries, k)
    if rows is None or not index.setting:  # exact search has nothing to widen
        return sims, ids
    name, base = next(iter(index.setting.items()))
    wider = base
    for _ in range(2):
        lost = ~(ids == rows[:, None]).any(axis=1)
        wider = min(4 * wider, limit)
        if not lost.any() or wider == base:
            break
        _set(index, name, wider)
        sims[lost], ids[lost] = index.search(queries[lost], k)
    _set(index, name, base)
    return sims, ids


def _recall(found: np.ndarray, truth: np.ndarray, rows: np.ndarray | None) -> float:
    """Share of the exact top k (each row itself left out when ``rows`` says which it is) found."""
    hits = []
    for i, (f, t) in enumerate(zip(found, truth)):
        t = set(t.tolist()) - ({int(rows[i])} if rows is not None else set())
        f = set(f.tolist()) - ({int(rows[i])} if rows is not None else set())
        hits.append(len(f & t) / max(len(t), 1))
    return round(float(np.mean(hits)), 4)


def knn(vectors: np.ndarray, cfg: NeighboursConfig, queries: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-k neighbours of every row (or of ``queries``) among ``vectors``; self-matches removed."""
    return knn_report(vectors, cfg, queries)[:2]


def knn_report(vectors: np.ndarray, cfg: NeighboursConfig,
               queries: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """:func:`knn`, and what the index was: its kind, tuned setting and measured recall."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    self_search = queries is None
    queries_arr = vectors if self_search else np.ascontiguousarray(queries, dtype=np.float32)
    k = min(cfg.k, len(vectors) - (1 if self_search else 0))
    if k <= 0:
        raise ValueError(f"need at least {2 if self_search else 1} vectors for neighbours, got {len(vectors)}")
    index = tune_recall(build_index(vectors, cfg, None if self_search else len(queries_arr)), vectors,
                        None if self_search else queries_arr, cfg)
    report = {"index": index.kind, **index.setting, **({"recall_at_k": index.recall} if index.recall is not None else {})}
    extra = 1 if self_search else 0
    ids = np.empty((len(queries_arr), k), np.int64)
    sims = np.empty((len(queries_arr), k), np.float32)
    limit = _limit(index, cfg, len(vectors))
    for start in range(0, len(queries_arr), cfg.query_batch):
        q = queries_arr[start : start + cfg.query_batch]
        rows = np.arange(start, start + len(q))
        s, i = search(index, q, k + extra, rows if self_search else None, limit)
        if self_search:
            i, s = _drop_self(i, s, rows, k)
        missing = i < 0  # an approximate index may find fewer than k: repeat the best hit instead of a bogus row
        if missing.any():
            i, s = np.where(missing, i[:, :1], i), np.where(missing, s[:, :1], s)
        ids[start : start + len(q)], sims[start : start + len(q)] = i, s
    return ids, sims, report


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

    def write(stage: Stage, found: tuple[np.ndarray, np.ndarray, dict]) -> dict:
        ids, sims, report = found
        write_table(stage.file("neighbours.parquet"), to_table(ids, sims))
        return {"rows": len(ids), "k": int(ids.shape[1]), **report}

    def compute() -> tuple[np.ndarray, np.ndarray, dict]:
        return run_placed(knn_report, vectors, cfg, use_gpu=cfg.use_gpu, what=f"stage {name}", gpu_code=faiss_has_gpu())

    ids, sims, _ = stage.run(compute,
                             write, lambda stage: (*from_table(pq.read_table(stage.file("neighbours.parquet"))), {}))
    return ids, sims, stage
