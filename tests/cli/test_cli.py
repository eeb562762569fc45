"""The job command line: bad input stops before Ray in one line, the console stays readable, `llmclust run`."""

import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO, SMALL_CSV, job_env
from llmclust.cli import _run_dir_first, main
from llmclust.cli.console import ConsoleHandler, setup_logging
from llmclust.cli.run import parse_job_args
from llmclust.cli.summary import print_summary
from llmclust.methods.cotrain.clusterer import CoTrainClusterer
from llmclust.store.runs import TRANSIENT


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
                         cwd=REPO, env=job_env(), capture_output=True, text=True, timeout=120)
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


def test_options_may_come_anywhere_among_the_overrides():
    args = parse_job_args(["a.b=1", "--no-report", "c.d=2", "--verbose", "--run-dir", "runs/x"])
    assert args.overrides == ["a.b=1", "c.d=2"] and args.no_report and args.verbose and args.run_dir == "runs/x"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _record(name: str, level: int, msg: str, **extra) -> logging.LogRecord:
    return logging.makeLogRecord({"name": name, "levelno": level, "levelname": logging.getLevelName(level),
                                  "msg": msg, **extra})


def test_console_shows_llmclust_lines_and_anyones_errors_only():
    out = io.StringIO()
    handler = ConsoleHandler(out, logging.INFO)
    for record in (_record("llmclust.store.runs", logging.INFO, "stage embed done"),
                   _record("ray.data", logging.INFO, "Running Dataset"),
                   _record("ray", logging.WARNING, "token authentication"),
                   _record("llmclust.pipeline.corpus", logging.WARNING, "3 rows rejected"),
                   _record("ray", logging.ERROR, "actor died")):
        handler.handle(record)
    lines = out.getvalue().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["stage embed done", "WARNING: 3 rows rejected", "ERROR: actor died"]


def test_faiss_probing_for_builds_it_lacks_stays_out_of_the_log():
    """faiss logs each AVX-512 build it does not have at INFO, with a ModuleNotFoundError: in a
    job's log that reads as a failure."""
    root, loader = logging.getLogger(), logging.getLogger("faiss.loader")
    level = root.level
    try:
        root.setLevel(logging.INFO)  # a job's level (pytest's handlers keep basicConfig from setting it)
        setup_logging()
        assert not loader.isEnabledFor(logging.INFO) and loader.isEnabledFor(logging.WARNING)
    finally:
        loader.setLevel(logging.NOTSET)
        root.setLevel(level)


def test_progress_rewrites_one_line_on_a_terminal_and_is_a_plain_line_elsewhere():
    tty, log = Terminal(), io.StringIO()
    for out in (tty, log):
        handler = ConsoleHandler(out, logging.INFO)
        handler.handle(_record("llmclust.store.runs", logging.INFO, "embed: 100/300 rows", progress=True))
        handler.handle(_record("llmclust.store.runs", logging.INFO, "embed: 300/300 rows", progress=True))
        handler.handle(_record("llmclust.store.runs", logging.INFO, "stage embed done"))
    shown = tty.getvalue()
    assert shown.count("\r\x1b[K") == 3 and shown.count("\n") == 1 and shown.endswith("stage embed done\n")
    assert "\r" not in log.getvalue() and log.getvalue().count("\n") == 3


def test_a_stage_is_one_line_on_a_terminal_and_quick_stages_flash_by():
    done = "stage %s done: %d rows in %.1f s -> %s"
    records = [("llmclust.store.runs", logging.INFO, "stage %s started", ("embed",), TRANSIENT),
               ("llmclust.pipeline.embedding", logging.INFO, "embed chunk %d/%d (rows %d-%d) in %.1f s",
                (1, 1, 0, 240, 30.3), TRANSIENT),
               ("llmclust.store.runs", logging.INFO, done, ("embed", 240, 30.3, "/runs/x/embed"), {}),
               ("llmclust.store.runs", logging.INFO, "stage %s started", ("cluster",), TRANSIENT),
               ("llmclust.store.runs", logging.INFO, done, ("cluster", 240, 0.2, "/runs/x/cluster"), {}),
               ("llmclust.llm.stage", logging.WARNING, "llm %s: %d unparseable", ("iter0_greedy", 3), {}),
               ("llmclust.store.runs", logging.INFO, done, ("evaluate", 240, 0.0, "/runs/x/evaluate"), {})]
    tty, log = Terminal(), io.StringIO()
    for out in (tty, log):
        handler = ConsoleHandler(out, logging.INFO)
        for name, level, msg, args, extra in records:
            handler.handle(_record(name, level, msg, args=args, **extra))
        handler.end_line()
    shown = [line.rsplit("\x1b[K", 1)[-1].split(" ", 1)[1] for line in tty.getvalue().split("\n")[:-1]]
    assert shown == ["stage embed done: 240 rows in 30.3 s -> /runs/x/embed",
                     "WARNING: llm iter0_greedy: 3 unparseable",  # a warning replaces a quick stage, never flashes
                     "stage evaluate done: 240 rows in 0.0 s -> /runs/x/evaluate"]  # the last line is finished
    assert log.getvalue().count("\n") == len(records) and "\r" not in log.getvalue()  # elsewhere every line stays


