"""``llmclust report RUN`` and ``cluster_jobs/report.py --run-dir RUN``: write a finished run's page.

Example::

    report_main(["--run-dir", "runs/local", "--page-points", "5000"])   # prints runs/local/report/index.html
"""

from __future__ import annotations

import argparse

from llmclust.cli.run import RAW, fail

REPORT_HELP = """Write <run dir>/report/index.html for a finished run: a map of the texts, the clusters,
how K was chosen, metrics, stage timings, LLM calls, rejected rows and the settings.

    python cluster_jobs/report.py --run-dir runs/local
    llmclust report runs/local --max-points 50000 --page-points 5000
"""


def report_main(argv: list[str] | None = None, description: str = REPORT_HELP, prog: str | None = None) -> None:
    """Write the page and print its path."""
    parser = argparse.ArgumentParser(prog=prog, description=description, formatter_class=RAW)
    parser.add_argument("--run-dir", required=True, help="the run directory of a finished job")
    parser.add_argument("--max-points", type=int, default=200_000,
                        help="texts the map's layout is fitted on (default: %(default)s)")
    parser.add_argument("--page-points", type=int, default=20_000, help="texts shown on the map (default: %(default)s)")
    parser.add_argument("--verbose", action="store_true", help="library output on the terminal too")
    args = parser.parse_args(argv)
    from llmclust.cli.console import setup_console
    from llmclust.store.finished import read_run

    try:
        read_run(args.run_dir)  # a clear line, and no folder created, when it is not a finished run
    except FileNotFoundError as err:
        fail(err)
    setup_console(args.run_dir, verbose=args.verbose)
    from llmclust.report import write_report

    print(write_report(args.run_dir, max_points=args.max_points, page_points=args.page_points))
