"""Closed questions answered from log-probabilities instead of generated text.

A question with a closed answer set ("1" or "2", "yes" or "no", "A" or "B") is asked with
``SamplingParams(choices=("A", "B"))``: the backend then generates nothing and answers each
chat with the log-probability of every choice as its continuation, one forward pass per
chat where the choices differ only in their last token. The answers travel through the LLM
stage like generated ones (cache, checkpoint, budget), written as decimal strings;
:func:`choice_logprobs` turns a stage's answers back into an ``(n, choices)`` array.

The continuation is scored after the chat's generation prompt, or, when the chat ends with
an assistant message, right after that message (a prefix such as "Choice", so the answer
is the next token). Choices are tokenised together with the prompt, not alone: with
SmolLM2, "Choice 1" is ``['Choice', ' ', '1']``, so the choice " 1" after the prefix
"Choice" costs two tokens, and scoring "1" alone would read the wrong position.

Example::

    backend = make_backend(LLMConfig())
    answers = backend.generate([chat], SamplingParams(choices=("A", "B")))    # [['-0.31', '-1.32']]
    choice_logprobs(answers)                                                  # array([[-0.31, -1.32]])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmclust.llm.base import Chat

# what a choice the server did not list among its top tokens is worth (OpenAI backend)
LOGPROB_FLOOR = -100.0


def render_prompt(tokenizer, chat: Chat) -> str:
    """The chat as the model sees it, ready for the assistant's next token."""
    if chat and chat[-1]["role"] == "assistant":  # continue this assistant prefix
        return tokenizer.apply_chat_template(chat, tokenize=False, continue_final_message=True)
    return tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)


@dataclass(frozen=True)
class Continuation:
    """Token ids of prompt + choice; the choice's tokens are ``ids[start:]``."""

    ids: tuple[int, ...]
    start: int


def _common_prefix(a, b) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def continuations(tokenizer, chat: Chat, choices: tuple[str, ...]) -> list[Continuation]:
    """One :class:`Continuation` per choice, the choice tokenised together with the prompt."""
    prompt = render_prompt(tokenizer, chat)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    out = []
    for choice in choices:
        ids = tokenizer(prompt + choice, add_special_tokens=False)["input_ids"]
        start = min(_common_prefix(prompt_ids, ids), len(ids) - 1)  # a merge across the boundary moves it back
        out.append(Continuation(tuple(ids), start))
    return out


def single_pass(conts: list[Continuation]) -> bool:
    """The choices differ only in their last token, so one pass over the shared part scores all."""
    first = conts[0]
    return all(len(c.ids) == len(first.ids) and c.ids[:-1] == first.ids[:-1] and c.start == first.start
               for c in conts) and first.start < len(first.ids)


def format_logprobs(values) -> list[str]:
    return [f"{float(v):.6g}" for v in values]


def choice_logprobs(answers: list[list[str]]) -> np.ndarray:
    """(n, choices) float array from a scoring stage's answers; NaN where a row failed."""
    width = max((len(a) for a in answers), default=0)
    out = np.full((len(answers), width), np.nan)
    for i, row in enumerate(answers):
        for j, value in enumerate(row):
            try:
                out[i, j] = float(value)
            except ValueError:
                pass
    return out


def normalised(logprobs: np.ndarray) -> np.ndarray:
    """Probabilities over the choices only (softmax of their log-probabilities, row by row)."""
    shifted = logprobs - np.nanmax(logprobs, axis=1, keepdims=True)
    p = np.exp(shifted)
    return p / np.nansum(p, axis=1, keepdims=True)
