"""Embedding stage: texts -> L2-normalised vectors, as a Ray Data actor pool or in this process.

The corpus is cut into checkpointed chunks (``chunk_rows``); inside a chunk texts are sorted
by length so a batch pads to similar lengths, then handed to ``map_batches`` with a callable
class that loads the model once per actor. With ``tokenize_workers > 0`` tokenisation runs in
separate CPU tasks and the model actors only run the forward pass: on a GPU the forward is
~10x faster than one tokenizer process, so tokenising in parallel is what keeps the GPU busy.

An actor pool lives for one stage, and starting it (processes, imports, the model) costs 12-18 s
on the 2-core CI machine and 19-23 s on an H200 node, stage after stage. ``num_actors: 0`` embeds
in this process instead, the same batches in the same order: the model is loaded once and kept
for the job's next embed stages (for one machine: a laptop, a single-GPU box; a cluster's driver
has no GPU, so it keeps the pool).

Example::

    emb = make_embedder(EmbeddingConfig())           # all-MiniLM-L6-v2 from its package
    vectors = emb.encode(["where is my card?", "top up failed"])   # (2, 384) float32
"""

from __future__ import annotations

import logging
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa

from llmclust import schema
from llmclust.config import expect, expect_choice
from llmclust.devices import resolve_device
from llmclust.models import hashing_dim, resolve_model
from llmclust.pipeline.embedders import Embedder, SentenceEmbedder, text_features
from llmclust.pipeline.hashing_embedder import HashingEmbedder
from llmclust.ray_session import make_room, require_resources
from llmclust.store.parts import PartStore
from llmclust.store.runs import TRANSIENT, Progress, RunDir, Stage
from llmclust.store.vectors import StoredVectors

log = logging.getLogger(__name__)


@dataclass
class EmbeddingConfig:
    model: str = "all-MiniLM-L6-v2"  # local path, or the embedded default
    device: str = "auto"  # auto (cuda if present) | cpu | cuda
    dtype: str = "auto"  # auto (float16 on cuda, float32 on cpu) | float32 | float16 | bfloat16
    batch_size: int = 256  # texts per model call (and per Ray Data batch)
    max_seq_length: int = 128  # tokens; longer texts are truncated by the tokenizer
    num_actors: int = 1  # model actors in the pool; 0: in this process, the model kept across stages
    cpus_per_actor: float = 2  # torch threads per actor on CPU
    gpus_per_actor: float = 0  # 1 on GPU nodes
    tokenize_workers: int = 0  # 0: tokenise inside the model actor; N: N parallel CPU tasks
    chunk_rows: int = 100_000  # rows per checkpointed part; bounds driver memory (~4 KB a row) and lost work

    def __post_init__(self):
        expect(bool(self.model), "model", self.model, "a local path or 'all-MiniLM-L6-v2'")
        expect_choice("device", self.device, ["auto", "cpu", "cuda"])
        expect_choice("dtype", self.dtype, ["auto", "float32", "float16", "bfloat16"])
        expect(self.batch_size > 0, "batch_size", self.batch_size, "a positive integer")
        expect(self.max_seq_length > 0, "max_seq_length", self.max_seq_length, "a positive integer")
        expect(self.num_actors >= 0, "num_actors", self.num_actors,
               "0 (embed in this process) or a positive integer (a Ray Data actor pool)")
        expect(self.cpus_per_actor > 0, "cpus_per_actor", self.cpus_per_actor, "a positive number")
        expect(self.gpus_per_actor >= 0, "gpus_per_actor", self.gpus_per_actor, "0 or more")
        expect(self.tokenize_workers >= 0, "tokenize_workers", self.tokenize_workers, "0 or more")
        expect(self.chunk_rows > 0, "chunk_rows", self.chunk_rows, "a positive integer")
        expect(not (hashing_dim(self.model) and self.tokenize_workers), "tokenize_workers", self.tokenize_workers,
               f"0 with model={self.model} (the hashing embedder has no tokenizer to run apart)")


def make_embedder(cfg: EmbeddingConfig, model_path: str | None = None) -> Embedder:
    """The embedder ``model_path`` (default ``cfg.model``) names: a sentence-transformers model,
    or the model-free ``hashing-<dim>`` (:mod:`llmclust.pipeline.hashing_embedder`)."""
    dim = hashing_dim(model_path or cfg.model)
    return HashingEmbedder(dim) if dim else SentenceEmbedder(cfg, model_path)


