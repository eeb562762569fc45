"""Column names of the tables that stages hand each other, defined once.

Every stage reads and writes Arrow tables (or Ray Datasets) with these columns and checks
its input with :func:`require_columns` before doing any work.
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
INDEX = "index"  # Ray batches of the LLM stage: position of the chat in the stage
CHAT = "chat"  # ... the chat as JSON
ANSWERS = "answers"  # ... the answers as JSON
ERROR = "error"  # ... the backend error of the row ("" when fine)

# LUMI
PSEUDO_LABEL = "pseudo_label"
PSEUDO_LABELS = "pseudo_labels"
LABEL_POOLED = "label_pooled"  # h: label-level pooled vector
TEXT_POOLED = "text_pooled"  # r: Jaccard text-level pooled vector

# ClusterLLM: triplets (anchor, choice 1, choice 2) and pairs, as ROW positions, and judgments
ANCHOR = "anchor"
CHOICE_1 = "choice_1"
CHOICE_2 = "choice_2"
ENTROPY = "entropy"  # entropy of the anchor's soft assignment to its closest coarse clusters
CHOICE = "choice"  # int8: 1 or 2 (the choice that matches the anchor), 0 when unanswered
PAIR_A = "pair_a"
PAIR_B = "pair_b"
MERGE_K = "merge_k"  # number of clusters just before the merge a pair was sampled from
SAME = "same"  # int8: 1 same category, 0 different, -1 unanswered
P_FIRST = "p_first"  # float: the judge's probability of the first answer (choice 1, "same"); NaN: none
CONSISTENT = "consistent"  # bool: both views of the question gave that answer on their own
# co-training: interpretations and preference pairs
CANDIDATE = "candidate"  # int: 0 = the greedy interpretation, 1..M = the sampled ones
INTERPRETATION = "interpretation"  # parsed "Reasoning: ... Keywords: ..." text ("" when unparseable)
VALID = "valid"  # bool: the candidate parsed (else the text stands in for it)
CHOSEN = "chosen"  # preferred interpretation of a DPO pair
REJECTED = "rejected"  # dispreferred interpretation of a DPO pair
CHOSEN_CANDIDATE = "chosen_candidate"  # CANDIDATE number of CHOSEN
REJECTED_CANDIDATE = "rejected_candidate"  # CANDIDATE number of REJECTED


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
