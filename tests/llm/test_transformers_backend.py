"""The real SmolLM2-135M-Instruct: de-quantised load, batched generation, Ray stage, cache on rerun."""

import pytest
from llmclust.llm import LLMConfig, SamplingParams, generate_stage, make_backend
from llmclust.llm.parsers import parse_label
from llmclust.llm.transformers_backend import load_causal_lm
from llmclust.models import dequantised_dir, resolve_model
from llmclust.store.runs import RunDir

pytestmark = pytest.mark.slow
QUESTIONS = ["What colour is the sky?", "Name a fruit.", "Say hello.", "What is two plus two?"]


def chats():
    return [[{"role": "user", "content": q}] for q in QUESTIONS]


def test_load_causal_lm_is_a_trainable_plain_model():
    model, tokenizer = load_causal_lm("SmolLM2-135M-Instruct", device="cpu")
    assert (dequantised_dir(resolve_model("SmolLM2-135M-Instruct")) / "config.json").exists()
    assert getattr(model, "hf_quantizer", None) is None and tokenizer.padding_side == "left"
    assert sum(p.numel() for p in model.parameters()) > 100e6


def test_batched_left_padded_generation_matches_one_by_one():
    backend = make_backend(LLMConfig(device="cpu", batch_size=4))
    params = SamplingParams(max_tokens=6)
    batched = backend.generate(chats(), params)
    single = [backend.generate([c], params)[0] for c in chats()[:2]]
    assert batched[:2] == single  # left padding must not change greedy answers
    assert all(a[0] for a in batched) and backend.stats["generated_tokens"] > 0
    sampled = backend.generate(chats()[:1], SamplingParams(max_tokens=6, n=3, temperature=1.0, seed=1))
    assert len(sampled[0]) == 3


def test_ray_stage_then_rerun_hits_the_cache(tmp_path, ray_cluster):
    run = RunDir(tmp_path / "run")
    up = run.stage("up", "x")
    cfg = LLMConfig(device="cpu", batch_size=2, num_actors=1, cpus_per_actor=1, cache_dir=str(tmp_path / "cache"))
    params = SamplingParams(max_tokens=6)
    first = generate_stage(run, "answers", chats(), params, cfg, up, parse=parse_label)
    assert first.calls >= 4 and len(first.answers) == 4
    assert first.manifest["parse_failures"] == first.failures
    rerun = generate_stage(RunDir(tmp_path / "other_run"), "answers", chats(), params, cfg, up, parse=parse_label)
    assert rerun.calls == 0 and rerun.manifest["cache_hits"] >= 4 and rerun.answers == first.answers
