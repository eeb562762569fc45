"""The co-training driver for real on a tiny subset: killed mid-run, resumed through `ray job submit`."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import REPO, free_port, job_env


def tiny_overrides(small_csv, run_dir) -> list[str]:
    """16 texts, 1 iteration, 2 candidates, 1 DPO step, 1 embedder step: minutes on 2 cores."""
    return [f"corpus.path={small_csv}", "corpus.limit=16", f"run.dir={run_dir}", "clustering.n_clusters=4",
            "clustering.seeds=[0]", "llm.batch_size=16", "cotrain.iterations=1", "cotrain.temperatures=[1.0]",
            "cotrain.max_tokens=16", "cotrain.density_runs=10", "cotrain.dpo.max_steps=1",
            "cotrain.dpo.batch_size=2", "cotrain.dpo.max_length=192", "cotrain.embedder.max_steps=1",
            "cotrain.embedder.batch_size=8", "cotrain.embedder.dec_clusters=4", "ray.num_cpus=2",
            "audit.enabled=false"]  # the whole loop must run here, whatever SmolLM2's interpretations are worth


def _env() -> dict:
    return job_env(RAY_AUTH_MODE="token")  # the head, the driver and `ray job submit` all use ~/.ray/auth_token


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float) -> None:
    deadline = time.time() + seconds
    while not path.exists():
        assert proc.poll() is None, f"the driver ended (rc {proc.returncode}) before writing {path}"
        assert time.time() < deadline, f"{path} not written within {seconds} s"
        time.sleep(2)


def _stop_head(temp_dir: Path) -> None:
    """Stop only the head started here: its processes name its own temp dir (``ray stop`` would end every Ray)."""
    import psutil

    ours = [p for p in psutil.process_iter(["cmdline"]) if str(temp_dir) in " ".join(p.info["cmdline"] or [])]
    for proc in ours:
        proc.terminate()
    _, alive = psutil.wait_procs(ours, timeout=30)
    for proc in alive:
        proc.kill()


def _finished_at(run_dir: Path, stage: str) -> str:
    return json.loads((run_dir / stage / "manifest.json").read_text())["finished_at"]


def _start_head(temp_dir: Path, env: dict) -> tuple[int, int]:
    """`ray start --head` on free ports; retried once, since a loaded machine can miss Ray's 30 s start-up wait."""
    for _ in range(2):
        dash, gcs, agent, agent_grpc, runtime_env, metrics = (free_port() for _ in range(6))
        # every port explicit: another Ray on this machine may hold a default one (the job agent's 52365)
        started = subprocess.run(["ray", "start", "--head", "--num-cpus=2", f"--port={gcs}", f"--dashboard-port={dash}",
                                  f"--dashboard-agent-listen-port={agent}", f"--dashboard-agent-grpc-port={agent_grpc}",
                                  f"--runtime-env-agent-port={runtime_env}", f"--metrics-export-port={metrics}",
                                  "--include-dashboard=true", f"--temp-dir={temp_dir}", "--disable-usage-stats"],
                                 cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        if started.returncode == 0:
            return gcs, dash
        _stop_head(temp_dir)
    raise AssertionError(f"ray start failed twice: {started.stdout[-2000:]} {started.stderr[-2000:]}")


@pytest.mark.slow
def test_killed_driver_resumes_through_ray_job_submit(tmp_path, small_csv):
    run_dir = tmp_path / "run"
    args = ["cluster_jobs/cotrain.py", "--no-report", "--config", "ray_configs/cotrain_local.yaml",
            *tiny_overrides(small_csv, run_dir)]
    temp_dir = Path("/tmp") / f"ray-cotrain-test-{os.getpid()}"  # short: Ray's socket paths are length-limited
    env = _env()
    gcs, dash = _start_head(temp_dir, env)
    try:
        # 1. run the driver against the head and kill it (its whole process group) once the first DPO finished
        log = (tmp_path / "killed_driver.log").open("w")
        driver = subprocess.Popen([sys.executable, *args, f"ray.address=127.0.0.1:{gcs}"], cwd=REPO, env=env,
                                  start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_for(run_dir / "iter0_dpo" / "manifest.json", driver, 1500)
        finally:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
            log.close()
        before = {s: _finished_at(run_dir, s) for s in ("iter0_greedy", "iter0_sample1", "iter0_prefer", "iter0_dpo")}
        assert not (run_dir / "result.json").exists()

        # 2. resume it as a Ray job (the driver picks the cluster up from $RAY_ADDRESS)
        submit = ["ray", "job", "submit", "--address", f"http://127.0.0.1:{dash}", "--working-dir", ".",
                  "--runtime-env-json", json.dumps({"env_vars": {"PYTHONPATH": "libs"}}), "--", "python", *args]
        for _ in range(10):  # a loaded machine starts the head's job agent late: Ray answers "try again later"
            job = subprocess.run(submit, cwd=REPO, env=env, capture_output=True, text=True, timeout=1500)
            if "No available agent to submit job" not in job.stderr:
                break
            time.sleep(15)
    finally:
        _stop_head(temp_dir)
    output = job.stdout + job.stderr
    assert job.returncode == 0 and "succeeded" in output, output[-3000:]
    assert "DPO loss" in output and f"outputs: {run_dir}" in output

    # finished stages were reused, not recomputed
    assert {s: _finished_at(run_dir, s) for s in before} == before
    iterations = json.loads((run_dir / "iterations.json").read_text())
    assert [r["iteration"] for r in iterations] == [0, 1]
    assert iterations[0]["pairs"] > 0 and iterations[0]["dpo_loss_start"] is not None
    assert iterations[1]["adapter"].endswith("iter0_dpo/adapter") and iterations[1]["acc"] is not None
    assert (run_dir / "iter0_dpo" / "adapter" / "adapter_model.safetensors").exists()
    assert (run_dir / "iter0_embedder" / "model" / "config.json").exists()
    result = json.loads((run_dir / "result.json").read_text())
    assert result["method"] == "cotrain" and result["n"] == 16 and result["embedder"].endswith("iter0_embedder/model")
