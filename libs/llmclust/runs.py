"""The run directory: one folder per job, one sub-folder per stage, resumable.

Layout::

    <run_dir>/
      config.yaml                    resolved config of the last invocation
      <stage>/manifest.json          written last: fingerprint, rows, seconds, outputs
      <stage>/*.parquet | *.json     the stage's outputs
      <stage>/parts/part-00000.parquet   checkpointed chunks of a long stage
      result.json                    what serving needs: embedder, centroids, assignments

A stage is *done* when its manifest exists and its fingerprint (a hash of the config that
shaped it and of its inputs' fingerprints) matches; a rerun then skips it. Every stage follows
one pattern, :meth:`Stage.run`: reuse the stored output when done, else compute it, write it,
finish, and hand the computed value forward in memory (it is never read back). Outputs are
written to a temporary name and renamed, so a kill never leaves a half-written file that
looks finished. Long stages write parts; a resumed stage keeps the parts it already wrote
for the same fingerprint.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from llmclust import schema

log = logging.getLogger(__name__)

T = TypeVar("T")

MANIFEST = "manifest.json"
PROGRESS = "progress.json"


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)


def write_table(path: Path, table: pa.Table) -> None:
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


@dataclass
class Stage:
    """A stage's folder and the fingerprint its outputs must match."""

    name: str
    path: Path
    fingerprint: str
    started: float = field(default_factory=time.time)

    @classmethod
    def finished(cls, path: Path) -> "Stage":
        """The finished stage stored in ``path`` (to read its outputs back in reports)."""
        file = Path(path) / MANIFEST
        if not file.exists():
            raise FileNotFoundError(f"{path} holds no finished stage (no {MANIFEST}); run the job that writes it first")
        return cls(Path(path).name, Path(path), json.loads(file.read_text())["fingerprint"])

    @property
    def manifest(self) -> dict | None:
        file = self.path / MANIFEST
        return json.loads(file.read_text()) if file.exists() else None

    @property
    def done(self) -> bool:
        m = self.manifest
        return m is not None and m.get("fingerprint") == self.fingerprint

    def file(self, name: str) -> Path:
        return self.path / name

    def parts(self) -> "PartWriter":
        return PartWriter(self.path / "parts", self.fingerprint)

    def run(self, compute: Callable[[], T], write: Callable[["Stage", T], dict],
            read: Callable[["Stage"], T]) -> T:
        """``read(self)`` when done; else ``compute()``, ``write(self, value)`` -> manifest fields
        (``rows`` and any counts), finish, and return the computed value itself."""
        if self.done:
            return read(self)
        value = compute()
        self.finish(**write(self, value))
        return value

    def read_json(self, name: str) -> Any:
        return json.loads(self.file(name).read_text())

    def finish(self, rows: int, **extra: Any) -> dict:
        """Record the stage as done; the manifest is the last file written."""
        manifest = {
            "stage": self.name,
            "fingerprint": self.fingerprint,
            "rows": int(rows),
            "seconds": round(time.time() - self.started, 3),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "outputs": sorted(p.name for p in self.path.iterdir() if p.name != MANIFEST),
            **extra,
        }
        write_json(self.path / MANIFEST, manifest)
        log.info("stage %s done: %d rows in %.1f s -> %s", self.name, rows, manifest["seconds"], self.path)
        return manifest


class PartWriter:
    """Numbered Parquet parts of a long stage; parts of another fingerprint are discarded."""

    def __init__(self, path: Path, fingerprint: str):
        self.path = path
        marker = path / PROGRESS
        if path.exists():
            previous = json.loads(marker.read_text()).get("fingerprint") if marker.exists() else None
            if previous != fingerprint:
                shutil.rmtree(path)
        path.mkdir(parents=True, exist_ok=True)
        write_json(marker, {"fingerprint": fingerprint})

    def _name(self, index: int) -> Path:
        return self.path / f"part-{index:05d}.parquet"

    def has(self, index: int) -> bool:
        return self._name(index).exists()

    def write(self, index: int, table: pa.Table) -> None:
        write_table(self._name(index), table)

    def read(self, index: int) -> pa.Table:
        return pq.read_table(self._name(index))

    def count(self) -> int:
        return len(list(self.path.glob("part-*.parquet")))

    def read_all(self, count: int) -> pa.Table:
        return pa.concat_tables([self.read(i) for i in range(count)])

    def read_vectors(self, count: int, column: str = schema.EMBEDDING) -> np.ndarray:
        """The (n, d) matrix stored across the first ``count`` parts."""
        return np.concatenate([schema.from_fixed_list(self.read(i).column(column)) for i in range(count)])


class RunDir:
    """A job's run directory. ``stage(name, *config)`` returns a :class:`Stage` to run or skip."""

    def __init__(self, path: str | Path):
        # absolute: stage paths are handed to Ray workers, whose working directory is not ours
        self.path = Path(path).resolve()
        self.path.mkdir(parents=True, exist_ok=True)

    def stage(self, name: str, *fingerprint_parts: Any) -> Stage:
        from llmclust.config import fingerprint

        stage = Stage(name, self.path / name, fingerprint(name, *fingerprint_parts))
        if stage.path.exists() and not stage.done and stage.manifest is not None:
            # finished under another config: its outputs are stale, parts included
            shutil.rmtree(stage.path)
        stage.path.mkdir(parents=True, exist_ok=True)
        return stage

    def save_config(self, cfg_dict: dict) -> Path:
        file = self.path / "config.yaml"
        tmp = file.with_name("config.yaml.tmp")
        tmp.write_text(yaml.safe_dump(cfg_dict, sort_keys=False))
        os.replace(tmp, file)
        return file

    def write_result(self, **result: Any) -> Path:
        file = self.path / "result.json"
        write_json(file, result)
        return file

    def read_result(self) -> dict:
        file = self.path / "result.json"
        if not file.exists():
            raise FileNotFoundError(
                f"{file} not found: {self.path} is not a finished run. Run a job "
                "(e.g. python cluster_jobs/cotrain.py --config ray_configs/local.yaml) to completion first."
            )
        return json.loads(file.read_text())


class Progress:
    """Logs rows done / total, rate and ETA at most every ``every`` seconds."""

    def __init__(self, what: str, total: int, every: float = 10.0):
        self.what, self.total, self.every = what, total, every
        self.done = 0
        self.start = self.last = time.time()

    def update(self, rows: int) -> None:
        self.done += rows
        now = time.time()
        if now - self.last >= self.every or self.done >= self.total:
            self.last = now
            rate = self.done / max(now - self.start, 1e-9)
            eta = (self.total - self.done) / rate if rate > 0 else float("inf")
            log.info("%s: %d/%d rows, %.1f rows/s, ETA %.0f s", self.what, self.done, self.total, rate, eta)


def iter_chunks(n: int, size: int) -> Iterator[tuple[int, int, int]]:
    """(index, start, stop) over ``range(n)`` in chunks of ``size``."""
    for index, start in enumerate(range(0, n, size)):
        yield index, start, min(start + size, n)
