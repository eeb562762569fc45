"""``llmclust run`` and every ``cluster_jobs/<method>.py``: config, preflight, console, Ray, fit, summary, report.

A job takes ``--config FILE`` (YAML), optional ``--run-dir``, ``--no-report``, ``--verbose`` and
``section.key=value`` overrides, in any order. Bad input (an invalid config, a missing corpus,
column or model: :mod:`llmclust.cli.preflight`) is one line on stderr and exit status 2, before
Ray starts and before the run directory is created.

Example::

    run_job("a job", ["--config", "ray_configs/local.yaml", "corpus.limit=200", "--no-report"])
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import NoReturn

from llmclust.config import ConfigError
from llmclust.methods.job import JobConfig, load_job_config

RAW = argparse.RawDescriptionHelpFormatter  # keep the command lines of the help texts as written
traceback_log = logging.getLogger("job_errors")  # not "llmclust.*", below ERROR: job.log only

RUN_HELP = """llmclust run: cluster the corpus with the method the config names (`method:`).

    llmclust run --config ray_configs/lumi_local.yaml corpus.limit=200 clustering.n_clusters=10
"""


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


def parse_job_args(argv: list[str] | None, description: str = RUN_HELP, prog: str | None = None) -> argparse.Namespace:
    """The job's arguments; options may come anywhere among the ``section.key=value`` overrides."""
    return job_parser(description, prog).parse_intermixed_args(argv)


def parse_job_config(args: argparse.Namespace, **forced: str) -> JobConfig:
    """Config from the parsed arguments, checked by :func:`llmclust.cli.preflight.preflight`; exits 2 if wrong."""
    from llmclust.cli.preflight import PreflightError, preflight

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


def run_job(description: str = RUN_HELP, argv: list[str] | None = None, method: str | None = None,
            prog: str | None = None):
    """A clustering job: config, preflight, console, Ray, fit, summary, report. Returns the fitted model.

    ``method`` fixes the method (the per-method scripts); None runs the one the config names.
    """
    from llmclust.cli.console import setup_console
    from llmclust.cli.summary import print_summary
    from llmclust.methods import make_clusterer
    from llmclust.models import ModelNotFound
    from llmclust.pipeline.corpus import CorpusError
    from llmclust.ray_session import ResourcesUnavailable, start_ray
    from llmclust.schema import SchemaError

    args = parse_job_args(argv, description, prog)
    cfg = parse_job_config(args, **({"method": method} if method else {}))
    setup_console(cfg.run.dir, cfg.run.log_level, args.verbose)
    start_ray(cfg.ray, args.verbose)
    try:
        model = make_clusterer(cfg).fit()
    # bad input that only the data or the cluster shows: one line too
    except (CorpusError, ModelNotFound, SchemaError, ResourcesUnavailable) as err:
        traceback_log.warning("%s stopped on bad input", cfg.method, exc_info=True)
        fail(f"{err} (traceback in {os.path.join(cfg.run.dir, 'job.log')})")
    print_summary(model)
    if not args.no_report:
        from llmclust.report import write_report

        print(write_report(model.run_dir_))  # the last line: what to open
    return model
