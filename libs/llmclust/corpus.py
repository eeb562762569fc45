"""Corpus IO: read Parquet / JSONL / CSV (a file or a folder of shards), validate, clean.

Only the text column (and the id column, if named) is ever read: a ground-truth column in
the same file stays on disk until :mod:`llmclust.evaluation` is asked for it.

Cleaning policies are explicit and every row they remove is returned in a ``rejected``
table with the reason, so nothing disappears silently.

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
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from llmclust import schema
from llmclust.config import expect, expect_choice
from llmclust.runs import RunDir, Stage, write_table

log = logging.getLogger(__name__)

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv"}


class CorpusError(ValueError):
    """The corpus cannot be read or has no usable text."""


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

    def __post_init__(self):
        expect_choice("format", self.format, ["auto", *sorted(set(FORMATS.values()))])
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


def shard_files(path: Path, fmt: str) -> tuple[list[Path], str]:
    """The files to read and their format; a folder contributes every file of one format."""
    if not path.exists():
        raise CorpusError(
            f"corpus path {str(path)!r} does not exist; set corpus.path to a .parquet, .jsonl or "
            ".csv file, or to a folder of such shards"
        )
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    if fmt == "auto":
        found = sorted({FORMATS[p.suffix.lower()] for p in files if p.suffix.lower() in FORMATS})
        if len(found) != 1:
            raise CorpusError(
                f"corpus path {str(path)!r}: found formats {found or 'none'} by file extension; "
                f"expected exactly one of {sorted(set(FORMATS.values()))}. Set corpus.format, or "
                "keep one format per folder."
            )
        fmt = found[0]
    files = [p for p in files if FORMATS.get(p.suffix.lower()) == fmt or not path.is_dir()]
    if not files:
        raise CorpusError(f"corpus folder {str(path)!r} holds no {fmt} files")
    return files, fmt


def _read_file(file: Path, fmt: str, columns: list[str]) -> pa.Table:
    try:
        if fmt == "parquet":
            available = pq.read_schema(file).names
            _check_columns(file, available, columns)
            return pq.read_table(file, columns=columns)
        if fmt == "csv":
            # every column as string: ids like "007" must survive, and only named columns are read
            opts = pacsv.ConvertOptions(include_columns=columns, column_types={c: pa.string() for c in columns})
            header = pacsv.open_csv(file).schema.names
            _check_columns(file, header, columns)
            return pacsv.read_csv(file, convert_options=opts)
        table = pajson.read_json(file)
        _check_columns(file, table.column_names, columns)
        return table.select(columns)
    except (pa.ArrowInvalid, OSError) as err:
        raise CorpusError(f"could not read {file} as {fmt}: {err}") from err


def _check_columns(file: Path, available: list[str], columns: list[str]) -> None:
    missing = [c for c in columns if c not in available]
    if missing:
        raise CorpusError(
            f"{file}: column(s) {missing} not found; the file has columns {available}. "
            "Set corpus.text_column (and corpus.id_column) to the right names."
        )


def read_columns(path: str, fmt: str, columns: list[str], limit: int = 0) -> pa.Table:
    """Read only ``columns`` of every shard under ``path``, in file order."""
    files, fmt = shard_files(Path(path), fmt)
    tables, rows = [], 0
    for file in files:
        t = _read_file(file, fmt, columns)
        tables.append(t)
        rows += t.num_rows
        if limit and rows >= limit:
            break
    table = pa.concat_tables(tables, promote_options="permissive")
    return table.slice(0, limit) if limit else table


def read_raw(cfg: CorpusConfig) -> pa.Table:
    """Read the text (and id) columns of the corpus and check their type and count."""
    columns = [cfg.text_column] + ([cfg.id_column] if cfg.id_column else [])
    table = read_columns(cfg.path, cfg.format, columns, cfg.limit)
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
        raise CorpusError(
            f"column {cfg.id_column!r} has repeated ids among kept rows; ids must be unique. "
            "Fix the ids, or leave corpus.id_column empty to use row numbers."
        )
    return CorpusResult(table, rejected, report)


def _duplicate_count(texts) -> int:
    return len(texts) - pc.count_distinct(texts).as_py()


def load_corpus(cfg: CorpusConfig) -> CorpusResult:
    return clean(read_raw(cfg), cfg)


def _source_fingerprint(cfg: CorpusConfig, texts: list[str] | None) -> list:
    if texts is not None:
        return [hashlib.sha256("\x00".join(texts).encode()).hexdigest()]
    files, _ = shard_files(Path(cfg.path), cfg.format)
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
