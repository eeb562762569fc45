"""What a job shows on the terminal, and the log file that gets everything else.

The terminal gets llmclust's own log lines (llmclust.runs logs each stage with its rows,
seconds and output folder), a single progress line that rewrites itself in place on a terminal
(records logged with ``extra={"progress": True}``), llmclust's warnings, anyone's errors, and
the final summary. Everything else goes to ``<run dir>/job.log``: Ray's start-up and Ray Data
INFO lines, output of Ray workers and actors, library warnings, and whatever writes straight
to file descriptor 2 (Ray's C++ core, tqdm bars of model loading). ``verbose=True`` leaves
Ray's own output and progress bars on the terminal too; job.log is written either way.

Example::

    log_file = setup_console("runs/local")          # before Ray starts
    start_ray(cfg.ray)                              # llmclust.job.init_ray, worker output -> job.log
    logging.getLogger("llmclust.demo").info("shown on the terminal and in job.log")
    print_summary(model)                            # after fit
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

LOG_FILE = "job.log"
FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Ray worker and actor output, re-logged line by line: below ERROR, so job.log only
workers_log = logging.getLogger("ray_workers")
_terminal = None  # the terminal's stderr, once file descriptor 2 points at a job.log
_ray_print_to_stdstream = None  # Ray's own, while start_ray has replaced it


class ConsoleHandler(logging.Handler):
    """Terminal lines: llmclust's records (everyone's with ``verbose``), anyone's errors.

    A record with ``extra={"progress": True}`` rewrites the current line on a terminal (and is
    an ordinary line elsewhere, e.g. in ``ray job logs``); the next ordinary line replaces it.
    So is, on a terminal, a line whose facts a later line repeats (:attr:`TRANSIENT`): a
    stage's start line (its done line follows, with rows, seconds and output folder), an embed
    chunk's time, co-training's per-iteration numbers (the closing table holds them), and the
    done line of a stage that took under a second (:attr:`QUICK_S`; the report lists every
    stage). They stay in job.log, and are ordinary lines where the output is not a terminal.
    """

    # (logger, message template) of records that the next line replaces on a terminal
    TRANSIENT = frozenset({
        ("llmclust.runs", "stage %s started"),
        ("llmclust.embedding", "embed chunk %d/%d (rows %d-%d) in %.1f s"),
        ("llmclust.evaluation", "evaluation (mean over %d seeds): ACC %.2f ± %.2f, NMI %.2f ± %.2f, ARI %.2f"),
        ("llmclust.llm.engines", "llm: started %d engine actor(s) for %s"),
        ("llmclust.training.embedder_trainer", "training the embedder: %d tuples, %d steps of %d on %d worker(s)"),
        ("llmclust.methods.cotrain.loop", "iteration %d preference (%s): %s"),
        ("llmclust.methods.cotrain.loop", "co-training iteration %d: %s"),
    })
    STAGE_DONE = ("llmclust.runs", "stage %s done: %d rows in %.1f s -> %s")
    QUICK_S = 1.0  # a stage done faster than this flashes by on a terminal

    def transient(self, record: logging.LogRecord) -> bool:
        if getattr(record, "progress", False) or (record.name, record.msg) in self.TRANSIENT:
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
    from ray.data import DataContext  # importing ray installs the stderr handlers removed below

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
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not verbose:
        _quiet_ray()
    logging.getLogger(__name__).info("full log: %s", log_file)
    return log_file


def _log_worker_lines(data: dict) -> None:
    who = data.get("actor_name") or data.get("task_name") or "worker"
    for line in data.get("lines", []):
        workers_log.info("(%s pid=%s) %s", who, data.get("pid"), line)


def _log_cluster_messages(data: dict, ignore_prefix: bool = False) -> None:
    """Messages Ray's raylet and GCS push to the driver, into job.log (see :func:`start_ray`)."""
    for line in data.get("lines", []):
        workers_log.warning("(%s) %s", data.get("pid") or "raylet", line)