def pad_token_lists(ids) -> dict:
    """Ragged per-row token arrays (from a tokenising task) -> padded tensors, vectorised."""
    import torch

    lengths = np.fromiter((len(r) for r in ids), np.int64, count=len(ids))
    mask = np.arange(lengths.max()) < lengths[:, None]
    input_ids = np.zeros(mask.shape, np.int64)
    input_ids[mask] = np.concatenate(ids)
    return {schema.TOKEN_IDS: torch.from_numpy(input_ids), schema.TOKEN_MASK: torch.from_numpy(mask.astype(np.int64))}


class TokenizeBatch:
    """Ray Data callable: TEXT -> ragged token ids, run as a pool of CPU actors.

    Tokenises through the sentence-transformers model itself (its lower-casing, prompts and
    truncation), not a bare tokenizer, so the vectors equal those of ``tokenize_workers=0``.
    That loads the weights once per actor on CPU; only the tokenising path runs.
    """

    def __init__(self, model_path: str, max_seq_length: int):
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(model_path, device="cpu")
        self.model.max_seq_length = max_seq_length

    def __call__(self, batch: dict) -> dict:
        features = text_features(self.model, list(batch[schema.TEXT]))
        ids, mask = features[schema.TOKEN_IDS].numpy(), features[schema.TOKEN_MASK].numpy().astype(bool)
        # unpadded ids only: the model actor pads each batch to its own longest text
        return {schema.ROW: batch[schema.ROW], schema.TOKEN_IDS: [row[keep].astype(np.int32) for row, keep in zip(ids, mask)]}


class EncodeBatch:
    """Ray Data callable class: loads the model once per actor, embeds one batch per call."""

    def __init__(self, cfg: EmbeddingConfig, model_path: str):
        import torch

        if resolve_device(cfg.device, "embedding.device") == "cpu":
            torch.set_num_threads(max(1, int(cfg.cpus_per_actor)))
        self.embedder = make_embedder(cfg, model_path)

    def __call__(self, batch: dict) -> dict:
        if schema.TOKEN_IDS in batch:
            features = pad_token_lists(batch[schema.TOKEN_IDS])
        else:
            features = self.embedder.tokenize(list(batch[schema.TEXT]))
        return {schema.ROW: batch[schema.ROW], schema.EMBEDDING: self.embedder.forward_tokens(features)}


def length_batches(table: pa.Table, cfg: EmbeddingConfig) -> list[pa.Table]:
    """The (chunk) table's ROW and TEXT in batches of ``batch_size``, longest texts first, so that
    a batch pads to similar lengths (the same batches in an actor pool and in this process)."""
    schema.require_columns(table, [schema.ROW, schema.TEXT], "embed")
    lengths = np.asarray([len(t) for t in table.column(schema.TEXT).to_pylist()])
    ordered = table.select([schema.ROW, schema.TEXT]).take(pa.array(np.argsort(-lengths, kind="stable")))
    return [ordered.slice(s, cfg.batch_size) for s in range(0, ordered.num_rows, cfg.batch_size)]


_kept: dict[tuple, Embedder] = {}  # num_actors=0: the one embedder this process keeps loaded
_preload: list[dict] = []  # the running preload_embedder's thread and, once done, its model or error


@contextmanager
def keep_embedder():
    """Around a fit: at its end, drop the embedder :func:`embed_here` kept (a later fit may retrain
    a model into the same folder) and the GPU memory torch holds for it."""
    try:
        yield
    finally:
        _preload.clear()  # a load still running ends in a holder nobody reads: a failed fit does not wait for it
        _kept.clear()
        _free_gpu_cache()


def _key(cfg: EmbeddingConfig) -> tuple:
    return resolve_model(cfg.model), cfg.device, cfg.dtype, cfg.max_seq_length


