"""The ``llmclust`` command and the code behind every script in ``cluster_jobs/``.

    llmclust run --config ray_configs/lumi_local.yaml corpus.limit=200   # the method the config names
    llmclust report runs/local                                          # runs/local/report/index.html
    llmclust serve runs/local --port 8001                               # POST /assign, until Ctrl-C

``cluster_jobs/<method>.py`` (the ``ray job submit`` entrypoints) call :func:`run_job` with
their method fixed, ``cluster_jobs/report.py`` :func:`report_main`, ``cluster_jobs/serve.py``
:func:`llmclust.serve_command.main`. A job takes ``--config FILE`` (YAML), optional
``--run-dir``, ``--no-report``, ``--verbose`` and ``section.key=value`` overrides. Bad input
(an invalid config, a missing corpus, column or model: :mod:`llmclust.preflight`) is one line
on stderr and exit status 2, before Ray starts and before the run directory is created.

Example::

    main(["run", "--config", "ray_configs/local.yaml", "corpus.limit=200", "clustering.n_clusters=10"])
    main(["report", "runs/local"])
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import NoReturn

from llmclust.config import ConfigError
from llmclust.job import JobConfig, load_job_config

RAW = argparse.RawDescriptionHelpFormatter  # keep the command lines of the help texts as written
traceback_log = logging.getLogger("job_errors")  # not "llmclust.*", below ERROR: job.log only


def fail(message) -> NoReturn:
    """Exit with status 2 and ``message`` as the one line on stderr."""
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    raise SystemExit(2)


def job_parser(description: str, prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description, formatter_class=RAW)
    parser.add_argument("--config", default="ray_configs/local.yaml", help="YAML config (default: %(default)s)")
    parser.add_argument("--run-dir", help="run directory (overrides run.dir); rerun to resume")
    parser.add_argument("--no-report", action="store_true", help="skip writing <run dir>/report/index.html")
    parser.add_argument("--verbose", action="store_true", help="Ray's own progress bars and logs on the terminal too")
    parser.add_argument("overrides", nargs="*", metavar="section.key=value",
                        help="config overrides, e.g. clustering.n_clusters=77 corpus.limit=500")
    return parser


def parse_job_config(args: argparse.Namespace, **forced: str) -> JobConfig:
    """Config from the parsed arguments, checked by :func:`llmclust.preflight.preflight`; exits 2 if wrong."""
    from llmclust.preflight import PreflightError, preflight

    overrides = list(args.overrides)
    if args.run_dir:
        overrides.append(f"run.dir={args.run_dir}")
    overrides += [f"{k}={v}" for k, v in forced.items()]
    try:
        cfg = load_job_config(args.config, overrides)
        preflight(cfg)
    except ConfigError as err:
        fail(f"config: {err}")
    except PreflightError as err:
        fail(err)
    return cfg


def run_job(description: str, argv: list[str] | None = None, method: str | None = None, prog: str | None = None):
    """A clustering job: config, preflight, console, Ray, fit, summary, report. Returns the fitted model.

    ``method`` fixes the method (the per-method scripts); None runs the one the config names.
    """
    from llmclust.console import print_summary, setup_console, start_ray
    from llmclust.corpus import CorpusError
    from llmclust.methods import make_clusterer
    from llmclust.models import ModelNotFound
    from llmclust.schema import SchemaError

    args = job_parser(description, prog).parse_args(argv)
    cfg = parse_job_config(args, **({"method": method} if method else {}))
    setup_console(cfg.run.dir, cfg.run.log_level, args.verbose)
    start_ray(cfg.ray, args.verbose)
    try:
        model = make_clusterer(cfg).fit()
    except (CorpusError, ModelNotFound, SchemaError) as err:  # bad input only the data shows: one line too
        traceback_log.warning("%s stopped on bad input", cfg.method, exc_info=True)
        fail(f"{err} (traceback in {os.path.join(cfg.run.dir, 'job.log')})")
    print_summary(model)
    if not args.no_report:
        from llmclust.report import write_report

        print(write_report(model.run_dir_))  # the last line: what to open
    return model


REPORT_HELP = """Write <run dir>/report/index.html for a finished run: a map of the texts, the clusters,
how K was chosen, metrics, stage timings, LLM calls, rejected rows and the settings.

    python cluster_jobs/report.py --run-dir runs/local
    llmclust report runs/local --max-points 50000 --page-points 5000
"""


def report_main(argv: list[str] | None = None, description: str = REPORT_HELP, prog: str | None = None) -> None:
    """``llmclust report RUN`` / ``cluster_jobs/report.py --run-dir RUN``: prints the page's path."""
    parser = argparse.ArgumentParser(prog=prog, description=description, formatter_class=RAW)
    parser.add_argument("--run-dir", required=True, help="the run directory of a finished job")
    parser.add_argument("--max-points", type=int, default=200_000,
                        help="texts the map's layout is fitted on (default: %(default)s)")
    parser.add_argument("--page-points", type=int, default=20_000, help="texts shown on the map (default: %(default)s)")
    parser.add_argument("--verbose", action="store_true", help="library output on the terminal too")
    args = parser.parse_args(argv)
    from llmclust.console import setup_console
    from llmclust.serving import read_run

    try:
        read_run(args.run_dir)  # a clear line, and no folder created, when it is not a finished run
    except FileNotFoundError as err:
        fail(err)
    setup_console(args.run_dir, verbose=args.verbose)
    from llmclust.report import write_report

    print(write_report(args.run_dir, max_points=args.max_points, page_points=args.page_points))


def _run_dir_first(argv: list[str]) -> list[str]:
    """``RUN rest...`` -> ``--run-dir RUN rest...`` (the scripts' form), when RUN is given first."""
    if argv and not argv[0].startswith("-") and "=" not in argv[0]:
        return ["--run-dir", argv[0], *argv[1:]]
    return argv


def _serve(argv: list[str]) -> None:
    from llmclust.serve_command import main as serve_main

    serve_main(_run_dir_first(argv), prog="llmclust serve")


RUN_HELP = """llmclust run: cluster the corpus with the method the config names (`method:`).

    llmclust run --config ray_configs/lumi_local.yaml corpus.limit=200 clustering.n_clusters=10
"""

USAGE = """Cluster a text corpus, look at the clusters, serve them.

  llmclust run    [--config FILE] [--run-dir DIR] [--no-report] [--verbose] [section.key=value ...]
  llmclust report RUN [--max-points N] [--page-points N]
  llmclust serve  RUN [--config SERVE_FILE] [--port N] [--write-config PATH] [key=value ...]

`llmclust COMMAND -h` lists a command's options."""

COMMANDS = {
    "run": lambda argv: run_job(RUN_HELP, argv, prog="llmclust run"),
    "report": lambda argv: report_main(_run_dir_first(argv), prog="llmclust report"),
    "serve": _serve,
}


def main(argv: list[str] | None = None) -> None:
    """The ``llmclust`` console script: ``llmclust {run,report,serve} ...`` (``-h`` after a command for its options)."""
    parser = argparse.ArgumentParser(prog="llmclust", description=USAGE, formatter_class=RAW)
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the command's own arguments")
    ns = parser.parse_args(argv)
    COMMANDS[ns.command](ns.args)


def setup_logging(level: str = "INFO") -> None:
    """Plain logging to stderr, for scripts that want no run directory log (benchmarks, serve)."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
