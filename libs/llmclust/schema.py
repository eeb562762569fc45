"""Column names of the tables that stages hand each other, defined once.

Every stage reads and writes Arrow tables (or Ray Datasets) with these columns and checks
its input with :func:`require_columns` before doing any work. A method's own tables name their
columns in ``methods/<name>/columns.py``.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pyarrow as pa

# corpus
ID = "id"  # stable string id of a text (user-given or the row number in the input)
TEXT = "text"  # the text, after the corpus policies (truncation) were applied
ROW = "row"  # 0-based position in the cleaned corpus; joins every later table
REASON = "reason"  # why a row was rejected by the corpus stage

# embedding / neighbours
EMBEDDING = "embedding"  # fixed-size list<float32>, L2-normalised
TOKEN_IDS = "input_ids"  # ragged token ids handed from tokenizer actors to model actors
TOKEN_MASK = "attention_mask"
NEIGHBOURS = "neighbours"  # list<int64> of ROW positions, nearest first, self excluded
SCORES = "scores"  # list<float32> cosine similarities matching NEIGHBOURS

# clustering / naming
CLUSTER = "cluster"  # int64 cluster id
CLUSTER_NAME = "cluster_name"
SIZE = "size"
CENTROID = "centroid"  # fixed-size list<float32> in the final embedder's space
SCORE = "score"  # cosine similarity of a text to its cluster centre
SEED_LABELS = "seed_{seed}"  # cluster/labels.parquet (reduce/reduced.parquet): one column per KMeans seed
SPACE_CENTRE = "space_centre"  # clusters.parquet: the KMeans centre in the reduced space, when reduced

# LLM stages
PROMPT = "prompt"
RESPONSE = "response"
RETRIED = "retried"  # bool: the first answer was unparseable and the row was asked again
FIRST_RESPONSE = "first_response"  # the answers before that retry (with llm.save_prompts)
ERROR = "error"  # the backend error of the row ("" when fine)


class SchemaError(ValueError):
    """A table handed to a stage lacks the columns that stage needs."""


def require_columns(table: pa.Table | Iterable[str], required: Iterable[str], stage: str) -> None:
    """Fail with the missing and the present column names when ``table`` lacks ``required``."""
    present = list(table.column_names if isinstance(table, pa.Table) else table)
    missing = [c for c in required if c not in present]
    if missing:
        raise SchemaError(
            f"stage '{stage}': required columns {missing} not found; input columns: {present}. "
            "Pass the output of the previous stage, or rename the columns to the names in "
            "llmclust.schema."
        )


def to_fixed_list(vectors: np.ndarray) -> pa.FixedSizeListArray:
    """(n, d) float array -> Arrow fixed-size list column (how vectors are stored)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), vectors.shape[1])


def from_fixed_list(column) -> np.ndarray:
    """Arrow fixed-size list column -> (n, d) float32 array."""
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return column.values.to_numpy(zero_copy_only=False).reshape(len(column), column.type.list_size)
