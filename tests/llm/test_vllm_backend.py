"""vLLM backend: runs where vllm and a GPU are present; otherwise only the install message is checked."""

import importlib.util

import pytest

from llmclust.llm import LLMConfig, SamplingParams, make_backend

HAS_VLLM = importlib.util.find_spec("vllm") is not None


@pytest.mark.skipif(HAS_VLLM, reason="vllm is installed: the missing-package message cannot be shown")
def test_missing_vllm_names_the_install_command():
    with pytest.raises(ImportError, match=r"pip install 'llmclust\[gpu\]'"):
        make_backend(LLMConfig(backend="vllm"))


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.skipif(not HAS_VLLM, reason="vllm is not installed (pip install 'llmclust[gpu]')")
def test_vllm_generates_short_answers():
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    backend = make_backend(LLMConfig(backend="vllm", device="cuda"))
    out = backend.generate([[{"role": "user", "content": "Name one colour."}]] * 3, SamplingParams(max_tokens=8, n=2))
    assert len(out) == 3 and all(len(a) == 2 and any(x for x in a) for a in out)


def test_adapter_rank_is_read_from_the_peft_config(tmp_path):
    from llmclust.llm.vllm_backend import adapter_rank

    (tmp_path / "adapter_config.json").write_text('{"r": 64, "lora_alpha": 128}')
    assert adapter_rank(str(tmp_path)) == 64
    with pytest.raises(FileNotFoundError, match="adapter_config.json"):
        adapter_rank(str(tmp_path / "missing"))
