"""Transformers backend: batched ``generate`` with left padding, on CPU or GPU.

``load_causal_lm`` loads any model :func:`llmclust.models.model_weights` resolves (a local
folder, a ``.gguf`` file de-quantised once, or the embedded default ``SmolLM2-135M-Instruct``).

Example::

    model, tokenizer = load_causal_lm("SmolLM2-135M-Instruct", device="cpu", dtype="auto")
    backend = TransformersBackend(LLMConfig())
    backend.generate([[{"role": "user", "content": "Say hi"}]], SamplingParams(max_tokens=4))
"""

from __future__ import annotations

import time
from pathlib import Path

from llmclust.llm.backends import model_id
from llmclust.llm.base import Chat, SamplingParams
from llmclust.models import model_weights, resolve_device


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

    path = model_weights(model)
    device = resolve_device(device, "llm.device")
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
