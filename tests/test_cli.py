"""The job command line: bad input stops before Ray in one line, the console stays readable, `llmclust run`."""

import io
import logging
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from llmclust.cli import _run_dir_first, main
from llmclust.console import ConsoleHandler, print_summary

REPO = Path(__file__).resolve().parents[1]
SMALL_CSV = REPO / "tests" / "fixtures" / "banking77_small.csv"


def _env() -> dict:
    return {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # a local Ray, never someone's cluster


@pytest.mark.parametrize("overrides, problem", [
    (["corpus.path=/nowhere/texts.csv"], "corpus path '/nowhere/texts.csv' does not exist"),
    (["corpus.text_column=body"], "corpus.text_column='body' is not a column of"),
    (["corpus.id_column=uid"], "corpus.id_column='uid' is not a column of"),
    (["evaluation.label_column=intent"], "evaluation.label_column='intent' is not a column of"),
    (["embedding.model=/nowhere/model"], "embedding.model: model '/nowhere/model' is neither a local path"),
    (["clustering.n_clusters=ten"], "config: clustering.n_clusters='ten'"),
], ids=["corpus-path", "text-column", "id-column", "label-column", "model", "config"])
def test_bad_input_is_one_line_and_exit_2_before_anything_starts(tmp_path, overrides, problem):
    run_dir = tmp_path / "run"
    job = subprocess.run([sys.executable, "cluster_jobs/baseline.py", "--config", "ray_configs/local.yaml",
                          f"corpus.path={SMALL_CSV}", f"run.dir={run_dir}", *overrides],
                         cwd=REPO, env=_env(), capture_output=True, text=True, timeout=120)
    assert job.returncode == 2, job.stderr
    assert job.stderr.count("\n") == 1 and job.stderr.startswith("error: ") and problem in job.stderr, job.stderr
    assert "Traceback" not in job.stderr and job.stdout == ""
    assert not run_dir.exists()  # no run directory for a job that never started


def test_report_of_an_unfinished_run_is_one_line_and_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["report", str(tmp_path / "missing")])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err and not (tmp_path / "missing").exists()


def test_run_dir_may_come_first():
    assert _run_dir_first(["runs/a", "--port", "8001"]) == ["--run-dir", "runs/a", "--port", "8001"]
    assert _run_dir_first(["--run-dir", "runs/a"]) == ["--run-dir", "runs/a"]
    assert _run_dir_first(["max_texts=8"]) == ["max_texts=8"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _record(name: str, level: int, msg: str, **extra) -> logging.LogRecord:
    return logging.makeLogRecord({"name": name, "levelno": level, "levelname": logging.getLevelName(level),
                                  "msg": msg, **extra})


def test_console_shows_llmclust_lines_and_anyones_errors_only():
    out = io.StringIO()
    handler = ConsoleHandler(out, logging.INFO)
    for record in (_record("llmclust.runs", logging.INFO, "stage embed done"),
                   _record("ray.data", logging.INFO, "Running Dataset"),
                   _record("ray", logging.WARNING, "token authentication"),
                   _record("llmclust.corpus", logging.WARNING, "3 rows rejected"),
                   _record("ray", logging.ERROR, "actor died")):
        handler.handle(record)
    lines = out.getvalue().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["stage embed done", "WARNING: 3 rows rejected", "ERROR: actor died"]


def test_progress_rewrites_one_line_on_a_terminal_and_is_a_plain_line_elsewhere():
    tty, log = Terminal(), io.StringIO()
    for out in (tty, log):
        handler = ConsoleHandler(out, logging.INFO)
        handler.handle(_record("llmclust.runs", logging.INFO, "embed: 100/300 rows", progress=True))
        handler.handle(_record("llmclust.runs", logging.INFO, "embed: 300/300 rows", progress=True))
        handler.handle(_record("llmclust.runs", logging.INFO, "stage embed done"))
    shown = tty.getvalue()
    assert shown.count("\r\x1b[K") == 3 and shown.count("\n") == 1 and shown.endswith("stage embed done\n")
    assert "\r" not in log.getvalue() and log.getvalue().count("\n") == 3


def test_summary_ends_with_where_the_outputs_are(capsys):
    model = SimpleNamespace(method="cotrain", labels_=[0, 1, 1], cluster_names_=["a", "b"], run_dir_="/runs/x",
                            metrics_={"acc_mean": 60.0, "acc_std": 1.0, "nmi_mean": 70.0, "nmi_std": 2.0, "ari_mean": 40.0},
                            iterations_=[{"iteration": 0, "acc": 60.0, "nmi": 70.0, "pairs": 12, "seconds": 3.0,
                                          "dpo_loss_start": 0.69, "dpo_loss_end": 0.52}],
                            embedder_path_="/runs/x/iter0_embedder/model", adapter_path_="")
    print_summary(model)
    lines = capsys.readouterr().out.splitlines()
    assert "DPO loss" in lines[0] and "0.6900 -> 0.5200" in lines[1]
    assert lines[-2].startswith("ACC 60.00 ± 1.00") and lines[-1] == "outputs: /runs/x"


@pytest.mark.slow
def test_llmclust_run_keeps_ray_off_the_terminal_and_ends_with_the_report(tmp_path):
    run_dir = tmp_path / "run"
    job = subprocess.run([sys.executable, "-m", "llmclust", "run", "--config", "ray_configs/local.yaml",
                          f"corpus.path={SMALL_CSV}", f"run.dir={run_dir}", "clustering.n_clusters=10",
                          "clustering.seeds=[0]", "embedding.cpus_per_actor=1"],
                         cwd=REPO, env=_env(), capture_output=True, text=True, timeout=900)
    assert job.returncode == 0, job.stderr[-3000:]
    lines = job.stdout.splitlines()
    assert lines[-1] == str(run_dir / "report" / "index.html") and Path(lines[-1]).exists()
    assert f"outputs: {run_dir}" in lines and any(line.startswith("ACC") for line in lines)
    assert "stage embed done: 200 rows" in job.stderr and f"-> {run_dir / 'embed'}" in job.stderr
    for ray_noise in ("worker.py", "streaming_executor", "core_worker", "Running Dataset", "pid="):
        assert ray_noise not in job.stderr, job.stderr
    log = (run_dir / "job.log").read_text()
    assert "Started a local Ray instance" in log and "stage embed done" in log
