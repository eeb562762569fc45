"""umap-learn's numba compile per process: on a machine that never ran a job, and on one that did.

    python benchmarks/numba_cache.py        # -> benchmarks/results/numba_cache.json

Each measurement is a fresh Python process (as every job is) that imports the reduce stage and
runs its warm-up (a UMAP fit and transform on 300 rows: every code path a real fit takes), with
``NUMBA_CACHE_DIR`` pointing at one folder: empty for the first process, which pays the whole
compile as every job did before the cache, then kept for the next ones
(:mod:`llmclust.pipeline.jit_cache`).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time

from common import REPO, RESULTS, write_result

WARM_UP = ("from llmclust.pipeline.reduction import ReductionConfig, _compile; "  # a fit on a sample and a transform:
           "_compile(ReductionConfig(method='umap', fit_sample=150), 300)")  # NN-descent's paths, every one


def one_process(cache_dir: str) -> float:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir, "PYTHONPATH": str(REPO / "libs")}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-W", "ignore", "-c", WARM_UP], check=True, env=env, capture_output=True)
    return round(time.perf_counter() - t0, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cached-runs", type=int, default=3)
    parser.add_argument("--out", default=RESULTS / "numba_cache.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        cold = one_process(cache)
        cached = [one_process(cache) for _ in range(args.cached_runs)]
        size_mb = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(cache) for f in fs) / 2**20
    result = {"machine": f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}",
              "load_average_after": round(os.getloadavg()[0], 2),
              "first_process_s": cold, "later_processes_s": cached, "cache_mb": round(size_mb, 1),
              "what": "a fresh process: import the reduce stage, compile umap-learn's numba code (warm-up fit "
                      "and transform); first with an empty NUMBA_CACHE_DIR, then with the folder it filled"}
    write_result(args.out, result)


if __name__ == "__main__":
    main()
