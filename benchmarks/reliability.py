"""Reliability benchmark: run the reliability suite and count what went wrong, and how.

    python benchmarks/reliability.py              # every case, the real-Ray kill included
    python benchmarks/reliability.py -m "not slow"  # without the cases that start Ray

Runs ``tests/reliability`` (kill points, corrupted run directories, bad inputs; see
tests/reliability/harness.py for how each outcome is judged) and writes
benchmarks/results/reliability.json:

* ``cases``: parametrised cases run; ``passed``: those that ended as they must (the result of
  a clean run, or a clear error before anything was half-written);
* ``data_lost``: cases whose rerun redid work that had survived intact (parts, cached answers);
* ``silently_wrong``: cases that finished (or served) a result that differs from a clean run's,
  or accepted bad input without an error or a warning.

Both counts must be 0; the script exits 1 otherwise, or when a case failed.
"""

import argparse
import json
import os
import sys
import time

import pytest

from common import REPO, RESULTS  # noqa: E402  (puts libs/ on the path)
OUT = RESULTS / "reliability.json"


class Tally:
    """pytest plugin: each case's outcome and the flags its verdict recorded."""

    def __init__(self):
        self.cases: dict[str, dict] = {}

    def pytest_runtest_logreport(self, report):
        name = report.nodeid.split("::", 1)[1]
        case = self.cases.setdefault(name, dict.fromkeys(("passed", "failed", "data_lost", "silently_wrong"), False))
        case["failed"] |= report.failed
        case["passed"] = (case["passed"] or (report.when == "call" and report.passed)) and not case["failed"]
        for key, value in report.user_properties:
            case[key] |= bool(value)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-m", dest="marks", default="", help='pytest marker expression, e.g. "not slow"')
    args = parser.parse_args(argv)
    tally, start, load = Tally(), time.time(), os.getloadavg()[0]
    pytest.main([str(REPO / "tests" / "reliability"), "-q", "-p", "no:cacheprovider",
                 *(["-m", args.marks] if args.marks else [])], plugins=[tally])
    cases = tally.cases
    result = {
        "cases": len(cases),
        "passed": sum(c["passed"] for c in cases.values()),
        "data_lost": sum(c["data_lost"] for c in cases.values()),
        "silently_wrong": sum(c["silently_wrong"] for c in cases.values()),
        "failed": sorted(name for name, c in cases.items() if not c["passed"]),
        "per_case": {name: {k: v for k, v in c.items() if k != "failed"} for name, c in cases.items()},
        "marks": args.marks or "all",
        "wall_s": round(time.time() - start, 1),
        "host_cpus": os.cpu_count(),
        "load_avg_1m_before": round(load, 2),
    }
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{result['passed']}/{result['cases']} cases passed, data lost in {result['data_lost']}, "
          f"silently wrong in {result['silently_wrong']} ({result['wall_s']} s) -> {OUT}")
    return int(result["passed"] != result["cases"] or result["data_lost"] or result["silently_wrong"])


if __name__ == "__main__":
    sys.exit(main())
