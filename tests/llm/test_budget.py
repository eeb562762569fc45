"""The LLM plan written before any LLM work, and the llm.max_calls cap."""

import json

import pytest
from llmclust.llm import LLMConfig, SamplingParams, generate_stage
from llmclust.llm.budget import BudgetExceeded, CallLedger, announce
from llmclust.methods import make_clusterer
from llmclust.methods.job import JobConfig, load_job_config
from llmclust.store.runs import RunDir

TEXTS = [f"my card number {i} has not arrived" for i in range(50)]


def plan(cfg, texts):
    return make_clusterer(cfg).llm_plan(texts)


def test_each_method_declares_its_calls():
    lumi = load_job_config(None, ["method=lumi", "lumi.llm_sample=20", "lumi.llm_names=true", "clustering.n_clusters=7"])
    # the audit puts the 20 labels (and a neighbour's) back to the LLM, yes / no, in two orders
    assert [(s.stage, s.calls) for s in plan(lumi, TEXTS)] == [("lumi_labels", 20), ("llm_labels_audit", 80),
                                                               ("lumi_multilabel", 20), ("lumi_names", 7)]
    auto = load_job_config(None, ["method=lumi", "lumi.llm_names=true", "clustering.n_clusters=auto"])
    assert plan(auto, TEXTS)[-1].calls == 25  # K not chosen yet: at most k_max, half of the 50 texts
    cl = load_job_config(None, ["method=clusterllm", "clusterllm.iterations=2", "clusterllm.triplets.budget=30",
                                "clusterllm.choose_k=true", "clusterllm.granularity.k_max=40",
                                "clusterllm.triplet_question=letters"])
    # every closed question in both orders, scored without retries
    stages = plan(cl, TEXTS)
    assert [(s.stage, s.calls) for s in stages] == [("llm_judge_iter1", 60), ("llm_judge_iter2", 60),
                                                    ("llm_granularity", 76)]
    assert all(s.calls_with_retries == s.calls and s.generated_tokens == s.calls for s in stages)
    same_pair = load_job_config(None, ["method=clusterllm", "clusterllm.triplets.budget=30",
                                       "clusterllm.triplet_question=same_pair"])
    assert [(s.stage, s.calls) for s in plan(same_pair, TEXTS)] == [("llm_judge_iter1", 120)]  # two pairs a view
    ct = load_job_config(None, ["method=cotrain", "cotrain.iterations=1", "cotrain.temperatures=[0.5,1.0]"])
    stages = plan(ct, TEXTS)
    assert [s.stage for s in stages] == ["iter0_greedy", "iter0_sample1", "iter0_sample2", "llm_interpretations_audit",
                                         "iter1_greedy"]
    interpretations = [s for s in stages if s.stage != "llm_interpretations_audit"]
    assert all(s.calls == 50 and s.calls_with_retries == 100 and s.generated_tokens == 50 * 64 for s in interpretations)
    assert stages[3].calls == 200  # 50 interpretations (and a neighbour's) put back to the LLM in two orders
    assert stages[0].prompt_tokens > 50 * 50  # the system prompt and the worked example are counted
    assert plan(JobConfig(), TEXTS) == []


def test_announce_writes_the_plan_and_refuses_one_that_does_not_fit(tmp_path):
    run = RunDir(tmp_path)
    cfg = load_job_config(None, ["method=lumi", "llm.max_calls=300"])
    announce(run, cfg, TEXTS, plan(cfg, TEXTS))  # 50 labels, 200 audit questions, 50 multi-label choices
    written = json.loads((tmp_path / "llm_plan.json").read_text())
    assert written["total"]["calls"] == 300 and written["max_calls"] == 300
    with pytest.raises(BudgetExceeded, match=r"needs 360 LLM calls .* llm.max_calls=300"):
        announce(run, cfg, TEXTS + TEXTS[:10], plan(cfg, TEXTS + TEXTS[:10]))


class Counting:
    model_id = "counting"

    def __init__(self):
        self.sent = 0

    def generate(self, chats, params):
        self.sent += len(chats)
        return [["answer"] for _ in chats]


def test_the_ledger_stops_a_stage_before_it_sends_anything(tmp_path):
    run = RunDir(tmp_path)
    up = run.stage("up", "x")
    cfg, backend = LLMConfig(num_actors=0, max_calls=5), Counting()
    chats = [[{"role": "user", "content": t}] for t in TEXTS[:4]]
    generate_stage(run, "first", chats, SamplingParams(), cfg, up, backend=backend)
    generate_stage(run, "cached", chats, SamplingParams(), cfg, up, backend=backend)  # cache hits are free
    assert backend.sent == 4 and CallLedger(run, 5).spent() == {"calls": 4, "by_stage": {"first": 4}}
    with pytest.raises(BudgetExceeded, match=r"llm second: 2 prompts to send, but this run has sent 4 of llm.max_calls=5"):
        generate_stage(run, "second", [[{"role": "user", "content": t}] for t in TEXTS[10:12]], SamplingParams(), cfg,
                       up, backend=backend)
    assert backend.sent == 4