def start_ray(ray_cfg, verbose: bool = False) -> None:
    """Start or join Ray (:func:`llmclust.job.init_ray`); worker output goes to job.log unless ``verbose``.

    Two streams reach a Ray driver's terminal besides Python logging, and both go to job.log:
    the output of workers and actors (the log monitor), and the messages the raylet pushes to the
    driver: "A worker died or was killed while executing a task by an unexpected system error"
    when a worker crashes (Ray then retries the task, and the job usually goes on), "N worker
    processes have been started" on a loaded machine. A job that really fails says so with its
    own exception and the path of job.log.
    """
    from llmclust.job import init_ray

    init_ray(ray_cfg)
    import ray._private.worker as ray_worker

    global _ray_print_to_stdstream
    if _ray_print_to_stdstream is None:
        _ray_print_to_stdstream = getattr(ray_worker, "print_to_stdstream", None)
    if verbose and _ray_print_to_stdstream is not None:  # Ray's own printing back, after a quiet job
        ray_worker.print_to_stdstream = _ray_print_to_stdstream
    if not verbose:
        # ray 2.60 (pinned) prints worker output through this dispatcher's "ray_print_logs"
        # handler; swapping it keeps the lines, in job.log, instead of dropping them with
        # ray.init(log_to_driver=False)
        from ray._private.ray_logging import global_worker_stdstream_dispatcher as dispatcher

        dispatcher.remove_handler("ray_print_logs")
        dispatcher.remove_handler("llmclust_job_log")  # a second job in the same process
        dispatcher.add_handler("llmclust_job_log", _log_worker_lines)
        # the raylet's pushed messages bypass the dispatcher: ray_listen_error_messages (a driver
        # thread) hands each to ray._private.worker.print_to_stdstream, which prints to stdout
        if _ray_print_to_stdstream is not None:
            ray_worker.print_to_stdstream = _log_cluster_messages


def _fmt(value, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def iteration_table(rows: list[dict]) -> str:
    """Co-training, one line per iteration: ACC, NMI, DPO loss start -> end, pairs, seconds."""
    lines = [f"{'iter':>4}  {'ACC':>6}  {'NMI':>6}  {'DPO loss':>15}  {'pairs':>6}  {'seconds':>8}"]
    for r in rows:
        dpo = (f"{_fmt(r.get('dpo_loss_start'), '.4f')} -> {_fmt(r.get('dpo_loss_end'), '.4f')}"
               if "dpo_loss_start" in r else "-")
        lines.append(f"{r['iteration']:>4}  {_fmt(r['acc']):>6}  {_fmt(r['nmi']):>6}  {dpo:>15}  "
                     f"{r.get('pairs', '-'):>6}  {r['seconds']:>8.1f}")
    return "\n".join(lines)


def _method_lines(model) -> list[str]:
    """What the method adds to the summary: its own facts, then each LLM audit's decision."""
    audits = [f"LLM audit, {a['decision']}" for a in (getattr(model, "llm_audit_", None) or {}).values()]
    if model.method == "lumi":
        r = model.lumi_report_
        return [f"{r['distinct_labels']} distinct pseudo-labels, {r.get('labels_per_text_mean', 1)} per text", *audits]
    if model.method == "clusterllm":
        g = getattr(model, "granularity_", None)
        chosen = [f"chosen K {g['k']} from {g['answered']} answered pairs; "
                  f"classical estimates {g['classical']}"] if g else []
        return chosen + [f"embedder: {model.embedder_path_}", *audits]
    if model.method == "cotrain":
        return [iteration_table(model.iterations_),
                f"embedder {model.embedder_path_}, adapter {model.adapter_path_ or 'none'}", *audits]
    return audits


BASELINE_ROW = "baseline (same texts, same K)"


def metrics_table(method: str, metrics: dict, baseline: dict | None) -> str:
    """ACC / NMI / ARI (mean ± std over KMeans seeds) of the method, and of the baseline beside it."""
    rows = [(method, metrics)] + ([(BASELINE_ROW, baseline)] if baseline else [])
    width = max(len(name) for name, _ in rows)

    def cell(m: dict, key: str) -> str:
        return f"{m[f'{key}_mean']:6.2f} ± {m.get(f'{key}_std', 0.0):<5.2f}"

    lines = [f"{'':<{width}}  {'ACC':^14}  {'NMI':^14}  {'ARI':^14}".rstrip()]
    lines += [f"{name:<{width}}  {cell(m, 'acc')}  {cell(m, 'nmi')}  {cell(m, 'ari')}".rstrip() for name, m in rows]
    return "\n".join(lines)


def print_summary(model) -> None:
    """A fitted job's closing lines on stdout: the method's own, sizes, metrics, where outputs went.

    With ground truth the metrics are a table: the method, and (``evaluation.compare_baseline``)
    the untrained embedder + KMeans on the same texts with the same K beside it.
    """
    for handler in logging.getLogger().handlers:  # the last log line may be open for rewriting
        if isinstance(handler, ConsoleHandler):
            handler.end_line()
    for line in _method_lines(model):
        print(line)
    print(f"clustered {len(model.labels_)} texts into {len(model.cluster_names_)} clusters")
    if model.metrics_:
        baseline = getattr(model, "baseline_metrics_", None)
        if baseline:
            print(metrics_table(model.method, model.metrics_, baseline))
        else:
            m = model.metrics_
            print(f"ACC {m['acc_mean']:.2f} ± {m['acc_std']:.2f}  NMI {m['nmi_mean']:.2f} ± {m['nmi_std']:.2f}  "
                  f"ARI {m['ari_mean']:.2f}")
    print(f"outputs: {model.run_dir_}")
