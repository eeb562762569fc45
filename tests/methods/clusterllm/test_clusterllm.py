import json
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO
from llmclust.config import ConfigError
from llmclust.methods import ClusterLLMClusterer, clusterer_class
from llmclust.methods.clusterllm.judges import OracleJudge
from llmclust.methods.clusterllm.stages import training_triplets
from llmclust.methods.job import load_job_config


def small_config(small_csv, run_dir, *extra):
    return load_job_config(REPO / "ray_configs" / "clusterllm_local.yaml", [
        f"corpus.path={small_csv}", f"run.dir={run_dir}", "clustering.n_clusters=10", "clustering.seeds=[0]",
        "evaluation.label_column=category", "clusterllm.triplets.budget=48", "clusterllm.triplets.coarse_k=10",
        "clusterllm.training.max_steps=2", "clusterllm.training.batch_size=8", "clusterllm.training.cpus_per_worker=1",
        "clusterllm.granularity.k_max=30", *extra])


def test_registered_and_configured():
    assert clusterer_class("clusterllm") is ClusterLLMClusterer
    cfg = load_job_config(REPO / "ray_configs" / "clusterllm_local.yaml")
    assert cfg.method == "clusterllm" and len(cfg.clusterllm.granularity.demonstrations) == 4
    with pytest.raises(ConfigError, match="clusterllm.temperature"):
        load_job_config(None, ["clusterllm.temperature=0"])
    with pytest.raises(ConfigError, match="unknown key"):  # the oracle is not reachable from config
        load_job_config(None, ["clusterllm.judge=oracle"])


def test_training_triplets_put_the_chosen_choice_second_and_drop_unanswered():
    texts = ["a", "b", "c"]
    rows = np.array([[0, 1, 2], [0, 1, 2], [0, 1, 2]])
    assert training_triplets(rows, np.array([1, 2, 0]), texts) == [("a", "b", "c"), ("a", "c", "b")]


@pytest.mark.slow
def test_oracle_fit_fine_tunes_chooses_k_and_resumes(ray_cluster, small_csv, tmp_path, monkeypatch):
    """Two iterations with a relative run.dir: from iteration 2 the embedder handed to the Ray
    Train workers lives in the run directory, and a worker's working directory is not ours."""
    import csv

    labels = [r["category"] for r in csv.DictReader(open(small_csv))]
    monkeypatch.chdir(tmp_path)
    # 48 triplets give the audit ~23 answers to compare: too few to pass the default z = 2, so lower it
    extra = ["clusterllm.choose_k=true", "clusterllm.iterations=2", "clusterllm.granularity.pairs_per_merge=4",
             "audit.min_z=1", "clustering.n_clusters=auto"]
    cfg = small_config(small_csv, "run", *extra)
    model = ClusterLLMClusterer(cfg, judge=OracleJudge(labels)).fit()
    run = Path(model.run_dir_)
    assert run == tmp_path / "run" and len(model.labels_) == len(labels)
    assert Path(model.embedder_path_) == run / "train_iter2" / "embedder" and Path(model.embedder_path_).is_dir()
    losses = json.loads((run / "train_iter1" / "losses.json").read_text())
    assert len(losses) == 2
    granularity = json.loads((run / "granularity" / "granularity.json").read_text())
    # the oracle judge knows the 10 intents: its pair answers, among the merge levels of the
    # estimate's band, must lead close to K = 10, and result.json says that they set K
    assert abs(granularity["k"] - 10) <= 3, granularity["k"]
    assert model.n_clusters_ == granularity["k"] and model.cluster_centers_.shape[0] == granularity["k"]
    choice = json.loads((run / "result.json").read_text())["k_choice"]
    assert choice["band"][0] <= granularity["k"] <= choice["band"][1] and choice["final_k"] == granularity["k"]
    assert choice["decided_by"] == "the judge's pair answers, among the merge levels of the estimate's band"
    assert set(granularity["classical"]) == {"silhouette", "elbow", "bic"}
    manifest = json.loads((run / "judge_iter1" / "manifest.json").read_text())
    assert manifest["choice_1"] + manifest["choice_2"] + manifest["unanswered"] == 48
    # the audit keeps the oracle's signal at full weight, and says so in result.json
    assert model.audit_["triplets_iter1"]["weight"] == 1 and model.audit_["pairs"]["weight"] == 1
    assert json.loads((run / "result.json").read_text())["llm_audit"]["triplets_iter1"]["consistent"] == 1

    # a rerun reuses every finished stage (no new training) and gives the same answer
    stamp = (run / "train_iter1" / "manifest.json").stat().st_mtime_ns
    again = ClusterLLMClusterer(small_config(small_csv, "run", *extra), judge=OracleJudge(labels)).fit()
    assert (run / "train_iter1" / "manifest.json").stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(again.labels_, model.labels_)
    assert again.predict(["I still have not received my card"]).shape == (1,)


class LastChoiceBackend:
    """An LLM that answers every closed question with its last allowed answer ("B", "No")."""

    model_id = "last-choice"

    def generate(self, chats, params):
        assert params.choices
        return [["-4.0"] * (len(params.choices) - 1) + ["-0.05"] for _ in chats]


@pytest.mark.slow
def test_a_position_biased_judge_trains_nothing_and_clusters_like_the_baseline(ray_cluster, small_csv, tmp_path):
    from llmclust.llm import LLMConfig
    from llmclust.methods import KMeansClusterer
    from llmclust.methods.clusterllm.judges import LLMJudge

    cfg = small_config(small_csv, tmp_path / "run", "clusterllm.choose_k=true", "clustering.n_clusters=auto")
    judge = LLMJudge(LLMConfig(num_actors=0), cfg.clusterllm.task, cfg.clusterllm.granularity.demonstrations,
                     backend=LastChoiceBackend())
    model = ClusterLLMClusterer(cfg, judge=judge).fit()
    assert model.audit_["triplets_iter1"]["weight"] == 0 and model.audit_["triplets_iter1"]["consistent"] == 0
    assert model.audit_["pairs"]["weight"] == 0 and model.n_clusters_ == model.k_estimate_.k  # K stays the estimate
    choice = json.loads((tmp_path / "run" / "result.json").read_text())["k_choice"]
    assert choice["decided_by"] == "the estimate alone: the audit gave the judge's pair answers no weight"
    assert not (tmp_path / "run" / "train_iter1").exists()  # nothing was fine-tuned
    baseline = KMeansClusterer(small_config(small_csv, tmp_path / "baseline", "clustering.n_clusters=auto")).fit()
    np.testing.assert_array_equal(model.labels_, baseline.labels_)