def preload_embedder(cfg: EmbeddingConfig) -> None:
    """With ``num_actors: 0``, load the model :func:`embed_here` will use in a background thread
    (imports and weights: 15-30 s on a GPU node) while the driver waits on other work (Ray's
    start, LLM stages in actors); ``embed_here`` waits for it. Call it inside :func:`keep_embedder`."""
    if cfg.num_actors or _preload:
        return
    import threading

    holder: dict = {}

    def load() -> None:
        try:
            holder["embedder"] = make_embedder(cfg, _key(cfg)[0])
        except Exception as err:  # noqa: BLE001 - raised where the embedder is needed
            holder["error"] = err

    holder.update(key=_key(cfg), thread=threading.Thread(target=load, name="embedder-preload", daemon=True))
    _preload.append(holder)
    holder["thread"].start()


def _adopt_preload() -> None:
    """Wait for a started preload and keep its model (or raise the error it met)."""
    if not _preload:
        return
    holder = _preload.pop()
    holder["thread"].join()
    if "error" in holder:
        raise holder["error"]
    _kept.clear()
    _kept[holder["key"]] = holder["embedder"]


def _free_gpu_cache() -> None:
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        torch.cuda.empty_cache()  # memory Ray does not count: give it back to the GPU's other holders


def embed_here(table: pa.Table, cfg: EmbeddingConfig, on_batch=None) -> np.ndarray:
    """:func:`embed_with_ray`'s result, computed in this process (``num_actors: 0``) by a model
    loaded once and kept while later stages of the fit ask for the same one. Between stages it
    holds only its weights on a GPU (torch's cached blocks are freed), which Ray does not count."""
    _adopt_preload()
    key = _key(cfg)
    if key not in _kept:
        _kept.clear()  # one model at a time: a fine-tuned embedder replaces the one before
        _kept[key] = make_embedder(cfg, key[0])
    embedder = _kept[key]
    first = table.column(schema.ROW)[0].as_py() if table.num_rows else 0
    out = None
    for batch in length_batches(table, cfg):
        vectors = embedder.forward_tokens(embedder.tokenize(batch.column(schema.TEXT).to_pylist()))
        if out is None:
            out = np.empty((table.num_rows, vectors.shape[1]), np.float32)
        out[batch.column(schema.ROW).to_numpy() - first] = vectors
        if on_batch:
            on_batch(batch.num_rows)
    _free_gpu_cache()
    return out


def embed_with_ray(table: pa.Table, cfg: EmbeddingConfig, on_batch=None) -> np.ndarray:
    """Embed a (chunk) table with columns ROW, TEXT; returns vectors in the table's row order.

    ``on_batch(rows)`` is called as each batch of results arrives (progress, timing).
    """
    import ray

    model_path = resolve_model(cfg.model)
    blocks = length_batches(table, cfg)
    # from_blocks reads the blocks' metadata here; from_arrow starts a remote task per block just for
    # its schema (7,800 tasks at 1M texts), the task in which a worker's abseil "Mutex corrupt" abort
    # was seen on a loaded machine (ray-project/ray#36415 is the nearest upstream report)
    ds = ray.data.from_blocks(blocks)
    if cfg.tokenize_workers:
        ds = ds.map_batches(
            TokenizeBatch,
            fn_constructor_args=(model_path, cfg.max_seq_length),
            batch_size=cfg.batch_size,
            compute=ray.data.ActorPoolStrategy(size=cfg.tokenize_workers),
            num_cpus=1,
            batch_format="numpy",
        )
    per_actor = {"CPU": cfg.cpus_per_actor if not cfg.gpus_per_actor else 1, "GPU": cfg.gpus_per_actor}
    if cfg.tokenize_workers:  # their CPUs too, beside the encode actors'
        make_room({"CPU": 1}, cfg.tokenize_workers + math.ceil(cfg.num_actors * per_actor["CPU"]))
    require_resources("the embed stage", per_actor, cfg.num_actors,
                      "embedding.num_actors, embedding.cpus_per_actor or embedding.gpus_per_actor")
    ds = ds.map_batches(
        EncodeBatch,
        fn_constructor_args=(cfg, model_path),
        batch_size=cfg.batch_size,
        compute=ray.data.ActorPoolStrategy(size=cfg.num_actors),
        num_cpus=per_actor["CPU"],
        num_gpus=cfg.gpus_per_actor or None,
        batch_format="numpy",
    )
    first = table.column(schema.ROW)[0].as_py() if table.num_rows else 0
    out = None
    for batch in ds.iter_batches(batch_format="numpy", batch_size=None, prefetch_batches=4):
        if out is None:
            out = np.empty((table.num_rows, batch[schema.EMBEDDING].shape[1]), np.float32)
        out[batch[schema.ROW] - first] = batch[schema.EMBEDDING]
        if on_batch:
            on_batch(len(batch[schema.ROW]))
    return out


