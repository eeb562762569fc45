"""The scikit-learn contract, checked on every clusterer with the real small models.

fit returns self and leaves its config as given; labels_, cluster_centers_, cluster_names_
and n_clusters_ agree with each other; predict assigns to cluster_centers_; fit_predict
gives labels_; a second fit in the same run directory reuses every finished stage and gives
the same labels.
"""

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import GPU_ON, TINY, config_file
from llmclust.methods import CLUSTERERS, make_clusterer
from llmclust.methods.job import load_job_config

# 4 intents x 4 texts, written here: the contract does not depend on a data file
TEXTS = [
    "I lost my card", "my card is missing", "where is my card, I can't find it", "card lost yesterday",
    "my top up failed", "why did my top-up not work", "top up was declined", "topping up my account failed",
    "the exchange rate is wrong", "why is the exchange rate so bad", "exchange rate looks off", "bad rate for euros",
    "I want a refund", "my refund has not arrived", "how do I get my money back", "refund still missing",
]

def manifests(run_dir: Path) -> dict[str, int]:
    return {str(p.relative_to(run_dir)): p.stat().st_mtime_ns for p in run_dir.rglob("manifest.json")}


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(CLUSTERERS))
def test_clusterer_contract(method, ray_cluster, tmp_path):
    cfg = load_job_config(config_file(method), [f"run.dir={tmp_path / 'run'}", "corpus.path=", "evaluation.label_column=",
                                        "clustering.n_clusters=4", "clustering.seeds=[0,1]", "llm.batch_size=16",
                                        *TINY[method], *GPU_ON])
    given = copy.deepcopy(cfg)
    model = make_clusterer(cfg)
    assert model.fit(TEXTS) is model
    assert cfg == given  # fit never writes into its config (ClusterLLM's chosen K included)

    k = model.n_clusters_
    assert model.labels_.shape == (len(TEXTS),) and set(model.labels_) <= set(range(k))
    assert len(model.cluster_names_) == k and model.cluster_centers_.shape[0] == k
    assert model.space_centers_.shape[0] == k
    if method != "clusterllm":
        assert k == 4
    result = json.loads((model.run_dir_ / "result.json").read_text())
    assert result["method"] == method and result["k"] == k
    if method == "cotrain":  # DPO ran as on a GPU node: the Ray Train worker held the GPU, DeepSpeed ran ZeRO-2
        assert json.loads((model.run_dir_ / "iter0_dpo" / "manifest.json").read_text())["zero_stage"] == 2

    # predict is nearest of cluster_centers_ to represent(texts); on the corpus's own texts it
    # reproduces labels_ (exactly for the baseline; the LLM methods clustered another space)
    own = model.predict(TEXTS)
    space = model.represent(TEXTS)
    assert space.shape[1] == model.cluster_centers_.shape[1]
    nearest = np.argmin(((space[:, None] - model.cluster_centers_[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(own, nearest)
    if method == "baseline":
        assert (own == model.labels_).mean() >= 0.9
    assert model.predict(["where is my new card?"]).shape == (1,)

    # refit in the same run directory: every stage reused, same labels
    before = manifests(model.run_dir_)
    again = make_clusterer(copy.deepcopy(given))
    np.testing.assert_array_equal(again.fit_predict(TEXTS), model.labels_)
    assert manifests(model.run_dir_) == before
    np.testing.assert_allclose(again.cluster_centers_, model.cluster_centers_)
