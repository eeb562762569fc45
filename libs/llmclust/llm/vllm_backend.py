"""vLLM backend for GPU nodes (optional extra: ``pip install 'llmclust[gpu]'``).

One ``vllm.LLM`` engine per Ray actor (the LLM stage's actor pool gives each its GPU);
continuous batching inside the engine. A ``.gguf`` model is de-quantised once to a normal
folder first (see :func:`llmclust.llm.transformers_backend.dequantised_dir`).

Example::

    backend = VLLMBackend(LLMConfig(backend="vllm", model="/models/Qwen2.5-7B-Instruct"))
    backend.generate([[{"role": "user", "content": "hi"}]], SamplingParams(max_tokens=4))
"""

from __future__ import annotations

import json
from pathlib import Path

from llmclust.llm.backends import model_id
from llmclust.llm.base import Chat, SamplingParams
from llmclust.models import resolve_model

INSTALL = "pip install 'llmclust[gpu]'"


def import_vllm():
    try:
        import vllm
    except ImportError as err:
        raise ImportError(f"llm.backend=vllm needs the vllm package, which is not installed: run `{INSTALL}` "
                          "on a CUDA machine, or use llm.backend=transformers") from err
    return vllm


def adapter_rank(adapter: str) -> int:
    """The LoRA rank of a peft adapter folder: vLLM refuses ranks above its limit (default 16)."""
    config = Path(adapter) / "adapter_config.json"
    if not config.exists():
        raise FileNotFoundError(f"llm.adapter={adapter!r} has no adapter_config.json; give a peft adapter folder")
    return int(json.loads(config.read_text())["r"])


class VLLMBackend:
    def __init__(self, cfg):
        vllm = import_vllm()
        path = resolve_model(cfg.model)
        if path.endswith(".gguf"):
            from llmclust.llm.transformers_backend import dequantised_dir

            path = str(dequantised_dir(path))
        self.cfg = cfg
        self.model_id = model_id(cfg)
        lora = {"enable_lora": True, "max_lora_rank": adapter_rank(cfg.adapter)} if cfg.adapter else {}
        self.llm = vllm.LLM(model=path, dtype=cfg.dtype, **lora)
        self.lora = None
        if cfg.adapter:
            from vllm.lora.request import LoRARequest

            self.lora = LoRARequest("adapter", 1, str(Path(cfg.adapter).resolve()))

    def generate(self, chats: list[Chat], params: SamplingParams) -> list[list[str]]:
        vllm = import_vllm()
        sampling = vllm.SamplingParams(temperature=params.temperature, max_tokens=params.max_tokens, n=params.n,
                                       seed=params.seed, top_p=params.top_p)
        outputs = self.llm.chat(chats, sampling, lora_request=self.lora, use_tqdm=False)
        return [[c.text.strip() for c in o.outputs] for o in outputs]
