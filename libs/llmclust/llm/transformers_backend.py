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

from llmclust.devices import resolve_device
from llmclust.llm.base import Chat, SamplingParams
from llmclust.llm.config import model_id
from llmclust.llm.scoring import continuations, format_logprobs, single_pass
from llmclust.models import model_weights


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
        if params.choices:
            return [format_logprobs(row) for row in self.score(chats, [params.choices] * len(chats))]
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

    def score(self, chats: list[Chat], choices: list[tuple[str, ...]]) -> list[list[float]]:
        """Log-probability of each of ``choices[i]`` continuing ``chats[i]``.

        Where a chat's choices differ only in their last token, one sequence (the shared part)
        scores them all; otherwise each choice is its own sequence. Sequences run in batches
        of ``llm.batch_size``, right-padded.
        """
        rows: list[tuple[int, ...]] = []  # token sequences to run
        targets: list[list[list[tuple[int, int, int]]]] = []  # chat -> choice -> (row, position, token)
        for chat, options in zip(chats, choices):
            conts = continuations(self.tokenizer, chat, tuple(options))
            if single_pass(conts):
                shared = conts[0].ids[:-1]
                rows.append(shared)
                r, last = len(rows) - 1, len(shared) - 1
                head = [(r, t - 1, shared[t]) for t in range(conts[0].start, len(shared))]
                targets.append([head + [(r, last, c.ids[-1])] for c in conts])
            else:
                per_choice = []
                for c in conts:
                    rows.append(c.ids)
                    per_choice.append([(len(rows) - 1, t - 1, c.ids[t]) for t in range(c.start, len(c.ids))])
                targets.append(per_choice)
        gathered = self._token_logprobs(rows, [t for chat in targets for choice in chat for t in choice])
        out, at = [], 0
        for chat in targets:
            scores = []
            for choice in chat:
                scores.append(float(sum(gathered[at : at + len(choice)])))
                at += len(choice)
            out.append(scores)
        self.stats["prompts"] += len(chats)
        return out

    def _token_logprobs(self, rows: list[tuple[int, ...]], wanted: list[tuple[int, int, int]]) -> list[float]:
        """log p(token | row[:position + 1]) for each (row, position, token) in ``wanted``."""
        import torch

        t0 = time.time()
        by_row: dict[int, list[int]] = {}
        for k, (r, _, _) in enumerate(wanted):
            by_row.setdefault(r, []).append(k)
        out = [0.0] * len(wanted)
        order = sorted(range(len(rows)), key=lambda r: -len(rows[r]))  # similar lengths pad less
        pad = self.tokenizer.pad_token_id
        for start in range(0, len(order), self.cfg.batch_size):
            batch = order[start : start + self.cfg.batch_size]
            width = max(len(rows[r]) for r in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for b, r in enumerate(batch):
                ids[b, : len(rows[r])] = torch.tensor(rows[r])
                mask[b, : len(rows[r])] = 1
            ks = [k for r in batch for k in by_row.get(r, [])]
            where = {r: b for b, r in enumerate(batch)}
            with torch.inference_mode():
                # the vocabulary projection only at the positions read: all of them would be
                # batch x length x vocabulary floats (1 GB for 16 prompts of 300 SmolLM2 tokens)
                hidden = self.model.get_decoder()(input_ids=ids.to(self.device),
                                                  attention_mask=mask.to(self.device)).last_hidden_state
                picked = hidden[[where[wanted[k][0]] for k in ks], [wanted[k][1] for k in ks]]
                logp = torch.log_softmax(self.model.get_output_embeddings()(picked).float(), dim=-1)
                values = logp[torch.arange(len(ks)), torch.tensor([wanted[k][2] for k in ks], device=logp.device)]
            for k, value in zip(ks, values.tolist()):
                out[k] = value
        self.stats["seconds"] += time.time() - t0
        return out
