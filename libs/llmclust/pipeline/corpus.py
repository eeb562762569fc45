"""Corpus IO: read Parquet / JSONL / CSV (a file or a folder of shards), validate, clean.

Only the text column (and the id column, if named) is ever read: a ground-truth column in
the same file stays on disk until :mod:`llmclust.pipeline.evaluation` is asked for it.

Cleaning policies are explicit and every row they remove is returned in a ``rejected``
table with the reason, so nothing disappears silently; files of a folder that are not read
(another format) are counted and listed in the report, with a warning. A file that cannot be
read is an error naming the file, the line and the option to change (``corpus.encoding`` for
text that is not UTF-8). :func:`check_job_inputs` checks, right after this stage and before
any embedding, what needs the corpus: K against the row count, and the ground-truth column.

Example::

    cfg = CorpusConfig(path="../shared/data/banking77/test.csv")
    result = load_corpus(cfg)
    result.table.column_names   # ['row', 'id', 'text']
    result.report               # {'rows_read': 3080, 'kept': 3080, ...}
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from llmclust import schema
from llmclust.config import expect, expect_choice
from llmclust.pipeline.corpus_files import (
    FORMATS,
    CorpusError,
    file_columns,
    known_encoding,
    read_columns,
    shard_files,
)
from llmclust.store.runs import RunDir, Stage, write_table

log = logging.getLogger(__name__)

MAX_LISTED = 20  # skipped files named in the report and the warning


@dataclass
class CorpusConfig:
    path: str = ""  # a file, or a folder of shards of one format
    format: str = "auto"  # auto (by extension) | parquet | jsonl | csv
    text_column: str = "text"
    id_column: str = ""  # empty: ids are the row numbers of the input
    empty_texts: str = "drop"  # drop (reported) | error
    duplicates: str = "keep"  # keep (each copy clustered) | drop (later copies, reported)
    max_chars: int = 2000  # texts longer than this are handled by `long_texts`
    long_texts: str = "truncate"  # truncate | drop (reported)
    limit: int = 0  # read only the first N rows (0: all); for smoke tests
    encoding: str = "utf-8"  # of CSV and JSONL files, e.g. latin-1, cp1252 (Parquet text is always UTF-8)

    def __post_init__(self):
        expect_choice("format", self.format, ["auto", *sorted(set(FORMATS.values()))])
        expect(known_encoding(self.encoding), "encoding", self.encoding,
               "a text encoding such as utf-8, latin-1, cp1252")
        expect(bool(self.text_column), "text_column", self.text_column, "a column name")
        expect_choice("empty_texts", self.empty_texts, ["drop", "error"])
        expect_choice("duplicates", self.duplicates, ["keep", "drop"])
        expect_choice("long_texts", self.long_texts, ["truncate", "drop"])
        expect(self.max_chars > 0, "max_chars", self.max_chars, "a positive number of characters")
        expect(self.limit >= 0, "limit", self.limit, "0 (all rows) or a positive row count")


@dataclass
class CorpusResult:
    table: pa.Table  # columns ROW, ID, TEXT
    rejected: pa.Table  # columns ID, TEXT, REASON
    report: dict


def read_raw(cfg: CorpusConfig) -> pa.Table:
    """Read the text (and id) columns of the corpus and check their type and count."""
    columns = [cfg.text_column] + ([cfg.id_column] if cfg.id_column else [])
    table = read_columns(cfg.path, cfg.format, columns, cfg.limit, cfg.encoding)
    text_type = table.schema.field(cfg.text_column).type
    if not (pa.types.is_string(text_type) or pa.types.is_large_string(text_type) or pa.types.is_null(text_type)):
        raise CorpusError(
            f"column {cfg.text_column!r} has type {text_type}, expected strings; point "
            "corpus.text_column at the column that holds the texts"
        )
    if table.num_rows == 0:
        raise CorpusError(f"corpus {cfg.path!r} has no rows; expected at least one text")
    return table


def clean(raw: pa.Table, cfg: CorpusConfig) -> CorpusResult:
    """Apply the empty / duplicate / long-text policies; returns kept and rejected rows."""
    texts = raw.column(cfg.text_column).cast(pa.string())
    ids = (
        raw.column(cfg.id_column).cast(pa.string())
        if cfg.id_column
        else pa.array(np.arange(raw.num_rows).astype(str))
    )
    texts = pc.if_else(pc.is_null(texts), "", texts)
    stripped = pc.utf8_trim_whitespace(texts)
    reasons = np.full(raw.num_rows, "", dtype=object)

    empty = np.asarray(pc.equal(pc.utf8_length(stripped), 0))
    if empty.any() and cfg.empty_texts == "error":
        raise CorpusError(
            f"{int(empty.sum())} empty or whitespace-only texts (first ids: "
            f"{ids.filter(pa.array(empty)).to_pylist()[:5]}); set corpus.empty_texts=drop to skip "
            "and report them"
        )
    reasons[empty] = "empty"

    too_long = np.asarray(pc.greater(pc.utf8_length(stripped), cfg.max_chars)) & ~empty
    if cfg.long_texts == "drop":
        reasons[too_long] = f"longer than {cfg.max_chars} chars"
    else:
        stripped = pc.utf8_slice_codeunits(stripped, 0, cfg.max_chars)

    duplicate = np.zeros(raw.num_rows, dtype=bool)
    if cfg.duplicates == "drop":
        _, first = np.unique(np.asarray(stripped.to_pylist(), dtype=object), return_index=True)
        duplicate[:] = True
        duplicate[first] = False
        duplicate &= reasons == ""
        reasons[duplicate] = "duplicate"

    keep = reasons == ""
    if not keep.any():
        raise CorpusError(
            f"corpus {cfg.path!r}: all {raw.num_rows} rows were rejected "
            f"({dict(zip(*np.unique(reasons, return_counts=True)))}); expected at least one usable text"
        )
    mask = pa.array(keep)
    table = pa.table({
        schema.ROW: pa.array(np.arange(int(keep.sum())), pa.int64()),
        schema.ID: ids.filter(mask),
        schema.TEXT: stripped.filter(mask),
    })
    reject = pa.array(~keep)
    rejected = pa.table({
        schema.ID: ids.filter(reject),
        schema.TEXT: texts.filter(reject),
        schema.REASON: pa.array(reasons[~keep].astype(str)),
    })
    report = {
        "rows_read": raw.num_rows,
        "kept": table.num_rows,
        "rejected_empty": int(empty.sum()),
        "rejected_duplicate": int(duplicate.sum()),
        "rejected_long": int(too_long.sum()) if cfg.long_texts == "drop" else 0,
        "truncated_long": int(too_long.sum()) if cfg.long_texts == "truncate" else 0,
        "duplicates_kept": _duplicate_count(table.column(schema.TEXT)) if cfg.duplicates == "keep" else 0,
    }
    if cfg.id_column and pc.count_distinct(table.column(schema.ID)).as_py() != table.num_rows:
        raise _repeated_ids(cfg.id_column, table.column(schema.ID).to_pylist(), np.flatnonzero(keep))
    return CorpusResult(table, rejected, report)


def _repeated_ids(column: str, ids: list[str], rows: np.ndarray) -> CorpusError:
    """The error naming the first repeated id and every input row (0-based) that carries it."""
    seen: dict[str, list[int]] = {}
    for row, i in zip(rows.tolist(), ids):
        seen.setdefault(i, []).append(row)
    repeated = [(i, r) for i, r in seen.items() if len(r) > 1]
    first, where = min(repeated, key=lambda item: item[1][1])
    return CorpusError(
        f"column {column!r} has repeated ids among kept rows: id {first!r} is on input rows {where} (0-based "
        f"data rows){f', and {len(repeated) - 1} more ids repeat' if len(repeated) > 1 else ''}; "
        "ids must be unique. Fix the ids, or leave corpus.id_column empty to use row numbers."
    )


def _duplicate_count(texts) -> int:
    return len(texts) - pc.count_distinct(texts).as_py()


def load_corpus(cfg: CorpusConfig) -> CorpusResult:
    """Read and clean the corpus; the report also counts the folder's files that were not read."""
    result = clean(read_raw(cfg), cfg)
    files, fmt, skipped = shard_files(Path(cfg.path), cfg.format)
    result.report.update(files_read=len(files), files_skipped=len(skipped),
                         skipped_files=[str(f) for f in skipped[:MAX_LISTED]])
    if skipped:
        log.warning("corpus: %d file(s) under %s skipped, not %s (corpus.format=%s): %s%s", len(skipped),
                    cfg.path, fmt, cfg.format, result.report["skipped_files"], " ..." if len(skipped) > MAX_LISTED else "")
    return result


