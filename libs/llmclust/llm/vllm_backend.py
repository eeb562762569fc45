"""vLLM backend for GPU nodes (optional extra: ``pip install 'llmclust[gpu]'``).

One ``vllm.LLM`` engine per Ray actor (the LLM stage's actor pool gives each its GPUs);
continuous batching inside the engine. ``llm.gpus_per_actor`` sets the engine's share:
below 1, engines share a GPU and each gets that share of vLLM's memory budget; a whole
number above 1 shards the model over that many GPUs (tensor parallelism). A ``.gguf`` model
is de-quantised once to a normal folder first (see
:func:`llmclust.models.model_weights`).

Example::

    backend = VLLMBackend(LLMConfig(backend="vllm", model="/models/Qwen2.5-7B-Instruct", gpus_per_actor=1))
    backend.generate([[{"role": "user", "content": "hi"}]], SamplingParams(max_tokens=4))
"""

from __future__ import annotations

import json
from pathlib import Path

from llmclust.llm.base import Chat, SamplingParams
from llmclust.llm.config import model_id
from llmclust.llm.scoring import continuations, format_logprobs
from llmclust.models import model_weights
from llmclust.optional import optional_import

INSTALL = "pip install 'llmclust[gpu]'"
# vllm/config/lora.py, MaxLoRARanks: the only values LoRAConfig.max_lora_rank accepts
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
# vllm/config/cache.py, CacheConfig.gpu_memory_utilization: default share of the whole GPU per engine
GPU_MEMORY_UTILIZATION = 0.9
# vllm/sampling_params.py, _SAMPLING_EPS: below this temperature vLLM decodes greedily and allows only n=1
GREEDY_BELOW = 1e-5


def import_vllm():
    return optional_import("vllm", f"llm.backend=vllm needs the vllm package, which is not installed: run "
                                   f"`{INSTALL}` on a CUDA machine, or use llm.backend=transformers")


def adapter_rank(adapter: str) -> int:
    """The LoRA rank of a peft adapter folder."""
    config = Path(adapter) / "adapter_config.json"
    if not config.exists():
        raise FileNotFoundError(f"llm.adapter={adapter!r} has no adapter_config.json; give a peft adapter folder")
    return int(json.loads(config.read_text())["r"])


def max_lora_rank(rank: int) -> int:
    """The smallest ``max_lora_rank`` vLLM accepts that holds an adapter of ``rank``."""
    fitting = [r for r in LORA_RANKS if r >= rank]
    if not fitting:
        raise ValueError(f"LoRA rank {rank} is above {LORA_RANKS[-1]}, the largest max_lora_rank vLLM supports; "
                         "train the adapter with a lower rank (cotrain.dpo.lora_rank) or use llm.backend=transformers")
    return fitting[0]


def engine_args(cfg) -> dict:
    """Keyword arguments of ``vllm.LLM`` besides the model: dtype, GPU share, tensor parallelism, LoRA."""
    tensor_parallel = max(int(cfg.gpus_per_actor), 1)  # LLMConfig allows fractions below 1 or whole numbers
    args = {"dtype": cfg.dtype, "tensor_parallel_size": tensor_parallel,
            # the budget is a share of the whole GPU: engines sharing one must split it, or the second cannot start
            "gpu_memory_utilization": GPU_MEMORY_UTILIZATION * min(cfg.gpus_per_actor, 1)}
    if tensor_parallel > 1:
        args["distributed_executor_backend"] = "mp"  # the actor already holds its GPUs; "ray" would ask Ray again
    if cfg.adapter:
        args |= {"enable_lora": True, "max_lora_rank": max_lora_rank(adapter_rank(cfg.adapter))}
    return args


def sampling_kwargs(params: SamplingParams) -> dict:
    """Keyword arguments of ``vllm.SamplingParams`` for ``params``."""
    if params.n > 1 and params.temperature < GREEDY_BELOW:
        raise ValueError(f"n={params.n} at temperature={params.temperature}: greedy decoding has one answer per "
                         "prompt and vLLM accepts only n=1 for it; ask n=1, or sample with a temperature above 0")
    return {"temperature": params.temperature, "max_tokens": params.max_tokens, "n": params.n,
            "seed": params.seed, "top_p": params.top_p}


class VLLMBackend:
    def __init__(self, cfg):
        vllm = import_vllm()
        path = model_weights(cfg.model)
        self.cfg = cfg
        self.model_id = model_id(cfg)
        self.llm = vllm.LLM(model=path, **engine_args(cfg))
        self.lora = None
        if cfg.adapter:
            from vllm.lora.request import LoRARequest

            self.lora = LoRARequest("adapter", 1, str(Path(cfg.adapter).resolve()))

    def generate(self, chats: list[Chat], params: SamplingParams) -> list[list[str]]:
        vllm = import_vllm()
        if params.choices:
            return [format_logprobs(row) for row in self.score(chats, [params.choices] * len(chats))]
        sampling = vllm.SamplingParams(**sampling_kwargs(params))
        outputs = self.llm.chat(chats, sampling, lora_request=self.lora, use_tqdm=False)
        return [[c.text.strip() for c in o.outputs] for o in outputs]

    def score(self, chats: list[Chat], choices: list[tuple[str, ...]]) -> list[list[float]]:
        """Log-probability of each of ``choices[i]`` continuing ``chats[i]``: every prompt + choice
        runs as a token prompt with ``prompt_logprobs`` (the log-probability of each prompt token
        given the ones before it; vllm/sampling_params.py), and the choice's tokens are summed."""
        vllm = import_vllm()
        tokenizer = self.llm.get_tokenizer()
        conts = [c for chat, options in zip(chats, choices) for c in continuations(tokenizer, chat, tuple(options))]
        # max_tokens=1: the one generated token is not used; prompt_logprobs=1 lists the top token
        # and always the prompt's own token at each position
        sampling = vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1)
        outputs = self.llm.generate([{"prompt_token_ids": list(c.ids)} for c in conts], sampling,
                                    lora_request=self.lora, use_tqdm=False)
        flat = [sum(out.prompt_logprobs[t][c.ids[t]].logprob for t in range(c.start, len(c.ids)))
                for c, out in zip(conts, outputs)]
        out, at = [], 0
        for options in choices:
            out.append(flat[at : at + len(options)])
            at += len(options)
        return out
