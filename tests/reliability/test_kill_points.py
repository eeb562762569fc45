"""SIGKILL where a job writes (mid-embedding, mid-LLM stage, while publishing), then rerun.

Each rerun must end with the result of a clean run and redo only the work the kill lost; in
between, the run directory must never look finished with a mix of two runs.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from harness import (
    REPO,
    LabelBackend,
    fit,
    job_config,
    job_overrides,
    label_stage,
    llm_chats,
)
from llmclust.llm.cache import ResponseCache
from llmclust.store.finished import read_run

DRIVER = Path(__file__).with_name("driver.py")


def wait_for(condition, proc: subprocess.Popen, timeout: float) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None and not condition():
        time.sleep(0.05)
    return condition()


@pytest.fixture(scope="module")
def reference_k7(tmp_path_factory) -> Path:
    """A clean run of the suite's job with K=7: what a rerun over the K=10 run must publish."""
    run_dir = tmp_path_factory.mktemp("reliability-k7") / "run"
    with pytest.MonkeyPatch.context() as mp:
        fit(job_config(run_dir, "clustering.n_clusters=7"), mp)
    return run_dir


# kill point -> what serving must find right after the kill
PUBLISH_KILLS = {
    "staged": "the earlier run",  # final files written to .publishing/, none moved in
    "assignments.parquet": "no finished run",  # the first file moved in
    "config.yaml": "no finished run",  # every file moved in, result.json not yet written
}


@pytest.mark.parametrize("kill_at", PUBLISH_KILLS)
def test_sigkill_while_publishing_over_a_finished_run(kill_at, copy_of_reference, reference, reference_k7,
                                                     verdict, monkeypatch):
    run = copy_of_reference  # finished with K=10; the killed job publishes K=7 over it
    killed = subprocess.run([sys.executable, str(DRIVER), "publish", str(run), kill_at, "clustering.n_clusters=7"],
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    if PUBLISH_KILLS[kill_at] == "the earlier run":
        verdict.same_result(run, reference)
    else:
        with pytest.raises(FileNotFoundError) as refused:
            read_run(str(run))
        verdict.clear_error(refused.value, "not a finished run")
    embedded = fit(job_config(run, "clustering.n_clusters=7"), monkeypatch)
    verdict.same_result(run, reference_k7)
    verdict.nothing_lost(embedded.ranges, [])


def test_sigkill_mid_llm_stage_then_rerun(tmp_path, verdict):
    """Killed once some answers are in the response cache; the rerun asks only for the others."""
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, str(DRIVER), "llm", str(run)], stderr=subprocess.PIPE, text=True)

    def cached() -> int:
        if not (run / "llm_cache").exists():
            return 0
        cache = ResponseCache(run / "llm_cache")
        try:
            return len(cache)
        finally:
            cache.close()

    reached = wait_for(lambda: cached() >= 4, proc, 120)
    proc.kill()
    _, stderr = proc.communicate()
    assert reached, f"the LLM stage never cached 4 answers: {stderr[-3000:]}"
    kept = cached()
    assert kept < len(llm_chats()), "killed too late: every answer was already cached"
    assert not (run / "labels" / "manifest.json").exists() and not (run / "labels" / "answers.parquet").exists()

    backend = LabelBackend()
    resumed = label_stage(run, backend)
    clean = label_stage(tmp_path / "clean", LabelBackend())
    verdict.record("silently_wrong", resumed.texts != clean.texts)
    assert resumed.texts == clean.texts
    verdict.nothing_lost(list(range(backend.calls)), list(range(len(llm_chats()) - kept)))


@pytest.mark.slow
def test_sigkill_mid_embed_then_rerun_with_other_chunk_rows(tmp_path, reference, verdict):
    """The real job (Ray Data actors) killed after its first part; rerun with chunk_rows 50 -> 75."""
    run = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    job = [sys.executable, str(REPO / "cluster_jobs" / "baseline.py"), "--no-report",
           "--config", str(REPO / "ray_configs" / "local.yaml")]
    parts_dir = run / "embed" / "parts"

    def parts() -> dict:
        try:
            return json.loads((parts_dir / "index.json").read_text())["parts"]
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            return {}

    proc = subprocess.Popen(job + job_overrides(run), env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    reached = wait_for(lambda: len(parts()) >= 1, proc, 400)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert reached, "the job never wrote its first embedding part"
    assert not (run / "embed" / "manifest.json").exists(), "killed too late: embed stage already finished"
    kept = {name: (parts_dir / name).stat().st_mtime_ns for name in parts()}
    covered = max(p["stop"] for p in parts().values())  # parts are written in row order from 0

    rerun = subprocess.run(job + job_overrides(run, "embedding.chunk_rows=75"), env=env, capture_output=True,
                           text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    redone = [(p["start"], p["stop"]) for name, p in parts().items()
              if kept.get(name) != (parts_dir / name).stat().st_mtime_ns]
    verdict.nothing_lost(redone, [(a, min(a + 75, 200)) for a in range(covered, 200, 75)])
    verdict.same_result(run, reference)