def _source_fingerprint(cfg: CorpusConfig, texts: list[str] | None) -> list:
    if texts is not None:
        return [hashlib.sha256("\x00".join(texts).encode()).hexdigest()]
    files, _, _ = shard_files(Path(cfg.path), cfg.format)
    return [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files]


def corpus_stage(run: RunDir, cfg: CorpusConfig, texts: list[str] | None = None) -> tuple[pa.Table, Stage]:
    """Read and clean the corpus (or in-memory ``texts``); rejected rows go to rejected.parquet."""
    stage = run.stage("corpus", cfg, _source_fingerprint(cfg, texts))

    def compute() -> CorpusResult:
        if texts is None:
            return load_corpus(cfg)
        return clean(pa.table({cfg.text_column: pa.array(texts, pa.string())}), cfg)

    def write(stage: Stage, result: CorpusResult) -> dict:
        write_table(stage.file("texts.parquet"), result.table)
        write_table(stage.file("rejected.parquet"), result.rejected)
        log.info("corpus: %s", result.report)
        if result.rejected.num_rows:
            log.warning("corpus: %d rows rejected, listed with reasons in %s",
                        result.rejected.num_rows, stage.file("rejected.parquet"))
        return {"rows": result.table.num_rows, "report": result.report}

    def read(stage: Stage) -> CorpusResult:
        return CorpusResult(pq.read_table(stage.file("texts.parquet")), pq.read_table(stage.file("rejected.parquet")),
                            stage.manifest["report"])

    return stage.run(compute, write, read).table, stage


