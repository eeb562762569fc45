"""The one interface every LLM call goes through.

A prompt is a chat: a list of ``{"role": ..., "content": ...}`` messages. A backend turns a
batch of chats into ``n`` completions each. Backends (transformers, vLLM, OpenAI-compatible
HTTP) differ only in how they produce text; caching, sharding over Ray actors, retries of
unparseable answers and saving prompts live outside them, in the LLM stage.

Example::

    backend = make_backend(LLMConfig())                    # SmolLM2-135M-Instruct on CPU
    backend.generate([[{"role": "user", "content": "Name this intent: 'card not arrived'"}]],
                     SamplingParams(max_tokens=8))         # [['Card delivery']]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

Message = dict  # {"role": "system" | "user" | "assistant", "content": str}
Chat = list[Message]


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.0  # 0: greedy
    max_tokens: int = 32
    n: int = 1  # completions per prompt
    seed: int = 0
    top_p: float = 1.0
    # a closed question: score these continuations instead of generating (llm/scoring.py);
    # the answers are their log-probabilities, one per choice
    choices: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "choices", tuple(self.choices))  # YAML and JSON give lists
        if self.choices and (self.n != 1 or len(self.choices) < 2 or not all(self.choices)):
            raise ValueError(f"SamplingParams(choices={self.choices!r}, n={self.n}): a closed question needs "
                             "two or more non-empty choices and n=1")
        # greedy decoding has one answer: transformers and vLLM both refuse n > 1 without sampling
        if self.n > 1 and self.temperature <= 0:
            raise ValueError(f"SamplingParams(n={self.n}, temperature={self.temperature}): several answers per "
                             "prompt need sampling; set temperature > 0 or n=1")


@runtime_checkable
class LLMBackend(Protocol):
    model_id: str  # identifies the weights (adapter included) in cache keys

    def generate(self, chats: list[Chat], params: SamplingParams) -> list[list[str]]:
        """``params.n`` completions for each chat, in order; with ``params.choices``, the
        log-probability of each choice instead (:mod:`llmclust.llm.scoring`)."""
        ...
