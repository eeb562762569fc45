"""``LLMConfig``: which LLM runs, where, and how it is sharded; ``model_id``: what names its answers.

Example::

    cfg = LLMConfig(backend="openai", base_url="http://127.0.0.1:8000/v1", model="my-served-model")
    model_id(cfg)     # 'openai:http://127.0.0.1:8000/v1:my-served-model'
"""

from __future__ import annotations

from dataclasses import dataclass

from llmclust.config import expect, expect_choice

BACKENDS = ["transformers", "vllm", "openai"]


@dataclass
class LLMConfig:
    backend: str = "transformers"  # transformers | vllm | openai
    model: str = "SmolLM2-135M-Instruct"  # local folder, .gguf file, embedded default, or served name (openai)
    adapter: str = ""  # peft LoRA adapter folder loaded on top of `model` ("" for none)
    device: str = "auto"  # auto (cuda if present) | cpu | cuda
    dtype: str = "auto"  # auto (bfloat16 on cuda, float32 on cpu) | float32 | float16 | bfloat16
    batch_size: int = 16  # prompts per generate call (per batch sent to an engine actor)
    num_actors: int = 1  # generation actors; 0 runs in the driver process without Ray
    cpus_per_actor: float = 2
    gpus_per_actor: float = 0  # 1 on GPU nodes; vllm: 0.5 shares a GPU between two engines, 2+ is tensor parallel
    base_url: str = ""  # openai: e.g. http://127.0.0.1:8000/v1
    api_key_env: str = ""  # openai: name of the environment variable holding the key ("" for none)
    timeout_s: float = 120  # openai: per request
    cache: bool = True  # reuse answers keyed by (model, prompt, sampling parameters)
    cache_dir: str = ""  # "" : <run dir>/llm_cache; set a shared folder to reuse answers across runs
    save_prompts: bool = True  # write every prompt and raw answer to the stage folder
    retry_temperature: float = 0.7  # an unparseable answer is asked again once, sampled at this temperature
    max_failed_fraction: float = 0.5  # more rows than this failing in the backend fails the stage
    max_calls: int = 0  # prompts the run may send to the backend, retries included (0: unlimited); see llm/budget.py

    def __post_init__(self):
        expect_choice("backend", self.backend, BACKENDS)
        expect(bool(self.model), "model", self.model, "a model folder, .gguf file or served model name")
        expect_choice("device", self.device, ["auto", "cpu", "cuda"])
        expect_choice("dtype", self.dtype, ["auto", "float32", "float16", "bfloat16"])
        expect(self.batch_size > 0, "batch_size", self.batch_size, "a positive integer")
        expect(self.num_actors >= 0, "num_actors", self.num_actors, "0 (in-process) or a positive integer")
        expect(self.cpus_per_actor > 0, "cpus_per_actor", self.cpus_per_actor, "a positive number")
        expect(self.gpus_per_actor >= 0, "gpus_per_actor", self.gpus_per_actor, "0 or more")
        expect(self.backend != "openai" or self.base_url.startswith(("http://", "https://")), "base_url",
               self.base_url, "an http(s) URL such as http://127.0.0.1:8000/v1 when backend=openai")
        expect(self.timeout_s > 0, "timeout_s", self.timeout_s, "a positive number of seconds")
        expect(self.retry_temperature > 0, "retry_temperature", self.retry_temperature, "a positive temperature")
        expect(self.max_calls >= 0, "max_calls", self.max_calls, "0 (unlimited) or a positive number of prompts")
        expect(0 <= self.max_failed_fraction <= 1, "max_failed_fraction", self.max_failed_fraction, "a fraction in [0, 1]")
        expect(not self.adapter or self.backend != "openai", "adapter", self.adapter,
               "'' with backend=openai (serve the adapter on the server instead)")
        if self.backend == "vllm":  # one engine per Ray actor, on the GPUs the actor reserves
            expect(self.num_actors >= 1, "num_actors", self.num_actors,
                   "1 or more with backend=vllm (each engine runs in a Ray actor that reserves its GPUs); "
                   "use backend=transformers to generate in this process")
            expect(self.gpus_per_actor > 0, "gpus_per_actor", self.gpus_per_actor,
                   "a GPU share above 0 with backend=vllm (vLLM needs CUDA): 1 for one engine per GPU, "
                   "or use backend=transformers on CPU")
            expect(self.gpus_per_actor < 1 or float(self.gpus_per_actor).is_integer(), "gpus_per_actor",
                   self.gpus_per_actor, "a fraction below 1 with backend=vllm (engines sharing a GPU, e.g. 0.5) "
                   "or a whole number (one engine sharded over that many GPUs, e.g. 2)")


def model_id(cfg: LLMConfig) -> str:
    """What identifies the answers' source in cache keys: backend, weights and adapter."""
    from pathlib import Path

    where = f"{cfg.base_url.rstrip('/')}:" if cfg.backend == "openai" else ""
    adapter = f"+adapter:{Path(cfg.adapter).resolve()}" if cfg.adapter else ""
    return f"{cfg.backend}:{where}{cfg.model}{adapter}"
