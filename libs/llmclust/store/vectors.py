"""A stage's vectors left in its Parquet parts and read a part at a time.

At 1M texts the 384-d vectors are 1.5 GB, 15 GB at 10M. The driver does not have to hold them
all at once: reduction fits on a sample and transforms part by part, and publish computes
centroids and scores part by part. Only a stage that needs the whole matrix in one process
(KMeans without reduction, the LLM methods) calls :meth:`StoredVectors.load`.

Example::

    vectors, stage = embed_stage(run, cfg.embedding, table, corpus, lazy=True)
    vectors.shape                                # (n, 384); nothing read yet
    for start, block in vectors.chunks(100_000): # (start, up to 100k rows) in row order
        ...
    vectors.take(np.array([3, 17]))              # those rows only
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from llmclust import schema
from llmclust.store.parts import PartStore

CHUNK_ROWS = 32_768  # rows a streaming reader holds at once (50 MB of 384-d float32)


class StoredVectors:
    """(n, d) float32 vectors in a finished stage's parts, read on demand."""

    def __init__(self, parts: PartStore, n: int, dim: int):
        self.parts, self.dim = parts, dim
        self.shape = (n, dim)

    def __len__(self) -> int:
        return self.shape[0]

    def chunks(self, size: int = CHUNK_ROWS) -> Iterator[tuple[int, np.ndarray]]:
        """``(start, rows)`` blocks of at most ``size`` rows in row order, never across a part;
        only one block (and one Parquet row group) is in memory at a time."""
        for start, batch in self.parts.iter_batches(len(self), size, [schema.EMBEDDING]):
            yield start, schema.from_fixed_list(batch.column(schema.EMBEDDING))

    def take(self, rows: np.ndarray) -> np.ndarray:
        """The given rows, in the order given, reading each part once."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), self.dim), np.float32)
        order = np.argsort(rows, kind="stable")
        sorted_rows = rows[order]
        for start, block in self.chunks():
            lo, hi = np.searchsorted(sorted_rows, [start, start + len(block)])
            out[order[lo:hi]] = block[sorted_rows[lo:hi] - start]
        return out

    def load(self) -> np.ndarray:
        """Every row in one array: for stages that need the whole matrix in this process."""
        out = np.empty(self.shape, np.float32)
        for start, block in self.chunks():
            out[start : start + len(block)] = block
        return out


def as_array(vectors: np.ndarray | StoredVectors) -> np.ndarray:
    return vectors.load() if isinstance(vectors, StoredVectors) else vectors


def chunks(vectors: np.ndarray | StoredVectors, size: int) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, rows)`` blocks of at most ``size`` rows of an array (views) or of stored vectors."""
    if isinstance(vectors, StoredVectors):
        yield from vectors.chunks(size)
        return
    for start in range(0, len(vectors), size):
        yield start, vectors[start : start + size]


def take(vectors: np.ndarray | StoredVectors, rows: np.ndarray) -> np.ndarray:
    return vectors.take(rows) if isinstance(vectors, StoredVectors) else np.asarray(vectors)[rows]
