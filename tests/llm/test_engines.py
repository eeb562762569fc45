"""Engine actors are loaded once and shared by the LLM stages of a job (real SmolLM2 on local Ray)."""

import time

import pytest
from llmclust.llm import LLMConfig, SamplingParams, generate_stage
from llmclust.llm.engines import engine_stats, keep_engines
from llmclust.store.runs import RunDir


def chats(texts):
    return [[{"role": "user", "content": f"Name the banking intent in two words: {t}"}] for t in texts]


@pytest.mark.slow
def test_stages_inside_keep_engines_and_retries_share_one_engine(ray_cluster, tmp_path):
    run = RunDir(tmp_path / "run")
    upstream = run.stage("up", 1)
    cfg = LLMConfig(num_actors=1, cpus_per_actor=1, batch_size=4, cache=False)
    before = engine_stats()["engines_started"]
    never_parses = lambda answer: None  # noqa: E731 - every row goes through the retry pass too
    with keep_engines():
        first = generate_stage(run, "a", chats(["lost card", "top up failed"]), SamplingParams(max_tokens=4), cfg,
                               upstream, parse=never_parses)
        second = generate_stage(run, "b", chats(["refund missing"]), SamplingParams(max_tokens=4, temperature=0.7),
                                cfg, upstream)
    assert first.calls == 4 and first.manifest["retried"] == 2 and second.calls == 1
    assert engine_stats()["engines_started"] == before + 1  # 3 generation passes, one engine load

    # outside keep_engines a stage frees its engines at its end: their CPUs go to the next stage
    generate_stage(run, "c", chats(["card arrival"]), SamplingParams(max_tokens=4), cfg, upstream)
    assert engine_stats()["engines_started"] == before + 2
    for _ in range(100):  # ray.kill frees the actor's CPUs asynchronously
        if ray_cluster.available_resources().get("CPU", 0) == ray_cluster.cluster_resources()["CPU"]:
            break
        time.sleep(0.1)
    assert ray_cluster.available_resources().get("CPU", 0) == ray_cluster.cluster_resources()["CPU"]