def test_messages_the_raylet_pushes_go_to_the_log_not_the_terminal(monkeypatch, capsys, caplog):
    # a crashed worker whose task Ray retries is announced by the raylet through the driver's
    # error-message thread, which prints to stdout past the worker-output dispatcher
    import ray._private.worker as ray_worker
    from llmclust import ray_session

    monkeypatch.setattr(ray_session, "init_ray", lambda cfg: None)
    monkeypatch.setattr(ray_worker, "print_to_stdstream", ray_worker.print_to_stdstream)  # restored afterwards
    monkeypatch.setattr(ray_session, "_ray_print_to_stdstream", None)
    dispatcher = ray_worker.global_worker_stdstream_dispatcher
    monkeypatch.setattr(dispatcher, "handlers", list(dispatcher.handlers))
    died = "A worker died or was killed while executing a task by an unexpected system error."
    with caplog.at_level(logging.INFO, logger="ray_workers"):
        ray_session.start_ray(None)
        ray_worker.print_to_stdstream({"lines": [died], "pid": "raylet", "is_err": False}, ignore_prefix=False)
        dispatcher.emit({"lines": ["*** SIGABRT received ***"], "pid": 3630, "is_err": True,
                         "task_name": "get_table_block_metadata_schema"})
    out = capsys.readouterr()
    assert died not in out.out + out.err and "SIGABRT" not in out.out + out.err
    logged = [r.getMessage() for r in caplog.records if r.name == "ray_workers"]
    assert logged == [f"(raylet) {died}", "(get_table_block_metadata_schema pid=3630) *** SIGABRT received ***"]
    ray_session.start_ray(None, verbose=True)  # --verbose: Ray's own printing again
    assert ray_worker.print_to_stdstream is ray_session._ray_print_to_stdstream


def test_the_autoscaler_status_stays_out_of_the_log_its_events_do_not(monkeypatch, caplog):
    # the monitor streams the cluster's whole status every 5 s (40 lines; 120 KB of job.log on an
    # H200 job); Ray's own printing keeps only its events, and so does job.log
    import ray._private.worker as ray_worker
    from llmclust import ray_session

    monkeypatch.setattr(ray_session, "init_ray", lambda cfg: None)
    monkeypatch.setattr(ray_worker, "print_to_stdstream", ray_worker.print_to_stdstream)
    dispatcher = ray_worker.global_worker_stdstream_dispatcher
    monkeypatch.setattr(dispatcher, "handlers", list(dispatcher.handlers))
    monkeypatch.setattr("ray.autoscaler.v2.utils.is_autoscaler_v2", lambda: False)
    status = ["======== Autoscaler status: 2026-12-04 15:46:48 ========", " 0.0/1.0 GPU"]
    event = ":event_summary:Adding 1 node(s) of type gpu-worker."
    with caplog.at_level(logging.INFO, logger="ray_workers"):
        ray_session.start_ray(None)
        dispatcher.emit({"lines": status, "pid": "autoscaler", "is_err": False})
        dispatcher.emit({"lines": [*status, event], "pid": "autoscaler", "is_err": False})
    logged = " ".join(r.getMessage() for r in caplog.records if r.name == "ray_workers")
    assert "Adding 1 node(s) of type gpu-worker." in logged
    assert "Autoscaler status" not in logged and "GPU" not in logged


