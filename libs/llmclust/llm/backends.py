"""``make_backend``: the backend an :class:`~llmclust.llm.config.LLMConfig` names.

Backends: ``transformers`` (local, CPU or GPU), ``vllm`` (GPU, optional extra
``pip install 'llmclust[gpu]'``) and ``openai`` (any OpenAI-compatible HTTP server: a vLLM
server, a hosted API). All follow :class:`llmclust.llm.base.LLMBackend`.

Example::

    backend = make_backend(LLMConfig(backend="openai", base_url="http://127.0.0.1:8000/v1",
                                     model="my-served-model"))
    backend.generate([[{"role": "user", "content": "hi"}]], SamplingParams(max_tokens=4))
"""

from __future__ import annotations

from llmclust.llm.base import LLMBackend
from llmclust.llm.config import LLMConfig


def make_backend(cfg: LLMConfig) -> LLMBackend:
    """The backend named by ``cfg.backend``; heavy libraries are imported only here."""
    if cfg.backend == "transformers":
        from llmclust.llm.transformers_backend import TransformersBackend

        return TransformersBackend(cfg)
    if cfg.backend == "vllm":
        from llmclust.llm.vllm_backend import VLLMBackend

        return VLLMBackend(cfg)
    from llmclust.llm.openai_backend import OpenAIBackend

    return OpenAIBackend(cfg)
