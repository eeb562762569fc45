"""Placement on a GPU node, measured on CPU: every job under a declared GPU, and the reduce stage's cold start.

    python benchmarks/placement_cpu.py                          # -> benchmarks/results/placement_cpu.json
    python benchmarks/placement_cpu.py --before /tmp/old-checkout   # also the reduce stage of another checkout

A local Ray declares one GPU that torch cannot see (``ray.num_gpus=1``), and every GPU setting is
on (``tests/helpers.py``'s GPU_ON): Ray schedules the embed actors, LLM engines and Ray Train
workers as on a one-GPU node while the devices stay the CPU. Each job is a real
``cluster_jobs/<job>.py`` run in its own process:

* ``fake_gpu_jobs``: the four jobs, finished or not, and their seconds (baseline on Banking77 test,
  the LLM methods on the 200-text fixture with the tests' tiny budgets);
* ``reduce``: the baseline job on Banking77 test (UMAP, 5 seeds) with the declared GPU and with none:
  the reduce stage's seconds, their ratio (``reduce_ratio_fake_gpu``), and its cold start
  (``reduce_cold_start_s``): the first seed's time beyond a warm seed's, plus the time the stage
  still waited for the numba warm-up that ran during embedding. ``--before`` measures the same
  stage of another checkout (``git worktree add /tmp/old <commit>``), as ``before``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, RESULTS, TEST_CSV, write_result

sys.path.insert(0, str(REPO / "tests"))
from helpers import GPU_ON, SMALL_CSV, TINY, config_file  # noqa: E402  (one list of tiny budgets and GPU settings)

SEED_LINE = re.compile(r"reduce seed (\d+): .* in ([\d.]+) s")


def run_job(checkout: Path, method: str, run_dir: Path, overrides: list[str], timeout: int) -> dict:
    """One job in its own process; finished, seconds, and its reduce stage's timings when it has one."""
    config = checkout / config_file(method).relative_to(REPO)  # its own: an older checkout refuses newer keys
    argv = [sys.executable, str(checkout / "cluster_jobs" / f"{method}.py"), "--no-report",
            "--config", str(config), f"run.dir={run_dir}", *overrides]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")},
           "PYTHONPATH": str(checkout / "libs")}
    t0 = time.time()
    try:
        done = subprocess.run(argv, cwd=checkout, env=env, capture_output=True, text=True, timeout=timeout)
        finished = done.returncode == 0 and (run_dir / "result.json").exists()
    except subprocess.TimeoutExpired:
        finished = False
    out = {"finished": finished, "seconds": round(time.time() - t0, 1)}
    manifest = run_dir / "reduce" / "manifest.json"
    if manifest.exists():
        seeds = {int(s): float(t) for s, t in SEED_LINE.findall((run_dir / "job.log").read_text())}
    if manifest.exists() and len(seeds) > 1:  # a cold first seed beside warm ones
        warm = statistics.median(t for s, t in seeds.items() if s != min(seeds))
        reduce = json.loads(manifest.read_text())
        out["reduce"] = {"seconds": reduce["seconds"], "seed_seconds": seeds,
                         "warm_up_wait_s": reduce.get("warm_up_wait_s", 0.0),
                         "cold_start_s": round(seeds[min(seeds)] - warm + reduce.get("warm_up_wait_s", 0.0), 1)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, help="another checkout whose reduce stage to measure the same way")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds a job may take (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=RESULTS / "placement_cpu.json")
    args = parser.parse_args()
    fake_gpu = ["ray.num_gpus=1", *GPU_ON]
    small = [f"corpus.path={SMALL_CSV}", "clustering.n_clusters=10", "clustering.seeds=[0]", "llm.batch_size=16"]
    result = {"machine": f"{os.cpu_count()} CPU cores, no GPU (one declared to Ray)", "fake_gpu_jobs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for method in ("baseline", "lumi", "clusterllm", "cotrain"):
            setup = [f"corpus.path={TEST_CSV}"] if method == "baseline" else [*small, *TINY[method]]
            job = run_job(REPO, method, tmp / f"{method}_gpu", [*setup, *fake_gpu], args.timeout)
            result["fake_gpu_jobs"][method] = job
            print(method, json.dumps(job), flush=True)
        no_gpu = run_job(REPO, "baseline", tmp / "baseline_cpu", [f"corpus.path={TEST_CSV}", "ray.num_gpus=0"],
                         args.timeout)
        with_gpu = result["fake_gpu_jobs"]["baseline"]
        result["reduce"] = {"fake_gpu": with_gpu.get("reduce"), "no_gpu": no_gpu.get("reduce")}
        if with_gpu.get("reduce") and no_gpu.get("reduce"):
            result["reduce_ratio_fake_gpu"] = round(with_gpu["reduce"]["seconds"] / no_gpu["reduce"]["seconds"], 2)
        cold = {"after": (no_gpu.get("reduce") or {}).get("cold_start_s")}
        if args.before:
            before = run_job(args.before, "baseline", tmp / "before_gpu", [f"corpus.path={TEST_CSV}", "ray.num_gpus=1"],
                             args.timeout)
            before_cpu = run_job(args.before, "baseline", tmp / "before_cpu",
                                 [f"corpus.path={TEST_CSV}", "ray.num_gpus=0"], args.timeout)
            result["reduce"]["before"] = {"fake_gpu": before.get("reduce"), "no_gpu": before_cpu.get("reduce")}
            cold["before"] = (before_cpu.get("reduce") or {}).get("cold_start_s")
            cold["before_fake_gpu_reduce_s"] = (before.get("reduce") or {}).get("seconds")
        result["reduce_cold_start_s"] = cold
    write_result(args.out, result)


if __name__ == "__main__":
    main()
