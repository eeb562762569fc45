"""The GPU acceptance script stops at once, saying why, where no GPU is visible; its --cpu-smoke mode
runs the same steps on the CPU on tiny inputs (all five: about 3.5 minutes here, so CI runs one) and
never writes over a GPU run's figures."""

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from helpers import REPO, job_env

RESULT = REPO / "benchmarks" / "results" / "gpu_acceptance.json"


def test_without_a_gpu_it_says_so_and_stops():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: the script would run")
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_acceptance.py")], cwd=REPO, env=job_env(),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert "no CUDA device is visible" in out.stderr and "--cpu-smoke" in out.stderr


@pytest.mark.slow
def test_cpu_smoke_runs_a_job_and_leaves_the_gpu_figures_alone():
    before = RESULT.read_bytes() if RESULT.exists() else None
    tmp = Path(tempfile.mkdtemp(prefix="acc", dir="/tmp"))  # the smoke's temporary folder; short, for Ray's sockets
    smoke = tmp / "gpu_acceptance_cpu_smoke.json"
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_acceptance.py"), "--cpu-smoke",
                          "--steps", "baseline"], cwd=REPO, env=job_env(TMPDIR=str(tmp)), capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert f"written to {smoke}" in out.stdout
    facts = json.loads(smoke.read_text())
    assert facts["device"] == "cpu (--cpu-smoke)"
    assert facts["jobs"]["baseline"]["finished"] is True
    assert (RESULT.read_bytes() if RESULT.exists() else None) == before
    shutil.rmtree(tmp, ignore_errors=True)
