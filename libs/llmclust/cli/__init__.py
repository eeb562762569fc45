"""The ``llmclust`` command and the code behind every script in ``cluster_jobs/``.

    llmclust run --config ray_configs/lumi_local.yaml corpus.limit=200   # the method the config names
    llmclust report runs/local                                          # runs/local/report/index.html
    llmclust serve runs/local --port 8001                               # POST /assign, until Ctrl-C

One module a command: :mod:`.run` (``cluster_jobs/<method>.py`` call :func:`run_job` with their
method fixed), :mod:`.report`, :mod:`.serve`; :mod:`.preflight` checks a job before Ray starts,
:mod:`.console` routes its output, :mod:`.summary` prints its closing lines.

Example::

    main(["run", "--config", "ray_configs/local.yaml", "corpus.limit=200", "clustering.n_clusters=10"])
    main(["report", "runs/local"])
"""

from __future__ import annotations

import argparse

from llmclust.cli.report import report_main
from llmclust.cli.run import RAW, RUN_HELP, run_job

USAGE = """Cluster a text corpus, look at the clusters, serve them.

  llmclust run    [--config FILE] [--run-dir DIR] [--no-report] [--verbose] [section.key=value ...]
  llmclust report RUN [--max-points N] [--page-points N]
  llmclust serve  RUN [--config SERVE_FILE] [--port N] [--write-config PATH] [key=value ...]

`llmclust COMMAND -h` lists a command's options."""


def _run_dir_first(argv: list[str]) -> list[str]:
    """``RUN rest...`` -> ``--run-dir RUN rest...`` (the scripts' form), when RUN is given first."""
    if argv and not argv[0].startswith("-") and "=" not in argv[0]:
        return ["--run-dir", argv[0], *argv[1:]]
    return argv


def _serve(argv: list[str]) -> None:
    from llmclust.cli.serve import main as serve_main

    serve_main(_run_dir_first(argv), prog="llmclust serve")


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


__all__ = ["main", "report_main", "run_job"]
