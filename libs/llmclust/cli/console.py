"""What a job shows on the terminal, and the log file that gets everything else.

The terminal gets llmclust's own log lines (llmclust.store.runs logs each stage with its rows,
seconds and output folder), a single progress line that rewrites itself in place on a terminal
(records logged with ``extra=TRANSIENT``), llmclust's warnings, anyone's errors, and the
final summary (:mod:`llmclust.cli.summary`). Everything else goes to ``<run dir>/job.log``: Ray's start-up and Ray Data
INFO lines, output of Ray workers and actors, library warnings, and whatever writes straight
to file descriptor 2 (Ray's C++ core, tqdm bars of model loading). ``verbose=True`` leaves
Ray's own output and progress bars on the terminal too; job.log is written either way.

Example::

    log_file = setup_console("runs/local")          # before Ray starts
    start_ray(cfg.ray)                              # llmclust.ray_session: worker output -> job.log
    logging.getLogger("llmclust.demo").info("shown on the terminal and in job.log")
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

LOG_FILE = "job.log"
FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_terminal = None  # the terminal's stderr, once file descriptor 2 points at a job.log


class ConsoleHandler(logging.Handler):
    """Terminal lines: llmclust's records (everyone's with ``verbose``), anyone's errors.

    A record logged with ``extra=llmclust.store.runs.TRANSIENT`` (a progress line, a stage's start
    line, a figure a later line repeats) rewrites the current line on a terminal and is an
    ordinary line elsewhere (job.log, ``ray job logs``); the next ordinary line replaces it. So
    is, on a terminal, the done line of a stage that took under a second (:attr:`QUICK_S`; the
    report lists every stage).
    """

    STAGE_DONE = ("llmclust.store.runs", "stage %s done: %d rows in %.1f s -> %s")
    QUICK_S = 1.0  # a stage done faster than this flashes by on a terminal

    def transient(self, record: logging.LogRecord) -> bool:
        if getattr(record, "progress", False):
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        return ((record.name, record.msg) == self.STAGE_DONE and len(args) == 4
                and isinstance(args[2], (int, float)) and args[2] < self.QUICK_S)

    def __init__(self, stream, level: int, verbose: bool = False):
        super().__init__(level)
        self.stream, self.verbose = stream, verbose
        self.rewrite = stream.isatty()
        self.open_progress = False
        self.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))

    def wanted(self, record: logging.LogRecord) -> bool:
        return self.verbose or record.name.startswith("llmclust") or record.levelno >= logging.ERROR

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        if record.levelno >= logging.WARNING:  # the level only where it is news
            stamp, _, message = line.partition(" ")
            line = f"{stamp} {record.levelname}: {message}"
        return line

    def emit(self, record: logging.LogRecord) -> None:
        if not self.wanted(record):
            return
        try:
            line = self.format(record)
            progress = self.rewrite and record.levelno < logging.WARNING and self.transient(record)
            clear = "\r\x1b[K" if self.open_progress or progress else ""
            self.stream.write(clear + line + ("" if progress else "\n"))
            self.stream.flush()
            self.open_progress = progress
        except Exception:  # logging must never break the job
            self.handleError(record)

    def end_line(self) -> None:
        """Finish a line left open for rewriting, before others write below it (the summary)."""
        if self.open_progress:
            self.stream.write("\n")
            self.stream.flush()
            self.open_progress = False


def _divert_stderr(log_file: Path):
    """Point file descriptor 2 at ``log_file``; return a stream on the original terminal.

    Ray's C++ core, tqdm bars and native libraries write to fd 2 directly, out of reach of
    Python logging. ``sys.stderr`` is set to the returned stream, so Python-level output
    (tracebacks included) still reaches the terminal.
    """
    global _terminal
    sys.stderr.flush()
    if _terminal is None:  # once: on a second call (another job in this process) fd 2 is a log file
        _terminal = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")
    fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stderr = _terminal
    return _terminal


def _quiet_ray() -> None:
    """Ray Data progress bars and execution banners off; Ray's loggers into the root handlers."""
    from ray.data import (
        DataContext,  # importing ray installs the stderr handlers removed below
    )

    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False  # the stage's own progress line replaces the bars
    ctx.print_on_execution_start = False
    for name in ("ray", "ray.data"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            # Ray's console handlers go; its session log files (ray-data.log) stay
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                logger.removeHandler(handler)
        logger.propagate = True  # to job.log, and to the terminal only from ERROR up


def setup_console(run_dir: str | os.PathLike, level: str = "INFO", verbose: bool = False) -> Path:
    """Route logging for a job writing to ``run_dir``; returns the log file (``<run_dir>/job.log``).

    Call it before Ray starts (the run directory is created here, so checks that must leave no
    folder behind come first).
    """
    run_path = Path(run_dir).resolve()
    run_path.mkdir(parents=True, exist_ok=True)
    log_file = run_path / LOG_FILE
    terminal = sys.stderr if verbose else _divert_stderr(log_file)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(level)
    to_file = logging.FileHandler(log_file, encoding="utf-8")
    to_file.setLevel(level)  # Ray Data logs DEBUG to its own logger; those records would reach us too
    to_file.setFormatter(logging.Formatter(FILE_FORMAT))
    root.addHandler(to_file)
    root.addHandler(ConsoleHandler(terminal, logging.getLevelName(level), verbose))
    logging.captureWarnings(True)  # library warnings: job.log (the terminal with verbose)
    _quiet_libraries()
    if not verbose:
        _quiet_ray()
    logging.getLogger(__name__).info("full log: %s", log_file)
    return log_file


def setup_logging(level: str = "INFO") -> None:
    """Plain logging to stderr, for commands that keep no run directory log (serve, benchmarks)."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    _quiet_libraries()


def _quiet_libraries() -> None:
    """Library chatter that reads as a failure, out of the logs."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # faiss tries its AVX-512 builds first and logs each one missing with a ModuleNotFoundError
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
