"""Co-training with an LLM whose interpretations the audit does not trust: it clusters the raw
texts, trains nothing, and reports the decision."""

import json

import numpy as np
import pytest
from llmclust.methods.job import load_job_config


class PositionBiasedInterpreter:
    """Writes a parseable interpretation of every text; answers every closed question "B"."""

    model_id = "position-biased"

    def generate(self, chats, params):
        if params.choices:
            return [["-3.0", "-0.1"] for _ in chats]
        return [["Reasoning: the customer asks something.\nKeywords: bank, card"] * params.n for _ in chats]


@pytest.mark.slow
def test_untrusted_interpretations_leave_the_raw_texts(ray_cluster, small_csv, tmp_path, monkeypatch):
    from llmclust.methods import CoTrainClusterer, KMeansClusterer

    monkeypatch.setattr("llmclust.llm.stage.make_backend", lambda cfg: PositionBiasedInterpreter())
    overrides = [f"corpus.path={small_csv}", "corpus.limit=60", "clustering.n_clusters=10", "clustering.seeds=[0]",
                 "evaluation.label_column=category", "llm.num_actors=0", "cotrain.iterations=1",
                 "cotrain.temperatures=[1.0]"]
    cfg = load_job_config("ray_configs/cotrain_local.yaml", [*overrides, f"run.dir={tmp_path / 'run'}"])
    model = CoTrainClusterer(cfg).fit()
    audit = model.llm_audit_["interpretations"]
    assert audit["weight"] == 0 and audit["consistent"] == 0
    assert model.iterations_ == [json.loads((tmp_path / "run" / "iterations.json").read_text())[0]]
    assert model.iterations_[0]["space"].startswith("raw texts")
    assert not list((tmp_path / "run").glob("iter0_dpo")) and not (tmp_path / "run" / "iter1_greedy").exists()
    baseline = KMeansClusterer(load_job_config("ray_configs/local.yaml",
                                               [*overrides, f"run.dir={tmp_path / 'baseline'}"])).fit()
    np.testing.assert_array_equal(model.labels_, baseline.labels_)
    assert json.loads((tmp_path / "run" / "result.json").read_text())["llm_audit"]["interpretations"]["weight"] == 0
