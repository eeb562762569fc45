"""The spine end to end on a real local Ray: outputs, metrics, rerun skips, kill + resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from helpers import REPO
from llmclust import schema
from llmclust.methods import KMeansClusterer, NotFittedError
from llmclust.pipeline.choose_k import REPEATS

pytestmark = pytest.mark.slow


def manifests(run_dir: Path) -> dict:
    return {p.parent.name: json.loads(p.read_text()) for p in run_dir.glob("*/manifest.json")}


def test_fit_writes_outputs_metrics_and_rerun_skips(ray_cluster, job_config):
    model = KMeansClusterer(job_config)
    with pytest.raises(NotFittedError):
        model.predict(["card"])
    model.fit()
    run = Path(job_config.run.dir)
    # the local config clusters through a UMAP reducer: predict assigns to its 5-d KMeans centres
    assert len(model.labels_) == 200 and model.cluster_centers_.shape == (10, 5)

    assignments = pq.read_table(run / "assignments.parquet")
    assert assignments.num_rows == 200
    assert set(assignments.column_names) >= {schema.ID, schema.TEXT, schema.CLUSTER, schema.CLUSTER_NAME, schema.SCORE}
    clusters = pq.read_table(run / "clusters.parquet")
    assert sorted(clusters.column(schema.SIZE).to_pylist()) != [0] * 10
    assert sum(clusters.column(schema.SIZE).to_pylist()) == 200
    result = json.loads((run / "result.json").read_text())
    assert result["k"] == 10 and Path(result["embedder"]).exists()
    # 10 well-separated intents: MiniLM + KMeans gets most of them right
    assert result["metrics"]["acc_mean"] > 60 and result["metrics"]["nmi_mean"] > 60
    assert set(manifests(run)) == {"corpus", "embed", "reduce", "cluster", "evaluate"}
    # start-up (actor pool, model load) is recorded per stage; the reduce stage found numba compiled
    # in the background while embedding ran, or waited for the rest of that warm-up
    assert 0 < result["startup_s"]["embed"] == manifests(run)["embed"]["startup_s"] < manifests(run)["embed"]["seconds"]
    assert 0 <= manifests(run)["reduce"]["warm_up_wait_s"] < manifests(run)["reduce"]["seconds"]

    # predict puts training texts back into their own clusters
    texts = assignments.column(schema.TEXT).to_pylist()[:40]
    agree = np.mean(model.predict(texts) == np.asarray(assignments.column(schema.CLUSTER).to_pylist()[:40]))
    assert agree > 0.9

    before = manifests(run)
    again = KMeansClusterer(job_config).fit()
    assert manifests(run) == before  # nothing recomputed
    assert (again.labels_ == model.labels_).all()


def _job(run_dir: Path, csv: Path) -> list[str]:
    return [sys.executable, str(REPO / "cluster_jobs" / "baseline.py"), "--no-report",
            "--config", str(REPO / "ray_configs" / "local.yaml"),
            f"corpus.path={csv}", f"run.dir={run_dir}", "clustering.n_clusters=10", "clustering.seeds=[0,1]",
            "embedding.chunk_rows=40", "embedding.batch_size=20", "embedding.cpus_per_actor=1"]


def test_killed_job_resumes_from_its_parts_with_the_same_result(tmp_path, small_csv):
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    run_dir = tmp_path / "killed"
    proc = subprocess.Popen(_job(run_dir, small_csv), env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first_part = run_dir / "embed" / "parts" / "part-00000.parquet"
    deadline = time.time() + 240
    while not first_part.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert first_part.exists(), "the job never wrote its first embedding part"
    assert not (run_dir / "embed" / "manifest.json").exists(), "killed too late: embed stage already finished"
    stamp = first_part.stat().st_mtime_ns

    done = subprocess.run(_job(run_dir, small_csv), env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert first_part.stat().st_mtime_ns == stamp  # the finished part was reused, not recomputed
    assert "ACC" in done.stdout

    fresh = tmp_path / "fresh"
    clean = subprocess.run(_job(fresh, small_csv), env=env, capture_output=True, text=True, timeout=600)
    assert clean.returncode == 0, clean.stderr[-3000:]
    resumed = pq.read_table(run_dir / "assignments.parquet").column(schema.CLUSTER).to_pylist()
    uninterrupted = pq.read_table(fresh / "assignments.parquet").column(schema.CLUSTER).to_pylist()
    assert resumed == uninterrupted


class _AuditedClusterLLM:
    """ClusterLLM that reports LLM facts the way a method fills ``Representation.audit``."""

    AUDIT = {"judge answers": 12, "agreement with the embedder": 0.75, "unparseable": 0}

    @staticmethod
    def make(cfg):
        from dataclasses import replace

        from llmclust.methods.clusterllm.clusterer import ClusterLLMClusterer

        class Audited(ClusterLLMClusterer):
            def representation(self, run, table, corpus):
                return replace(super().representation(run, table, corpus), audit=dict(_AuditedClusterLLM.AUDIT))

        return Audited(cfg)


def test_a_method_reports_the_baseline_on_the_same_texts_and_its_llm_audit(ray_cluster, tmp_path, small_csv):
    from llmclust.methods.job import load_job_config
    from llmclust.report import write_report

    run = tmp_path / "run"
    # clusterllm with no fine-tuning round: no LLM call, and the method's space *is* the baseline's
    overrides = [f"corpus.path={small_csv}", f"run.dir={run}", "corpus.limit=60", "clustering.n_clusters=10",
                 "clustering.seeds=[0,1]", "clusterllm.iterations=0", "embedding.cpus_per_actor=1"]
    model = _AuditedClusterLLM.make(load_job_config(REPO / "ray_configs" / "clusterllm_local.yaml", overrides)).fit()
    result = json.loads((run / "result.json").read_text())
    base = result["baseline_metrics"]
    assert base["k"] == 10 and 0 < base["acc_mean"] <= 100 and 0 < base["nmi_mean"] <= 100
    assert set(base["per_seed"]) == {"0", "1"}
    # same texts, same untrained vectors, same K and seeds: the same numbers as the method
    for key in ("acc_mean", "nmi_mean", "ari_mean"):
        assert base[key] == result["metrics"][key] == model.baseline_metrics_[key]
    assert result["llm_audit"] == model.llm_audit_ == _AuditedClusterLLM.AUDIT
    stages = manifests(run)
    assert {"baseline_reduce", "baseline_cluster", "baseline_evaluate"} <= set(stages)
    assert [name for name in stages if "embed" in name] == ["embed"]  # the stored embed stage was reused

    page = write_report(run).read_text()
    assert 'id="baseline-comparison"' in page and "baseline (same texts, same K)" in page
    assert "LLM signal audit" in page and 'id="llm-audit"' in page and "agreement with the embedder" in page

    # switched off: nothing recomputed (the evaluation switch is not part of any stage's fingerprint)
    before = manifests(run)
    off = _AuditedClusterLLM.make(load_job_config(REPO / "ray_configs" / "clusterllm_local.yaml",
                                                  overrides + ["evaluation.compare_baseline=false"])).fit()
    assert off.baseline_metrics_ is None and "baseline_metrics" not in json.loads((run / "result.json").read_text())
    assert manifests(run) == before


def test_auto_k_is_chosen_once_recorded_and_clustered_with(ray_cluster, job_config, tmp_path):
    from dataclasses import replace

    cfg = replace(job_config, clustering=replace(job_config.clustering, n_clusters="auto"),
                  run=replace(job_config.run, dir=str(tmp_path / "auto")))
    model = KMeansClusterer(cfg).fit()
    run = Path(cfg.run.dir)
    result = json.loads((run / "result.json").read_text())
    choice = result["k_choice"]
    assert model.n_clusters_ == result["k"] == choice["k"] == len(set(model.labels_))
    assert choice["band"][0] <= choice["k"] <= choice["band"][1] and choice["curve"]["k"][0] == 2
    assert 5 <= choice["k"] <= 20  # 10 well-separated intents
    assert choice["final_k"] == choice["k"] and choice["decided_by"] == "the estimate"
    assert len(choice["k_by_sample"]) == len(choice["curve"]["by_sample"]) == REPEATS  # whatever the clustering seeds
    assert choice["k_stderr"] == pytest.approx(np.std(choice["k_by_sample"], ddof=1) / np.sqrt(REPEATS), abs=0.05)
    assert model.config.clustering.n_clusters == "auto"  # the user's config is kept (a second fit chooses again)
    # the estimate reduced samples of its own: the clustering's reduce stage comes after it, with its K
    assert set(manifests(run)) == {"corpus", "embed", "reduce", "choose_k", "cluster", "evaluate"}
    assert manifests(run)["choose_k"]["k"] == choice["k"]