def embed_corpus(table: pa.Table, cfg: EmbeddingConfig, parts: PartStore) -> float | None:
    """Embed every row into checkpointed chunks (``parts``), holding one chunk's vectors at a time.

    Rows must be numbered 0..n-1 in ``schema.ROW`` (the corpus stage's output). Intact parts
    of a killed run are reused whatever ``chunk_rows`` it had; only rows no part holds are embedded.
    Returns the start-up seconds (actor pool started, or in this process the model loaded unless
    kept from an earlier stage: until the first batch came back), None when every part was already there.
    """
    n = table.num_rows
    progress = Progress("embed", n)
    progress.update(sum(stop - start for start, stop in parts.intact(n).items()))
    todo = parts.missing(n, cfg.chunk_rows)
    startup = None
    for index, (start, stop) in enumerate(todo):
        t0 = time.time()
        first_batch = []  # seconds until the chunk's first batch came back

        def on_batch(rows: int) -> None:
            if not first_batch:
                first_batch.append(round(time.time() - t0, 2))
            progress.update(rows)

        embed = embed_with_ray if cfg.num_actors else embed_here
        vectors = embed(table.slice(start, stop - start), cfg, on_batch=on_batch)
        if startup is None and first_batch:  # the first chunk's: later chunks pay it again in a new pool
            startup = first_batch[0]
        parts.write(start, stop, pa.table({
            schema.ROW: pa.array(np.arange(start, stop), pa.int64()),
            schema.EMBEDDING: schema.to_fixed_list(vectors),
        }))
        log.info("embed chunk %d/%d (rows %d-%d) in %.1f s", index + 1, len(todo), start, stop, time.time() - t0,
                 extra=TRANSIENT)
    parts.check_cover(n)  # the manifest written next vouches for every row
    return startup


def _stored(parts: PartStore, n: int, verify: bool = True) -> StoredVectors:
    """The parts as vectors; ``verify``: check every part's checksum first (a finished stage read
    back; parts just written and checked by :func:`embed_corpus` need not be hashed again)."""
    if verify:
        parts.verify(n)
    return StoredVectors(parts, n, parts.schema().field(schema.EMBEDDING).type.list_size)


def embed_stage(run: RunDir, cfg: EmbeddingConfig, table: pa.Table, upstream: Stage, name: str = "embed",
                model_path: str | None = None, lazy: bool = False) -> tuple[np.ndarray | StoredVectors, Stage]:
    """Embed every text of ``table`` (checkpointed per chunk); ``model_path`` overrides ``cfg.model``.

    ``lazy``: hand back :class:`StoredVectors` (the parts on disk, read a part at a time)
    instead of one (n, d) array, for callers that stream them (the baseline's reduce and publish).
    """
    emb_cfg = replace(cfg, model=model_path) if model_path else cfg
    # throughput knobs do not change the vectors, so they do not invalidate the stage
    identity = {"model": emb_cfg.model, "dtype": emb_cfg.dtype, "max_seq_length": emb_cfg.max_seq_length}
    stage = run.stage(name, identity, upstream.fingerprint)
    parts = PartStore(stage)  # the parts are the stage's output: no second copy of the vectors

    started = {}

    def compute() -> StoredVectors:
        started["startup_s"] = embed_corpus(table, emb_cfg, parts)
        return _stored(parts, table.num_rows, verify=False)

    vectors = stage.run(
        compute,
        lambda stage, v: {"rows": len(v), "dim": v.dim, "model": emb_cfg.model, "parts": len(parts), **started},
        lambda stage: _stored(parts, table.num_rows),
    )
    return (vectors if lazy else vectors.load()), stage


def stored_vectors(stage_dir: Path, lazy: bool = False) -> np.ndarray | StoredVectors:
    """The vectors a finished embed stage holds, e.g. ``<run dir>/embed`` (reports, benchmarks);
    ``lazy``: left in the parts (read with ``take``/``chunks``)."""
    stage = Stage.finished(stage_dir)
    vectors = _stored(PartStore(stage, read_only=True), stage.manifest["rows"])
    return vectors if lazy else vectors.load()
