"""LUMI: the logic around the LLM answers, config checks, and the whole job with the real SmolLM2."""

import csv
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from helpers import config_file
from llmclust.config import ConfigError
from llmclust.methods.lumi.config import LumiConfig
from llmclust.methods.lumi.stages import candidate_labels, chosen_labels, label_names
from llmclust.pipeline.evaluation import scores

REPO_CONFIG = config_file("lumi")


def test_candidate_labels_are_distinct_and_nearest_first():
    label_index = np.array([0, 1, 1, 2, 0])
    neighbours = np.array([[1, 2, 3, 4], [0, 4, 2, 3]])
    assert candidate_labels(label_index, neighbours, 2) == [[1, 2], [0, 1]]


def test_chosen_labels_reads_numbers_and_quoted_labels():
    candidates = ["card arrival", "lost card", "top up failed"]
    assert chosen_labels("1, 3", [1, 3], candidates) == ([0, 2], 0)
    assert chosen_labels("1. lost card", [1], candidates) == ([0, 1], 0)  # SmolLM2 quotes the label
    assert chosen_labels("7", [7], candidates) == ([], 1)
    assert chosen_labels("none", [], candidates) == ([], 0)


def test_label_names_are_the_most_common_member_labels():
    pseudo = [["card arrival"], ["card arrival", "lost card"], ["lost card"], ["top up"]]
    assert label_names(pseudo, np.array([0, 0, 0, 1]), 3) == ["card arrival / lost card", "top up", "cluster 2"]


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="task"):
        LumiConfig(task="no colon")
    with pytest.raises(ConfigError, match="candidate_search"):
        LumiConfig(candidate_labels=10, candidate_search=5)


@pytest.mark.slow
def test_lumi_job_end_to_end_with_smollm2(tmp_path, small_csv, ray_cluster):
    """The whole job on 30 Banking77 texts (3 intents) on local Ray; a rerun makes no LLM call."""
    from llmclust.methods import LumiClusterer
    from llmclust.methods.job import load_job_config

    rows = list(csv.DictReader(small_csv.open()))
    keep = sorted({r["category"] for r in rows})[:3]
    subset = tmp_path / "subset.csv"
    with subset.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["text", "category"])
        w.writeheader()
        w.writerows([r for r in rows if r["category"] in keep][:30])
    overrides = [f"corpus.path={subset}", f"run.dir={tmp_path / 'run'}", "clustering.n_clusters=3",
                 "clustering.seeds=[0,1]", "llm.cpus_per_actor=1", "llm.batch_size=8", "lumi.candidate_labels=4",
                 "lumi.candidate_search=8", "lumi.label_max_tokens=8", "lumi.choice_max_tokens=6",
                 # every LUMI stage with the real model; the audit (which stops SmolLM2 after its labels)
                 # runs with the real model in tests/methods/test_contract.py
                 "audit.enabled=false"]
    cfg = load_job_config(REPO_CONFIG, overrides)
    model = LumiClusterer(cfg).fit()
    assert len(model.labels_) == 30 and model.cluster_centers_.shape[0] == 3
    assert all(model.pseudo_labels_[i] and model.pseudo_labels_[i][0] for i in range(30))
    assert model.lumi_report_["distinct_labels"] >= 2
    # the metrics are those of the published labels against the 3 intents, recomputed here
    truth = [r["category"] for r in csv.DictReader(subset.open())]
    best = str(json.loads((tmp_path / "run" / "result.json").read_text())["seed"])
    assert model.metrics_["per_seed"][best]["acc"] == pytest.approx(scores(truth, model.labels_)["acc"])
    assert model.metrics_["acc_mean"] >= 60  # 3 intents: chance is 33
    assignments = pq.read_table(tmp_path / "run" / "assignments.parquet").to_pydict()
    assert all(name and not name.startswith("cluster ") for name in assignments["cluster_name"])
    answers = pq.read_table(tmp_path / "run" / "lumi_labels" / "answers.parquet")
    assert answers.num_rows == 30 and "prompt" in answers.column_names
    assert model.predict(["where is my card?"]).shape == (1,)

    # a rerun in a fresh run directory sharing the cache asks the LLM nothing
    cfg2 = load_job_config(REPO_CONFIG, overrides[:1] + [f"run.dir={tmp_path / 'run2'}",
                                                         f"llm.cache_dir={tmp_path / 'run' / 'llm_cache'}"] + overrides[2:])
    LumiClusterer(cfg2).fit()
    for stage in ("lumi_labels", "lumi_multilabel"):
        manifest = json.loads((tmp_path / "run2" / stage / "manifest.json").read_text())
        assert manifest["calls"] == 0 and manifest["cache_hits"] >= 30


def _topic_corpus(per=20, seed=0):
    rng = np.random.default_rng(seed)
    topics = ["card arrival", "lost card", "top up failed"]
    centres = rng.normal(size=(3, 16))
    truth = np.repeat(np.arange(3), per)
    vectors = centres[truth] + 0.2 * rng.normal(size=(3 * per, 16))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    return [f"{topics[t]} please help {i}" for i, t in enumerate(truth)], vectors, truth


