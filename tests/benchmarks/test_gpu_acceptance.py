"""The GPU acceptance script stops at once, saying why, where no GPU is visible (its --cpu-smoke mode
runs every step on the CPU: about 10 minutes here, so not in CI)."""

import subprocess
import sys

import pytest
from helpers import REPO, job_env


def test_without_a_gpu_it_says_so_and_stops():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: the script would run")
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_acceptance.py")], cwd=REPO, env=job_env(),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert "no CUDA device is visible" in out.stderr and "--cpu-smoke" in out.stderr

