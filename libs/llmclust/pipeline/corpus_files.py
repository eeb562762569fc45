"""Reading corpus files: Parquet / JSONL / CSV shards, only the named columns.

Errors name the file, the line where there is one, and the option to change
(``corpus.encoding`` for text that is not UTF-8, ``corpus.format`` for a folder of mixed
shards). :mod:`llmclust.pipeline.corpus` cleans what is read here; :mod:`llmclust.cli.preflight` checks
headers with :func:`file_columns` before any work starts.

Example::

    files, fmt, skipped = shard_files(Path("../shared/data/banking77/"), "csv")
    read_columns("../shared/data/banking77/test.csv", "auto", ["text"], limit=5).num_rows   # 5
"""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv"}


class CorpusError(ValueError):
    """The corpus cannot be read or has no usable text."""


def known_encoding(name: str) -> bool:
    try:
        return bool(codecs.lookup(name))
    except LookupError:
        return False


def shard_files(path: Path, fmt: str) -> tuple[list[Path], str, list[Path]]:
    """(files to read, their format, files of the folder that are skipped: another format)."""
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
    read = [p for p in files if FORMATS.get(p.suffix.lower()) == fmt or not path.is_dir()]
    if not read:
        raise CorpusError(f"corpus folder {str(path)!r} holds no {fmt} files")
    return read, fmt, sorted(set(files) - set(read))


def _encoding_error(file: Path, encoding: str) -> CorpusError | None:
    """The first byte of ``file`` that is not ``encoding`` text, as an error naming its line; None if none."""
    data = file.read_bytes()
    try:
        data.decode(encoding)
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        return CorpusError(f"{file} line {line}: byte {data[err.start]:#04x} is not valid {encoding} text; "
                           "set corpus.encoding to the file's encoding (e.g. latin-1, cp1252)")
    return None


JSON_KINDS = {str: "string", bool: "boolean", int: "number", float: "number", list: "array", dict: "object"}


def _jsonl_error(file: Path, text: str) -> CorpusError | None:
    """The first line (1-based) that is not a JSON object or changes a column's type; None if none."""
    kinds: dict[str, tuple[str, int]] = {}
    for number, line in enumerate(text.split("\n"), 1):
        try:
            row = json.loads(line) if line.strip() else {}
        except json.JSONDecodeError as err:
            return CorpusError(f"{file} line {number}: not valid JSON ({err.msg}, column {err.colno})")
        if not isinstance(row, dict):
            return CorpusError(f"{file} line {number}: expected a JSON object per line, got {str(row)[:60]}")
        for key, kind in ((k, JSON_KINDS.get(type(v))) for k, v in row.items() if v is not None):
            first, since = kinds.setdefault(key, (kind, number))
            if kind != first:
                return CorpusError(f"{file} line {number}: {key!r} is a {kind} here but a {first} on line {since}")
    return None


def _read_jsonl(file: Path, encoding: str) -> pa.Table:
    try:
        text = file.read_bytes().decode(encoding)  # pyarrow would turn bad bytes into U+FFFD silently
    except UnicodeDecodeError:
        raise _encoding_error(file, encoding) from None
    try:
        return pajson.read_json(pa.BufferReader(text.encode()))
    except pa.ArrowInvalid as err:  # its "row N" counts from 0 and skips blank lines: name the line
        raise _jsonl_error(file, text) or CorpusError(f"could not read {file} as jsonl: {err}") from None


def _csv_options(encoding: str) -> pacsv.ReadOptions:
    # pyarrow reads UTF-8 natively; any other encoding is transcoded while reading
    name = codecs.lookup(encoding).name
    return pacsv.ReadOptions() if name == "utf-8" else pacsv.ReadOptions(encoding=name)


def _unreadable(file: Path, fmt: str, encoding: str, err: Exception) -> CorpusError:
    """The error for a file pyarrow could not read: the undecodable line when that is the cause."""
    bad_text = (isinstance(err, UnicodeDecodeError) or "UTF8" in str(err)) and _encoding_error(file, encoding)
    return bad_text or CorpusError(f"could not read {file} as {fmt}: {err}")


def file_columns(file: Path, fmt: str, encoding: str = "utf-8") -> list[str]:
    """The column names of one shard (for JSONL: of all its rows)."""
    try:
        if fmt == "parquet":
            return pq.read_schema(file).names
        if fmt == "csv":
            return pacsv.open_csv(file, read_options=_csv_options(encoding)).schema.names
        return _read_jsonl(file, encoding).column_names
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as err:
        raise _unreadable(file, fmt, encoding, err) from err


def _read_file(file: Path, fmt: str, columns: list[str], encoding: str) -> pa.Table:
    if fmt == "jsonl":  # parsed once: its columns are known only after reading it
        table = _read_jsonl(file, encoding)
        _check_columns(file, table.column_names, columns)
        return table.select(columns)
    _check_columns(file, file_columns(file, fmt, encoding), columns)
    try:
        if fmt == "parquet":
            return pq.read_table(file, columns=columns)
        # every column as string: ids like "007" must survive, and only named columns are read
        opts = pacsv.ConvertOptions(include_columns=columns, column_types={c: pa.string() for c in columns})
        return pacsv.read_csv(file, read_options=_csv_options(encoding), convert_options=opts)
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as err:
        raise _unreadable(file, fmt, encoding, err) from err


def _check_columns(file: Path, available: list[str], columns: list[str]) -> None:
    missing = [c for c in columns if c not in available]
    if missing:
        raise CorpusError(
            f"{file}: column(s) {missing} not found; the file has columns {available}. "
            "Set corpus.text_column (and corpus.id_column) to the right names."
        )


def read_columns(path: str, fmt: str, columns: list[str], limit: int = 0, encoding: str = "utf-8") -> pa.Table:
    """Read only ``columns`` of every shard under ``path``, in file order."""
    files, fmt, _ = shard_files(Path(path), fmt)
    tables, rows = [], 0
    for file in files:
        t = _read_file(file, fmt, columns, encoding)
        tables.append(t)
        rows += t.num_rows
        if limit and rows >= limit:
            break
    table = pa.concat_tables(tables, promote_options="permissive")
    return table.slice(0, limit) if limit else table