def test_representatives_cover_the_corpus_and_every_text_copies_one():
    from llmclust.methods.lumi.stages import representatives
    from llmclust.pipeline.neighbours import NeighboursConfig

    _, vectors, truth = _topic_corpus()
    sample = representatives(vectors, 6, NeighboursConfig(), seed=0)
    assert 3 <= len(sample.rows) <= 6 and (np.diff(sample.rows) > 0).all()
    assert (sample.source[sample.rows] == np.arange(len(sample.rows))).all()  # the asked copy themselves
    assert (truth[sample.rows[sample.source]] == truth).mean() > 0.95  # copies come from the same topic
    assert set(truth[sample.rows]) == {0, 1, 2} and (sample.cosine > 0.5).all()


def hashed_embed(run, cfg, table, upstream, name):
    """Label vectors hashed from the label text: no model needed."""
    from llmclust import schema

    stage = run.stage(name, upstream.fingerprint)
    stage.finish(table.num_rows)
    rng = [np.random.default_rng(abs(hash(t)) % 2**32) for t in table.column(schema.TEXT).to_pylist()]
    return np.stack([r.normal(size=16) for r in rng]).astype(np.float32), stage


class TopicLLM:
    """Labels a text by its first two words; picks the first candidate label."""

    model_id = "topic-llm"

    def __init__(self):
        self.prompts = 0

    def generate(self, chats, params):
        self.prompts += len(chats)
        out = []
        for c in chats:
            text = c[-1]["content"]
            out.append(["1"] if "Possible intents" in text else [" ".join(text.split("Customer message: ")[1].split()[:2])])
        return out


def test_lumi_asks_the_llm_about_a_sample_and_reports_the_coverage(tmp_path, monkeypatch):
    import pyarrow as pa
    from llmclust import schema
    from llmclust.methods.job import load_job_config
    from llmclust.methods.lumi import stages
    from llmclust.store.runs import RunDir

    texts, vectors, truth = _topic_corpus()
    llm = TopicLLM()
    monkeypatch.setattr("llmclust.llm.stage.make_backend", lambda cfg: llm)

    monkeypatch.setattr(stages, "embed_stage", hashed_embed)
    # hashed label vectors mean nothing to the embedder, so the audit is off here (tested below)
    cfg = load_job_config(None, ["method=lumi", "lumi.llm_sample=9", "llm.num_actors=0", "neighbours.k=5",
                                 "lumi.candidate_labels=3", "lumi.candidate_search=10", "lumi.label_context_k=0",
                                 "audit.enabled=false"])
    run = RunDir(tmp_path / "run")
    up = run.stage("embed", "fake")
    up.finish(len(texts))
    table = pa.table({schema.ROW: np.arange(len(texts)), schema.TEXT: texts})
    result = stages.run_lumi(run, cfg, table, vectors, up)
    asked = result.report["texts_asked"]
    assert 3 <= asked <= 9 and llm.prompts == 2 * asked  # a label and a multi-label answer per asked text
    assert result.report["texts_copied"] == len(texts) - asked and result.report["copied_cosine_mean"] > 0.5
    topics = np.array(["card arrival", "lost card", "top up"])
    first = np.array([p[0] for p in result.pseudo_labels])
    assert (first == topics[truth]).mean() > 0.95 and result.text_pooled.shape == vectors.shape
    manifest = json.loads((tmp_path / "run" / "lumi_pool" / "manifest.json").read_text())
    assert manifest["texts_asked"] == asked and manifest["llm_sample"] == 9


class PositionBiasedLLM(TopicLLM):
    """Labels like TopicLLM, but answers every closed question with its last choice ("no")."""

    def generate(self, chats, params):
        if params.choices:
            self.prompts += len(chats)
            return [["-3.0"] * (len(params.choices) - 1) + ["-0.1"] for _ in chats]
        return super().generate(chats, params)


def test_an_llm_the_audit_does_not_trust_leaves_the_embedders_vectors(tmp_path, monkeypatch):
    import pyarrow as pa
    from llmclust import schema
    from llmclust.methods.job import load_job_config
    from llmclust.methods.lumi import stages
    from llmclust.store.runs import RunDir

    texts, vectors, _ = _topic_corpus()
    llm = PositionBiasedLLM()
    monkeypatch.setattr("llmclust.llm.stage.make_backend", lambda cfg: llm)
    monkeypatch.setattr(stages, "embed_stage", hashed_embed)
    cfg = load_job_config(None, ["method=lumi", "llm.num_actors=0", "neighbours.k=5", "lumi.label_context_k=0"])
    run = RunDir(tmp_path / "run")
    up = run.stage("embed", "given")
    up.finish(len(texts))
    table = pa.table({schema.ROW: np.arange(len(texts)), schema.TEXT: texts})
    result = stages.run_lumi(run, cfg, table, vectors, up)
    assert result.audit.weight == 0 and result.audit.consistent == 0
    assert "weight 0" in result.report["audit"]["decision"]
    assert result.text_pooled is vectors  # no pooling: the embedder's own vectors
    assert not (tmp_path / "run" / "lumi_multilabel").exists()  # and no multi-label calls were made
    questions = min(cfg.audit.sample, len(texts))
    assert len(texts) < llm.prompts <= len(texts) + 4 * questions  # labels, then the audit: 2 yes/no x 2 orders