def test_summary_ends_with_where_the_outputs_are(capsys):
    model = CoTrainClusterer()  # what fit would have set
    model.__dict__.update(labels_=[0, 1, 1], cluster_names_=["a", "b"], run_dir_="/runs/x",
                          metrics_={"acc_mean": 60.0, "acc_std": 1.0, "nmi_mean": 70.0, "nmi_std": 2.0, "ari_mean": 40.0},
                          iterations_=[{"iteration": 0, "acc": 60.0, "nmi": 70.0, "pairs": 12, "seconds": 3.0,
                                        "dpo_loss_start": 0.69, "dpo_loss_end": 0.52}],
                          embedder_path_="/runs/x/iter0_embedder/model", adapter_path_="")
    print_summary(model)
    lines = capsys.readouterr().out.splitlines()
    assert "DPO loss" in lines[0] and "0.6900 -> 0.5200" in lines[1]
    assert lines[-2].startswith("ACC 60.00 ± 1.00") and lines[-1] == "outputs: /runs/x"

    model.baseline_metrics_ = {"acc_mean": 79.33, "acc_std": 0.5, "nmi_mean": 80.0, "nmi_std": 0.25,
                               "ari_mean": 55.0, "ari_std": 1.0}
    print_summary(model)
    lines = capsys.readouterr().out.splitlines()
    head, method, baseline = lines[-4:-1]
    assert head.split() == ["ACC", "NMI", "ARI"]
    assert method.split()[:4] == ["cotrain", "60.00", "±", "1.00"]
    assert baseline.startswith("baseline (same texts, same K)") and "79.33 ± 0.50" in baseline
    assert method.index("60.00") == baseline.index("79.33")  # one column each


@pytest.mark.slow
def test_llmclust_run_keeps_ray_off_the_terminal_and_ends_with_the_report(tmp_path):
    run_dir = tmp_path / "run"
    job = subprocess.run([sys.executable, "-m", "llmclust", "run", "--config", "ray_configs/local.yaml",
                          f"corpus.path={SMALL_CSV}", f"run.dir={run_dir}", "clustering.n_clusters=10",
                          "clustering.seeds=[0]", "embedding.cpus_per_actor=1"],
                         cwd=REPO, env=job_env(), capture_output=True, text=True, timeout=900)
    assert job.returncode == 0, job.stderr[-3000:]
    lines = job.stdout.splitlines()
    assert lines[-1] == str(run_dir / "report" / "index.html") and Path(lines[-1]).exists()
    assert f"outputs: {run_dir}" in lines and any(line.startswith("ACC") for line in lines)
    assert "stage embed done: 200 rows" in job.stderr and f"-> {run_dir / 'embed'}" in job.stderr
    for ray_noise in ("worker.py", "streaming_executor", "core_worker", "Running Dataset", "pid="):
        assert ray_noise not in job.stderr, job.stderr
    log = (run_dir / "job.log").read_text()
    assert "Started a local Ray instance" in log and "stage embed done" in log


@pytest.mark.slow
def test_a_method_run_ends_with_its_metrics_beside_the_baseline(tmp_path):
    run_dir = tmp_path / "run"
    # clusterllm with no fine-tuning round: a method run with no LLM call, cheap enough for a test
    job = subprocess.run([sys.executable, "-m", "llmclust", "run", "--config", "ray_configs/clusterllm_local.yaml",
                          f"corpus.path={SMALL_CSV}", f"run.dir={run_dir}", "corpus.limit=60", "clustering.n_clusters=10",
                          "clustering.seeds=[0]", "clusterllm.iterations=0", "embedding.cpus_per_actor=1"],
                         cwd=REPO, env=job_env(), capture_output=True, text=True, timeout=900)
    assert job.returncode == 0, job.stderr[-3000:]
    result = json.loads((run_dir / "result.json").read_text())
    base = result["baseline_metrics"]
    assert base["k"] == 10 and 0 < base["acc_mean"] <= 100 and 0 < base["nmi_mean"] <= 100
    lines = job.stdout.splitlines()
    method = next(line for line in lines if line.startswith("clusterllm "))
    baseline = next(line for line in lines if line.startswith("baseline (same texts, same K)"))
    assert f"{base['acc_mean']:6.2f} ± " in baseline and f"{result['metrics']['acc_mean']:6.2f} ± " in method
    assert lines[-1] == str(run_dir / "report" / "index.html")
    assert "baseline (same texts, same K)" in Path(lines[-1]).read_text()