def check_job_inputs(cfg, table: pa.Table, fixed_k: bool = True) -> None:
    """What a job (``cfg``: a JobConfig) needs of the corpus, checked before any embedding.

    K must not exceed the kept rows (when ``fixed_k``: the method does not choose K itself), and the
    ground-truth column must be in the header of every file it is read from; only headers are read here.
    """
    n = table.num_rows
    k_max = cfg.clustering.k_range(n)[1]
    if cfg.clustering.auto_k and k_max >= n:
        raise CorpusError(
            f"clustering.n_clusters=auto with k_max={k_max} but the corpus has only {n} texts "
            f"after cleaning (report in corpus/manifest.json); set clustering.k_max below {n} (0: half the texts)")
    if cfg.clustering.auto_k and n <= cfg.reduce.n_neighbors:  # the estimate reduces with UMAP (pipeline.choose_k)
        raise CorpusError(
            f"clustering.n_clusters=auto needs more than reduce.n_neighbors={cfg.reduce.n_neighbors} texts to estimate "
            f"K, but the corpus has {n} after cleaning; set clustering.n_clusters to a number")
    if fixed_k and not cfg.clustering.auto_k and cfg.clustering.n_clusters > n:
        raise CorpusError(
            f"clustering.n_clusters={cfg.clustering.n_clusters} but the corpus has only {n} texts after "
            f"cleaning (report in corpus/manifest.json); set clustering.n_clusters to at most {n}"
        )
    ev = cfg.evaluation
    if not ev.label_column:
        return
    path = ev.labels_path or cfg.corpus.path
    if not path:
        raise CorpusError(f"evaluation.label_column={ev.label_column!r} but no file to read it from: set "
                          "evaluation.labels_path (the texts were passed to fit, so corpus.path is empty)")
    files, fmt, _ = shard_files(Path(path), "auto" if ev.labels_path else cfg.corpus.format)
    for file in files:
        columns = file_columns(file, fmt, cfg.corpus.encoding)
        if ev.label_column not in columns:
            raise CorpusError(
                f"{file}: ground-truth column {ev.label_column!r} not found; the file has columns {columns}. "
                "Set evaluation.label_column to the column of true labels, or to '' to skip evaluation."
            )
