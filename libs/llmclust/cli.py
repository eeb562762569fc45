"""Command-line plumbing shared by the job scripts in ``cluster_jobs/``.

Every job takes ``--config FILE`` (YAML), optional ``--run-dir``, and any number of
``section.key=value`` overrides, all checked before work starts.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from llmclust.config import ConfigError
from llmclust.job import JobConfig, load_job_config


def job_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="ray_configs/local.yaml", help="YAML config (default: %(default)s)")
    parser.add_argument("--run-dir", help="run directory (overrides run.dir); rerun to resume")
    parser.add_argument("overrides", nargs="*", metavar="section.key=value",
                        help="config overrides, e.g. clustering.n_clusters=77 corpus.limit=500")
    return parser


def parse_job_config(args: argparse.Namespace, **forced: str) -> JobConfig:
    """Config from the parsed arguments; exits with the config error (no traceback) if invalid."""
    overrides = list(args.overrides)
    if args.run_dir:
        overrides.append(f"run.dir={args.run_dir}")
    overrides += [f"{k}={v}" for k, v in forced.items()]
    try:
        cfg = load_job_config(args.config, overrides)
    except ConfigError as err:
        sys.exit(f"config error: {err}")
    setup_logging(cfg.run.log_level)
    return cfg


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def print_fit_summary(model) -> None:
    """What every job prints at the end: sizes, metrics (when evaluated) and where outputs went."""
    print(f"clustered {len(model.labels_)} texts into {len(model.cluster_names_)} clusters")
    if model.metrics_:
        m = model.metrics_
        print(f"ACC {m['acc_mean']:.2f} ± {m['acc_std']:.2f}  NMI {m['nmi_mean']:.2f} ± {m['nmi_std']:.2f}  ARI {m['ari_mean']:.2f}")
    print(f"outputs: {model.run_dir_}")
