"""Transformers backend: batched ``generate`` with left padding, on CPU or GPU.

``load_causal_lm`` is shared with training code (DPO): it resolves the model (a local folder,
a ``.gguf`` file or the embedded default ``SmolLM2-135M-Instruct``), and de-quantises a GGUF
file once into ``$LLMCLUST_CACHE`` (default ``~/.cache/llmclust``)/``<name>-dequantised/``.
Loading that folder takes seconds instead of ~34 s, and the Trainer accepts it (it refuses
models that still carry a GGUF quantisation flag).

Example::

    model, tokenizer = load_causal_lm("SmolLM2-135M-Instruct", device="cpu", dtype="auto")
    backend = TransformersBackend(LLMConfig())
    backend.generate([[{"role": "user", "content": "Say hi"}]], SamplingParams(max_tokens=4))
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

from llmclust.llm.backends import model_id
from llmclust.llm.base import Chat, SamplingParams
from llmclust.models import resolve_model

log = logging.getLogger(__name__)


def cache_root() -> Path:
    return Path(os.environ.get("LLMCLUST_CACHE", Path.home() / ".cache" / "llmclust"))


def dequantised_dir(gguf_path: str) -> Path:
    """A normal model folder for ``gguf_path``, de-quantised and saved on first use."""
    gguf = Path(gguf_path)
    target = cache_root() / f"{gguf.stem}-dequantised"
    if (target / "config.json").exists():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.time()
    log.info("de-quantising %s once (about 30 s on 2 cores) -> %s", gguf, target)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # the GGUF flag makes the Trainer refuse the model and is wrong once the weights are floats
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None  # save_pretrained refuses a model that still has its GGUF quantizer
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    try:
        tmp.rename(target)  # atomic: a concurrent process either sees nothing or the whole folder
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # another process finished first
    log.info("de-quantised in %.1f s", time.time() - t0)
    return target


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"llm.device={device} but no CUDA device is visible; use llm.device=auto or cpu")
    return device


def resolve_dtype(dtype: str, device: str):
    import torch

    if dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") else "float32"
    return getattr(torch, dtype)


def load_causal_lm(model: str, device: str = "auto", dtype: str = "auto", adapter: str = ""):
    """(model, tokenizer) ready for generation or training; ``adapter`` is a peft LoRA folder.

    The tokenizer pads on the left (what batched generation needs) and has a pad token.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model(model)
    if path.endswith(".gguf"):
        path = str(dequantised_dir(path))
    device = resolve_device(device)
    lm = AutoModelForCausalLM.from_pretrained(path, dtype=resolve_dtype(dtype, device)).to(device)
    tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if adapter:
        from peft import PeftModel

        if not Path(adapter).exists():
            raise FileNotFoundError(f"llm.adapter={adapter!r} does not exist; give a peft adapter folder or ''")
        lm = PeftModel.from_pretrained(lm, adapter).merge_and_unload()  # merged: generation at base speed
    lm.eval()
    return lm, tokenizer


class TransformersBackend:
    """Local generation with ``model.generate``; ``stats`` counts prompts and generated tokens."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.model_id = model_id(cfg)
        self.model, self.tokenizer = load_causal_lm(cfg.model, cfg.device, cfg.dtype, cfg.adapter)
        self.device = self.model.device
        self.stats = {"prompts": 0, "generated_tokens": 0, "seconds": 0.0}

    def generate(self, chats: list[Chat], params: SamplingParams) -> list[list[str]]:
        out: list[list[str]] = []
        for start in range(0, len(chats), self.cfg.batch_size):
            out.extend(self._generate_batch(chats[start : start + self.cfg.batch_size], params))
        return out

    def _generate_batch(self, chats: list[Chat], params: SamplingParams) -> list[list[str]]:
        import torch

        t0 = time.time()
        prompts = [self.tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in chats]
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        sample = params.temperature > 0
        torch.manual_seed(params.seed)
        with torch.inference_mode():
            ids = self.model.generate(
                **enc, max_new_tokens=params.max_tokens, do_sample=sample, num_return_sequences=params.n,
                temperature=params.temperature if sample else None, top_p=params.top_p if sample else None,
                top_k=None, pad_token_id=self.tokenizer.pad_token_id,
            )
        new = ids[:, enc["input_ids"].shape[1]:]
        self.stats["generated_tokens"] += int((new != self.tokenizer.pad_token_id).sum())
        self.stats["prompts"] += len(chats)
        self.stats["seconds"] += time.time() - t0
        texts = self.tokenizer.batch_decode(new, skip_special_tokens=True)
        return [[t.strip() for t in texts[i * params.n : (i + 1) * params.n]] for i in range(len(chats))]
