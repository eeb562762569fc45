"""Checkpointed parts of a long stage: which rows each part holds, and a checksum to trust it.

A long stage (embedding) writes its output in parts under ``<stage>/parts/``; ``index.json``
there records the stage fingerprint and, for every part file, the rows ``[start, stop)`` it
holds and the sha256 of its bytes. A part's ``row`` column must equal its range. So:

* a resumed stage keeps the parts that are intact and computes only the rows none holds,
  whatever ``chunk_rows`` the killed run used (throughput knobs change how the work is split,
  never what is stored);
* a part that is truncated, replaced, unreadable or missing is dropped with a warning and its
  rows are computed again; nothing damaged is ever read as if it were fine;
* :meth:`PartStore.read` hands back every row exactly once, or raises :class:`DamagedOutput`
  (which :meth:`Stage.run` answers by recomputing the stage, reusing the intact parts);
* :meth:`PartStore.check_cover` is the check a stage makes before it finishes: the index on
  disk gives every row to exactly one part.

Example::

    run = RunDir("/tmp/parts-demo")
    parts = PartStore(run.stage("embed", {"model": "m"}))
    parts.write(0, 2, pa.table({"row": [0, 1], "x": [1.0, 2.0]}))
    parts.missing(5, size=2)                 # [(2, 4), (4, 5)]: the rows still to compute
    parts.write(2, 5, pa.table({"row": [2, 3, 4], "x": [3.0, 4.0, 5.0]}))
    parts.check_cover(5)
    parts.read(5).column("x").to_pylist()    # [1.0, 2.0, 3.0, 4.0, 5.0]
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from llmclust import schema
from llmclust.store.runs import DamagedOutput, Stage, sha256_file, write_json

log = logging.getLogger(__name__)

INDEX = "index.json"
ROW_GROUP_ROWS = 32_768  # rows per Parquet row group: what a streaming reader holds at once


class PartStore:
    """The parts of one stage (``<stage>/parts``); parts of another fingerprint are discarded."""

    def __init__(self, stage: Stage, read_only: bool = False):
        """``read_only``: for readers of a finished run (reports, benchmarks), which must never
        delete anything; parts they cannot trust raise :class:`DamagedOutput` instead."""
        self.stage, self.path = stage.name, stage.path / "parts"
        self.fingerprint, self.read_only = stage.fingerprint, read_only
        index = self._read_index(self.path / INDEX)
        if read_only:
            if index.get("fingerprint") != stage.fingerprint:
                raise DamagedOutput(f"{self.path}: no {INDEX} for this stage (a run written by an older llmclust?); "
                                    "rerun the job that wrote it to rebuild its parts")
            self.index = index["parts"]
            return
        if index.get("fingerprint") != stage.fingerprint and self.path.exists():
            if not index and any(self.path.iterdir()):
                log.warning("stage %s: %s has no readable %s, so its parts cannot be trusted: they are "
                            "discarded and their rows computed again", stage.name, self.path, INDEX)
            shutil.rmtree(self.path)  # else written under another config
            index = {}
        self.path.mkdir(parents=True, exist_ok=True)
        self.index: dict[str, dict] = index.get("parts", {})  # file -> {start, stop, sha256}
        for file in self.path.iterdir():
            # a kill between writing a part and indexing it leaves a file the index does not list
            if file.name != INDEX and file.name not in self.index:
                file.unlink()
        if not index:
            self._save()

    @staticmethod
    def _read_index(file: Path) -> dict:
        try:
            return json.loads(file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def _save(self) -> None:
        write_json(self.path / INDEX, {"fingerprint": self.fingerprint, "parts": self.index})

    def _range(self, name: str) -> tuple[int, int]:
        return self.index[name]["start"], self.index[name]["stop"]

    def __len__(self) -> int:
        return len(self.index)

    def write(self, start: int, stop: int, table: pa.Table) -> None:
        """Store rows ``[start, stop)``; ``table``'s ``row`` column must be exactly that range."""
        if not np.array_equal(table.column(schema.ROW).to_numpy(), np.arange(start, stop)):
            raise ValueError(f"part for rows {start}-{stop} holds other rows")
        name = next(name for name in (f"part-{i:05d}.parquet" for i in itertools.count()) if name not in self.index)
        tmp = self.path / (name + ".tmp")
        pq.write_table(table, tmp, row_group_size=ROW_GROUP_ROWS)
        digest = sha256_file(tmp)
        os.replace(tmp, self.path / name)
        self.index[name] = {"start": start, "stop": stop, "sha256": digest}
        self._save()

    def _check(self, name: str) -> None:
        """DamagedOutput unless the part's file is there with its recorded checksum."""
        start, stop = self._range(name)
        file = self.path / name
        if not file.exists():
            raise DamagedOutput(f"{name} (rows {start}-{stop}) is missing")
        if sha256_file(file) != self.index[name]["sha256"]:
            raise DamagedOutput(f"{name} (rows {start}-{stop}) does not match its checksum")

    def _load(self, name: str) -> pa.Table:
        """The part's table, or DamagedOutput saying what is wrong with it."""
        start, stop = self._range(name)
        file = self.path / name
        self._check(name)
        try:
            table = pq.read_table(file)
        except (pa.ArrowInvalid, OSError) as err:
            raise DamagedOutput(f"{name} (rows {start}-{stop}) is unreadable: {err}") from None
        if not np.array_equal(table.column(schema.ROW).to_numpy(), np.arange(start, stop)):
            raise DamagedOutput(f"{name} does not hold rows {start}-{stop}")
        return table

    def intact(self, n: int) -> dict[int, int]:
        """{start: stop} of the parts that are sound and lie in ``range(n)`` without overlap
        (each is read to check it, one at a time, and not kept).

        Every other part is deleted (with a warning naming it and why), so its rows count as
        missing and are computed again.
        """
        good, dropped, covered = {}, [], 0
        for name in sorted(self.index, key=self._range):
            start, stop = self._range(name)
            try:
                if start < covered or stop > n:
                    raise DamagedOutput(f"{name} (rows {start}-{stop}) overlaps another part or lies beyond row {n}")
                self._load(name)
                good[start] = covered = stop
            except DamagedOutput as err:
                if self.read_only:
                    raise
                dropped.append(str(err))
                del self.index[name]
                (self.path / name).unlink(missing_ok=True)
        if dropped:
            self._save()
            log.warning("stage %s: dropped %d damaged part(s), their rows are computed again: %s",
                        self.stage, len(dropped), "; ".join(dropped))
        return good

    def missing(self, n: int, size: int = 0) -> list[tuple[int, int]]:
        """The rows of ``range(n)`` no part holds, as ``(start, stop)`` chunks of at most ``size`` (0: whole gaps)."""
        out, row = [], 0
        for start, stop in sorted(map(self._range, self.index)) + [(n, n)]:
            step = size or max(start - row, 1)
            out += [(a, min(a + step, start)) for a in range(row, start, step)]
            row = max(row, stop)
        return out

    def check_cover(self, n: int) -> None:
        """Raise unless the index on disk (what a rerun reads) gives each row of ``range(n)`` to exactly one part."""
        ranges = sorted((p["start"], p["stop"]) for p in self._read_index(self.path / INDEX).get("parts", {}).values())
        stops = [0] + [stop for _, stop in ranges]
        if [start for start, _ in ranges] != stops[:-1] or stops[-1] != n:
            raise DamagedOutput(f"the parts in {self.path} do not hold rows 0-{n} exactly once: {ranges}")

    def verify(self, n: int) -> None:
        """DamagedOutput unless the parts hold rows ``range(n)`` exactly once, each file intact;
        reads no table (a finished stage handed on as :class:`llmclust.store.vectors.StoredVectors`)."""
        self._raise_on_gaps(n)
        self.check_cover(n)
        for name in self.index:
            self._check(name)

    def _raise_on_gaps(self, n: int) -> None:
        gaps = self.missing(n)
        if gaps:
            raise DamagedOutput(f"rows {', '.join(f'{a}-{b}' for a, b in gaps)} are in no intact part")

    def schema(self) -> pa.Schema:
        """The columns the parts hold (read from the first part's footer)."""
        first = min(self.index, key=self._range)
        return pq.read_schema(self.path / first)

    def iter_batches(self, n: int, rows: int, columns: list[str] | None = None) -> Iterator[tuple[int, pa.RecordBatch]]:
        """``(start, batch)`` of at most ``rows`` rows (``columns``, or all), in row order, reading
        a row group at a time (memory bounded by ``rows``, not by the part size), after
        :meth:`verify` or :meth:`intact` (the checksums are not computed again per read)."""
        self.check_cover(n)
        for name in sorted(self.index, key=self._range):
            start, stop = self._range(name)
            row = start
            wanted = None if columns is None else [schema.ROW, *columns]
            try:
                for batch in pq.ParquetFile(self.path / name).iter_batches(rows, columns=wanted):
                    got = batch.column(schema.ROW)
                    if len(got) == 0 or got[0].as_py() != row or got[len(got) - 1].as_py() != row + len(got) - 1:
                        raise DamagedOutput(f"{name} does not hold rows {start}-{stop}")
                    yield row, batch
                    row += len(got)
            except (pa.ArrowInvalid, OSError) as err:
                raise DamagedOutput(f"{name} (rows {start}-{stop}) is unreadable: {err}") from None
            if row != stop:
                raise DamagedOutput(f"{name} does not hold rows {start}-{stop}")

    def read(self, n: int) -> pa.Table:
        """All ``n`` rows in order, each from exactly one intact part; else :class:`DamagedOutput`."""
        self.intact(n)
        self._raise_on_gaps(n)
        return pa.Table.from_batches([batch for _, batch in self.iter_batches(n, ROW_GROUP_ROWS)])
