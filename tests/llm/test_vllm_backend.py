"""vLLM backend: engine and sampling arguments are built and checked without vllm; generation runs
where vllm and a GPU are present."""

import importlib.util
import typing

import pytest
from llmclust.config import ConfigError
from llmclust.llm import LLMConfig, SamplingParams, make_backend
from llmclust.llm.vllm_backend import (
    LORA_RANKS,
    adapter_rank,
    engine_args,
    max_lora_rank,
    sampling_kwargs,
)

HAS_VLLM = importlib.util.find_spec("vllm") is not None


def vllm_config(**kw) -> LLMConfig:
    return LLMConfig(**{"backend": "vllm", "gpus_per_actor": 1, **kw})


@pytest.mark.skipif(HAS_VLLM, reason="vllm is installed: the missing-package message cannot be shown")
def test_missing_vllm_names_the_install_command():
    with pytest.raises(ImportError, match=r"pip install 'llmclust\[gpu\]'"):
        make_backend(vllm_config())


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.skipif(not HAS_VLLM, reason="vllm is not installed (pip install 'llmclust[gpu]')")
def test_vllm_generates_short_answers():
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    backend = make_backend(vllm_config(device="cuda"))
    out = backend.generate([[{"role": "user", "content": "Name one colour."}]] * 3,
                           SamplingParams(max_tokens=8, n=2, temperature=0.7))
    assert len(out) == 3 and all(len(a) == 2 and any(x for x in a) for a in out)


def test_adapter_rank_is_read_from_the_peft_config(tmp_path):
    (tmp_path / "adapter_config.json").write_text('{"r": 64, "lora_alpha": 128}')
    assert adapter_rank(str(tmp_path)) == 64
    with pytest.raises(FileNotFoundError, match="adapter_config.json"):
        adapter_rank(str(tmp_path / "missing"))


@pytest.mark.parametrize("rank, allowed", [(1, 1), (2, 8), (8, 8), (24, 32), (64, 64), (300, 320), (512, 512)])
def test_lora_rank_rounds_up_to_a_max_lora_rank_vllm_accepts(rank, allowed):
    assert max_lora_rank(rank) == allowed


def test_lora_rank_above_vllms_largest_fails_clearly():
    with pytest.raises(ValueError, match="LoRA rank 640 is above 512.*lora_rank"):
        max_lora_rank(640)


def test_engine_args_carry_the_rounded_lora_rank(tmp_path):
    (tmp_path / "adapter_config.json").write_text('{"r": 24}')
    args = engine_args(vllm_config(adapter=str(tmp_path)))
    assert args["enable_lora"] is True and args["max_lora_rank"] == 32


@pytest.mark.skipif(not HAS_VLLM, reason="vllm is not installed")
def test_lora_ranks_match_vllms():
    from vllm.config.lora import MaxLoRARanks

    assert LORA_RANKS == tuple(sorted(typing.get_args(MaxLoRARanks)))


@pytest.mark.parametrize("gpus, tensor_parallel, memory", [(1, 1, 0.9), (0.5, 1, 0.45), (0.25, 1, 0.225), (2, 2, 0.9),
                                                            (4, 4, 0.9)])
def test_engine_args_follow_the_gpu_share(gpus, tensor_parallel, memory):
    args = engine_args(vllm_config(gpus_per_actor=gpus))
    assert args["tensor_parallel_size"] == tensor_parallel
    assert args["gpu_memory_utilization"] == pytest.approx(memory)
    # an actor already holds its GPUs: vLLM must not ask Ray for more workers
    assert args.get("distributed_executor_backend") == ("mp" if tensor_parallel > 1 else None)
    assert "enable_lora" not in args


@pytest.mark.parametrize("kw, message", [
    ({"gpus_per_actor": 0}, r"gpus_per_actor=0: expected a GPU share above 0 with backend=vllm"),
    ({"gpus_per_actor": 1.5}, r"gpus_per_actor=1.5: expected a fraction below 1 .* or a whole number"),
    ({"num_actors": 0}, r"num_actors=0: expected 1 or more with backend=vllm.*backend=transformers"),
])
def test_config_rejects_gpu_layouts_vllm_cannot_run(kw, message):
    with pytest.raises(ConfigError, match=message):
        vllm_config(**kw)


def test_gpu_layouts_only_matter_for_vllm():
    LLMConfig(backend="transformers", gpus_per_actor=0, num_actors=0)


def test_sampling_kwargs_pass_the_parameters():
    params = SamplingParams(temperature=0.7, max_tokens=9, n=3, seed=5, top_p=0.9)
    assert sampling_kwargs(params) == {"temperature": 0.7, "max_tokens": 9, "n": 3, "seed": 5, "top_p": 0.9}


@pytest.mark.parametrize("temperature", [1e-6])  # 0 itself is refused by SamplingParams for every backend
def test_several_greedy_answers_are_refused_before_vllm_sees_them(temperature):
    # vllm/sampling_params.py rejects n > 1 below _SAMPLING_EPS: "n must be 1 when using greedy sampling"
    with pytest.raises(ValueError, match=r"n=2 at temperature=.*ask n=1, or sample with a temperature above 0"):
        sampling_kwargs(SamplingParams(n=2, temperature=temperature))
    assert sampling_kwargs(SamplingParams(n=1, temperature=temperature))["n"] == 1
