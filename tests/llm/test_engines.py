"""Engine actors are loaded once and shared by the LLM stages of a job, released when a stage needs
their share (real SmolLM2 on local Ray)."""

import time

import pytest
from llmclust.llm import LLMConfig, SamplingParams, generate_stage
from llmclust.llm.engines import engine_stats, keep_engines
from llmclust.ray_session import require_resources
from llmclust.store.runs import RunDir


def chats(texts):
    return [[{"role": "user", "content": f"Name the banking intent in two words: {t}"}] for t in texts]


@pytest.mark.slow
def test_engines_stay_loaded_between_stages_until_a_stage_needs_their_share(ray_cluster, tmp_path):
    run = RunDir(tmp_path / "run")
    upstream = run.stage("up", 1)
    cfg = LLMConfig(num_actors=1, cpus_per_actor=1, batch_size=4, cache=False)  # one of the tests' 2 CPUs
    before = engine_stats()["engines_started"]
    never_parses = lambda answer: None  # noqa: E731 - every row goes through the retry pass too
    with keep_engines():
        first = generate_stage(run, "a", chats(["lost card", "top up failed"]), SamplingParams(max_tokens=4), cfg,
                               upstream, parse=never_parses)
        require_resources("a stage between", {"CPU": 1}, 1, "its keys")  # the other CPU is free: engines stay
        second = generate_stage(run, "b", chats(["refund missing"]), SamplingParams(max_tokens=4, temperature=0.7),
                                cfg, upstream)
        assert engine_stats()["engines_started"] == before + 1  # 3 generation passes, one engine load
        # start-up: the engine's load, in the stage that started it; none in the stage that found it running
        assert first.manifest["startup_s"] > 0 and second.manifest["startup_s"] == 0.0
        require_resources("a stage needing both CPUs", {"CPU": 2}, 1, "its keys")  # released for it
        wait_for_all_cpus(ray_cluster)
        generate_stage(run, "c", chats(["card arrival"]), SamplingParams(max_tokens=4), cfg, upstream)
        assert engine_stats()["engines_started"] == before + 2
    assert first.calls == 4 and first.manifest["retried"] == 2 and second.calls == 1

    # outside keep_engines a stage frees its engines at its end: their CPUs go to the next stage
    generate_stage(run, "d", chats(["card arrival"]), SamplingParams(max_tokens=4), cfg, upstream)
    assert engine_stats()["engines_started"] == before + 3
    wait_for_all_cpus(ray_cluster)


def wait_for_all_cpus(ray):
    for _ in range(100):  # ray.kill frees the actor's CPUs asynchronously
        if ray.available_resources().get("CPU", 0) == ray.cluster_resources()["CPU"]:
            return
        time.sleep(0.1)
    raise AssertionError(f"the engines' CPUs were not freed: {ray.available_resources()}")
