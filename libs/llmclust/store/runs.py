"""The run directory: one folder per job, one sub-folder per stage, resumable.

Layout::

    <run_dir>/
      <stage>/manifest.json          written last: fingerprint, rows, seconds, outputs
      <stage>/*.parquet | *.json     the stage's outputs
      <stage>/parts/                 checkpointed parts of a long stage (see llmclust.store.parts)
      assignments.parquet, clusters.parquet, config.yaml    the published result ...
      result.json                    ... and its record, written last, with their checksums

A stage is *done* when its manifest exists and its fingerprint (a hash of the config that
shaped it and of its inputs' fingerprints) matches; a rerun then skips it. Every stage follows
one pattern, :meth:`Stage.run`: reuse the stored output when done, else compute it, write it,
finish, and hand the computed value forward in memory (it is never read back). Outputs are
written to a temporary name and renamed, so a kill never leaves a half-written file that
looks finished; a finished stage whose outputs turn out damaged is computed again, with a
warning. Long stages write parts; a resumed stage keeps the intact parts it already wrote
for the same fingerprint.

A run is *finished* when ``result.json`` exists and every file it lists has the sha256 it
records (:meth:`RunDir.read_result`). :meth:`RunDir.publish` moves the final files in and
writes ``result.json`` last, so a job killed while publishing over an earlier run leaves
either that earlier run whole or no finished run, never a mix.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import resource
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

log = logging.getLogger(__name__)

T = TypeVar("T")

MANIFEST = "manifest.json"
RESULT = "result.json"


class DamagedOutput(RuntimeError):
    """A stored output is missing, unreadable or not what was written."""


class RunIncomplete(FileNotFoundError):
    """The folder holds no finished run: no result.json, or files that do not match it."""


def peak_rss_mb() -> int:
    """The peak resident memory of this process so far, in MB (Linux and macOS report other units)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


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

    def run(self, compute: Callable[[], T], write: Callable[["Stage", T], dict],
            read: Callable[["Stage"], T]) -> T:
        """``read(self)`` when done; else ``compute()``, ``write(self, value)`` -> manifest fields
        (``rows`` and any counts), finish, and return the computed value itself.

        A done stage whose outputs cannot be read back (damaged parts, a truncated or deleted
        file) is computed again, with a warning, instead of failing every rerun.
        """
        if self.done:
            try:
                return read(self)
            except (DamagedOutput, pa.ArrowInvalid, FileNotFoundError) as err:
                log.warning("stage %s was finished but its outputs are damaged (%s): computing it again",
                            self.name, err)
                (self.path / MANIFEST).unlink()
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
            "driver_peak_rss_mb": peak_rss_mb(),  # this process's peak so far: which stage raised it
            "outputs": sorted(p.name for p in self.path.iterdir() if p.name != MANIFEST),
            **extra,
        }
        write_json(self.path / MANIFEST, manifest)
        if extra.get("startup_s") is not None:  # actors or engines started, models loaded: the fixed cost
            log.info("stage %s done: %d rows in %.1f s (start-up %.1f s) -> %s", self.name, rows, manifest["seconds"],
                     extra["startup_s"], self.path)
        else:
            log.info("stage %s done: %d rows in %.1f s -> %s", self.name, rows, manifest["seconds"], self.path)
        return manifest


class RunDir:
    """A job's run directory. ``stage(name, *config)`` returns a :class:`Stage` to run or skip."""

    def startup_seconds(self) -> dict[str, float]:
        """Each finished stage's start-up (actors, engines, model loads) where it recorded one."""
        manifests = (json.loads(p.read_text()) for p in sorted(self.path.glob(f"*/{MANIFEST}")))
        return {m["stage"]: m["startup_s"] for m in manifests if m.get("startup_s") is not None}

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
        if stage.done:
            log.info("stage %s: finished earlier, reused (%s)", name, stage.path)
        else:
            log.info("stage %s started", name, extra=TRANSIENT)
        return stage

    def staging(self) -> Path:
        """An empty folder inside the run to write the final files into before :meth:`publish`."""
        folder = self.path / ".publishing"
        shutil.rmtree(folder, ignore_errors=True)  # left by a job killed while writing them
        folder.mkdir()
        return folder

    def publish(self, staged: Path, **result: Any) -> Path:
        """Move the files of ``staged`` into the run, then write result.json with their sha256.

        The earlier result.json goes first: a kill among the moves leaves no finished run
        (rerun the job to publish again; every stage is reused), never a result.json beside
        files it does not describe.
        """
        files = {p.name: sha256_file(p) for p in sorted(staged.iterdir())}
        (self.path / RESULT).unlink(missing_ok=True)
        for name in files:
            os.replace(staged / name, self.path / name)
        staged.rmdir()
        file = self.path / RESULT
        write_json(file, {**result, "files": files})
        return file

    def read_result(self) -> dict:
        """result.json of a finished run, after checking every file it lists (else RunIncomplete)."""
        file = self.path / RESULT
        if not file.exists():
            raise RunIncomplete(
                f"{file} not found: {self.path} is not a finished run. Run a job "
                "(e.g. python cluster_jobs/cotrain.py --config ray_configs/local.yaml) to completion first."
            )
        result = json.loads(file.read_text())
        if "files" not in result:
            log.warning("%s lists no checksums (written by an older llmclust): its files are not verified", file)
        for name, digest in result.get("files", {}).items():
            if not (self.path / name).exists() or sha256_file(self.path / name) != digest:
                raise RunIncomplete(
                    f"{self.path / name} is missing or not the file {file} describes: the run was changed "
                    "after it finished, or its job was killed while publishing. Rerun the job to publish it again."
                )
        return result


# ``extra=`` of a log line that a later line repeats (a progress line, a stage's start line): on a
# terminal the console rewrites it in place; elsewhere (job.log, `ray job logs`) it is an ordinary line
TRANSIENT = {"progress": True}


class Progress:
    """Logs rows (or other ``unit``) done / total, rate and ETA at most every ``every`` seconds."""

    def __init__(self, what: str, total: int, every: float = 5.0, unit: str = "rows"):
        self.what, self.total, self.every, self.unit = what, total, every, unit
        self.done = 0
        self.start = self.last = time.time()

    def update(self, rows: int) -> None:
        self.done += rows
        now = time.time()
        if now - self.last >= self.every or self.done >= self.total:
            self.last = now
            rate = self.done / max(now - self.start, 1e-9)
            eta = (self.total - self.done) / rate if rate > 0 else float("inf")
            log.info("%s: %d/%d %s, %.1f %s/s, ETA %.0f s", self.what, self.done, self.total, self.unit, rate,
                     self.unit, eta, extra=TRANSIENT)
