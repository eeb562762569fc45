"""The post-embedding stages at 100k-1M texts, each against the plain library doing the same work.

    python benchmarks/scale.py                                    # N = 100k, 300k, 1M -> benchmarks/results/scale.json
    python benchmarks/scale.py --sizes 100000 300000 1000000 3000000 --llm-sizes 100000 1000000
    python benchmarks/scale.py --sizes 2000 --llm-sizes 2000 --inline --out /tmp/scale.json   # the CI smoke run

Input: synthetic clustered 384-d unit vectors (:func:`synthetic`: topics of ~1000 texts, each
text its topic's centre plus variation in a shared 48-d subspace plus a little isotropic
noise, so neighbours mean something, as in sentence embeddings), with texts, pseudo-label sets
and cluster labels derived from the topics. Every stage runs the project's own function
(``benchmarks/scale_stages.py``; inputs in ``scale_data.py``) and, on the same data in the same run, the plain library call
that does the same work (faiss HNSW / IVF / Kmeans, scikit-learn, scipy, pyarrow).

Memory: each stage (ours or plain) runs in a fresh subprocess; ``peak_rss_mb`` is that
process's ``ru_maxrss``: Python, the libraries, the stage's inputs (the vectors: 1.5 GB at 1M)
and the stage itself. ``input_rss_mb`` is its RSS once the inputs were loaded, before the
timed work. ``largest_stage_peak_rss_mb_1m`` is the largest of those peaks at the smallest
N >= 1M. The driver's peak over a whole job is measured by ``benchmarks/scale_job.py``
(``baseline_job`` and ``driver_peak_rss_mb_1m`` in the same file). ``--inline`` runs
everything in this process (the CI smoke run: no per-stage memory
figures).

Seconds are wall-clock (and CPU seconds beside them): the machine is shared, so the load
average at the start and the end, and at each row, is recorded; ours and plain run back to
back. A long run can be measured in sittings: ``--resume`` keeps the rows already in --out,
``--redo STAGE --repeats 3`` measures a stage again, keeping the fastest of 3 alternating pairs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import RESULTS  # noqa: E402  (puts libs/ on the path)
OUT = RESULTS / "scale.json"

from llmclust.store.runs import peak_rss_mb  # noqa: E402
from scale_data import llm_overhead, synthetic  # noqa: E402
from scale_stages import INDEX_SETTING, STAGES  # noqa: E402


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS"))


def worker(stage: str, impl: str, n: int, data: Path, ours: dict | None = None) -> dict:
    """One stage, ours or plain, in this process: its inputs loaded (not timed), then timed.
    ``ours``: for plain, the figures ours reported in this run (e.g. the index setting it tuned)."""
    inputs = STAGES[stage].load(n, data)
    if ours:
        inputs["ours"] = {k: v for k, v in ours.items() if k in INDEX_SETTING}
    loaded = _rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    extra = getattr(STAGES[stage], impl)(inputs, Path(tempfile.mkdtemp(prefix=f"scale_{stage}_")))
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    seconds = extra.pop("seconds", seconds)  # the plain pooling: extrapolated from a block of rows
    if impl == "ours" and hasattr(STAGES[stage], "report"):  # checks of the result, not timed
        extra.update(STAGES[stage].report(inputs))
    return {"seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3), "input_rss_mb": round(loaded),
            "peak_rss_mb": peak_rss_mb(), **extra}


def dispatch(stage: str, impl: str, n: int, data: Path, ours: dict | None = None) -> dict:
    return llm_overhead(n) if stage == "llm" else worker(stage, impl, n, data, ours)


def run(stage: str, impl: str, n: int, data: Path, inline: bool, ours: dict | None = None) -> dict:
    if inline:
        return dispatch(stage, impl, n, data, ours)
    cmd = [sys.executable, __file__, "--worker", stage, impl, str(n), str(data), json.dumps(ours or {})]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{stage} {impl} at N={n} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def exponent(sizes: list[int], seconds: list[float]) -> float | None:
    """b of seconds ~ a * N^b, least squares on the logs (None with fewer than two sizes)."""
    if len(sizes) < 2:
        return None
    return round(float(np.polyfit(np.log(sizes), np.log(np.maximum(seconds, 1e-6)), 1)[0]), 3)


def machine() -> dict:
    import faiss
    import sklearn

    return {"cpus": os.cpu_count(), "load_average_start": [round(x, 2) for x in os.getloadavg()],
            "platform": platform.platform(), "python": platform.python_version(), "numpy": np.__version__,
            "faiss": faiss.__version__, "scikit_learn": sklearn.__version__}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--llm-sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--stages", nargs="+", default=list(STAGES), choices=list(STAGES))
    parser.add_argument("--inline", action="store_true", help="run every stage in this process (CI smoke run)")
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "llmclust_scale")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--resume", action="store_true", help="keep the figures already in --out, measure the rest")
    parser.add_argument("--repeats", type=int, default=1,
                        help="run ours and plain alternately this many times, keep each one's fastest (a noisy machine)")
    parser.add_argument("--redo", nargs="+", default=[], help="with --resume: measure these stages again")
    parser.add_argument("--worker", nargs=5, metavar=("STAGE", "IMPL", "N", "DATA", "OURS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        stage, impl, n, data, ours = args.worker
        print(json.dumps(dispatch(stage, impl, int(n), Path(data), json.loads(ours))))
        return {}

    result = {"machine": machine(), "stages": {}, "exponents": {}, "neighbours_recall_at_10": {},
              "llm_overhead_us_per_prompt": {}, "largest_stage_peak_rss_mb_1m": None,
              "driver_peak_rss_mb_1m": None,  # benchmarks/scale_job.py measures it
              "method": {"peak_rss": "each stage in a fresh subprocess: its ru_maxrss" if not args.inline else
                         "inline: the process's running ru_maxrss (not per stage)",
                         "data": "benchmarks/scale_data.py: synthetic()",
                         "scaled": "neighbours above 100k rows: index built in full, search timed on 20k sampled "
                                   "queries and scaled to N (cpu_seconds: the work done, not scaled); plain LUMI "
                                   "pooling: timed on 16384 rows and scaled to N"}}
    if args.resume and args.out.exists():  # a long run measured in several sittings
        kept = json.loads(args.out.read_text())
        result.update({k: kept[k] for k in ("stages", "neighbours_recall_at_10", "llm_overhead_us_per_prompt",
                                            "baseline_job", "driver_peak_rss_mb_1m") if k in kept})
        earlier = kept["machine"].pop("earlier_sittings", [])
        result["machine"]["earlier_sittings"] = earlier + [kept["machine"]]
    for n in args.sizes:
        synthetic(n, args.data)  # written once per N, read by every worker
        for stage in args.stages:
            if str(n) in result["stages"].get(stage, {}) and stage not in args.redo:
                continue
            pairs = []
            for _ in range(args.repeats):
                ours = run(stage, "ours", n, args.data, args.inline)
                pairs.append((ours, run(stage, "plain", n, args.data, args.inline, ours)))
            ours, plain = (min((p[i] for p in pairs), key=lambda r: r["seconds"]) for i in (0, 1))
            row = {**ours, "plain_seconds": plain["seconds"], "plain_cpu_seconds": plain["cpu_seconds"],
                   "plain_peak_rss_mb": plain["peak_rss_mb"], "ratio": round(ours["seconds"] / max(plain["seconds"], 1e-6), 3),
                   **{f"plain_{k}": v for k, v in plain.items() if k not in ("seconds", "cpu_seconds", "peak_rss_mb", "input_rss_mb")}}
            result["stages"].setdefault(stage, {})[str(n)] = row
            if "recall_at_10" in ours:
                result["neighbours_recall_at_10"][str(n)] = ours["recall_at_10"]
            row["load_average"], row["repeats"] = round(os.getloadavg()[0], 2), args.repeats
            print(f"N={n} {stage}: {row['seconds']} s vs plain {row['plain_seconds']} s (ratio {row['ratio']}), "
                  f"peak {row['peak_rss_mb']} MB, load {row['load_average']}", flush=True)
            write(args.out, result)
    for n in args.llm_sizes:
        if str(n) not in result["llm_overhead_us_per_prompt"]:
            result["llm_overhead_us_per_prompt"][str(n)] = run("llm", "ours", n, args.data, args.inline)
            print(f"LLM stage, {n} prompts: {result['llm_overhead_us_per_prompt'][str(n)]}", flush=True)
    result["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    write(args.out, result)
    print(f"wrote {args.out}")
    return result


def write(out: Path, result: dict) -> None:
    """The figures so far, with what follows from them (exponents, the driver's peak at 1M)."""
    for stage, by_n in result["stages"].items():
        sizes = sorted(by_n, key=int)
        result["exponents"][stage] = exponent([int(n) for n in sizes], [by_n[n]["seconds"] for n in sizes])
    big = sorted((int(n) for by_n in result["stages"].values() for n in by_n if int(n) >= 1_000_000))
    if big and "inline" not in result["method"]["peak_rss"]:
        result["largest_stage_peak_rss_mb_1m"] = max(by_n[str(big[0])]["peak_rss_mb"]
                                                     for by_n in result["stages"].values() if str(big[0]) in by_n)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
