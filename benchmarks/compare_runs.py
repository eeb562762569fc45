"""Two versions of the code, the same runs: are the assignments identical? (what a restructuring must keep)

    benchmarks/method_smoke_runs.sh /tmp/old-checkout /tmp/smoke_before          # each setting, both checkouts
    benchmarks/method_smoke_runs.sh /tmp/new-checkout /tmp/smoke_after
    python benchmarks/compare_runs.py audit_on=/tmp/smoke_before,/tmp/smoke_after \
        audit_off=/tmp/smoke_before_noaudit,/tmp/smoke_after_noaudit   # -> results/redesign_before_after.json

For every method's run in both folders: K, ACC / NMI from result.json, and the share of texts
whose cluster is the same (assignments.parquet, row by row).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pyarrow.parquet as pq
from common import RESULTS, write_result

METHODS = ("baseline", "lumi", "clusterllm", "cotrain")


def summary(run: Path) -> tuple[dict, list]:
    result = json.loads((run / "result.json").read_text())
    m = result["metrics"]
    clusters = pq.read_table(run / "assignments.parquet").sort_by("row").column("cluster").to_pylist()
    return {"k": result["k"], "acc_mean": m["acc_mean"], "acc_std": m["acc_std"], "nmi_mean": m["nmi_mean"]}, clusters


def compare(before: Path, after: Path) -> dict:
    out = {}
    for method in METHODS:
        (b, b_clusters), (a, a_clusters) = summary(before / method), summary(after / method)
        same = sum(x == y for x, y in zip(b_clusters, a_clusters)) / len(b_clusters) if len(b_clusters) == len(a_clusters) else None
        out[method] = {"before": b, "after": a, "same_assignments_share": same}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("settings", nargs="+", metavar="NAME=BEFORE_DIR,AFTER_DIR")
    parser.add_argument("--note", default="", help="what the runs were (checkouts, overrides), kept in the JSON")
    parser.add_argument("--out", type=Path, default=RESULTS / "redesign_before_after.json")
    args = parser.parse_args()
    runs = {}
    for setting in args.settings:
        name, _, dirs = setting.partition("=")
        before, after = dirs.split(",")
        runs[name] = compare(Path(before), Path(after))
    write_result(args.out, {"note": args.note, "runs": runs})


if __name__ == "__main__":
    main()
