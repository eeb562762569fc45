"""Judges answer ClusterLLM's two questions: triplets (which choice matches the anchor) and
pairs (same category or not).

* :class:`LLMJudge` asks an LLM through the LLM layer (prompt templates with named
  placeholders, parsers for "Choice 1"/"Choice 2" and "Yes"/"No"; unparseable answers are
  counted and left unanswered).
* :class:`OracleJudge` answers from ground-truth labels, as the paper's "GT" ablation does.
  It exists to check the training and granularity machinery apart from LLM quality and is
  only ever built by benchmarks and tests: no config key selects it.

Answers are int8 arrays: triplets 1 / 2 (0: no answer), pairs 1 same / 0 different (-1: no answer).

Example::

    judge = OracleJudge(["card", "card", "topup"])
    judge.triplets(np.array([[0, 1, 2]]), texts=None, context=None)    # array([1], dtype=int8)
    parse_choice("Choice 2."), parse_yes_no("No, they differ.")        # (2, False)
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import numpy as np

from llmclust.llm.base import Chat, SamplingParams
from llmclust.llm.prompts import split_task
from llmclust.methods.clusterllm.config import Demonstration

TRIPLET_NO_ANSWER = 0
PAIR_NO_ANSWER = -1


@dataclass
class JudgeContext:
    """Where an LLM judge checkpoints its answers: the run, a stage name, the upstream stage."""

    run: Any  # runs.RunDir
    name: str
    upstream: Any  # runs.Stage


class TripletJudge(Protocol):
    name: str  # identifies the answers (model, prompts) in stage fingerprints

    def triplets(self, rows: np.ndarray, texts: Sequence[str], context: JudgeContext) -> np.ndarray:
        """(m, 3) rows (anchor, choice 1, choice 2) -> (m,) int8 in {1, 2, 0 = no answer}."""
        ...


class PairJudge(Protocol):
    name: str

    def pairs(self, rows: np.ndarray, texts: Sequence[str], context: JudgeContext) -> np.ndarray:
        """(m, >=2) rows (a, b, ...) -> (m,) int8 in {1 same, 0 different, -1 no answer}."""
        ...


class OracleJudge:
    """Answers from ground-truth labels (evaluation only). A triplet whose two choices are
    both or neither of the anchor's class has no true answer and is left unanswered."""

    def __init__(self, labels: Sequence):
        self.labels = np.asarray(labels, dtype=object)
        digest = hashlib.sha256("\x00".join(map(str, self.labels)).encode()).hexdigest()[:12]
        self.name = f"oracle:{digest}"  # other labels, other answers: stages must not be reused

    def triplets(self, rows: np.ndarray, texts=None, context=None) -> np.ndarray:
        anchor, first, second = (self.labels[rows[:, i]] for i in range(3))
        hit1, hit2 = first == anchor, second == anchor
        return np.where(hit1 & ~hit2, 1, np.where(hit2 & ~hit1, 2, TRIPLET_NO_ANSWER)).astype(np.int8)

    def pairs(self, rows: np.ndarray, texts=None, context=None) -> np.ndarray:
        return (self.labels[rows[:, 0]] == self.labels[rows[:, 1]]).astype(np.int8)


# -- prompts and parsers -------------------------------------------------------------------
SYSTEM = "You answer with a few words only. Never explain."

TRIPLET_PROMPT = (
    "Task: {task}\n"
    "Query: {anchor}\n"
    "Choice 1: {choice_1}\n"
    "Choice 2: {choice_2}\n"
    "Which choice is more similar to the Query in terms of {perspective}? "
    "Reply with exactly 'Choice 1' or 'Choice 2'."
)

# domain-neutral worked examples, so that they suit any task description
TRIPLET_EXAMPLES = [
    ({"anchor": "the printer jams on every page", "choice_1": "how do I reset my password",
      "choice_2": "paper keeps getting stuck in the printer"}, "Choice 2"),
    ({"anchor": "I forgot my login password", "choice_1": "cannot sign in, password lost",
      "choice_2": "the screen is flickering"}, "Choice 1"),
]

PAIR_PROMPT = (
    "Task: {task}\n"
    "Text A: {text_a}\n"
    "Text B: {text_b}\n"
    "Do Text A and Text B belong to the same category? Reply 'Yes' or 'No'."
)

DEMO_ANSWER = "{answer}. {why}"

_CHOICE = re.compile(r"choice\s*([12])\b|^\s*\(?([12])\)?\b", re.IGNORECASE)
_YES_NO = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


def parse_choice(answer: str) -> int | None:
    """1 or 2 when the answer names exactly one choice, else None."""
    found = {int(a or b) for a, b in _CHOICE.findall(answer)}
    return found.pop() if len(found) == 1 else None


def parse_yes_no(answer: str) -> bool | None:
    """The first "yes"/"no" word of the answer, else None."""
    match = _YES_NO.search(answer)
    return None if match is None else match.group(1).lower() == "yes"


def triplet_chat(task: str, anchor: str, choice_1: str, choice_2: str) -> Chat:
    """Two worked examples (one answer each) first: small models copy the answer format."""
    perspective = split_task(task)[0]
    chat: Chat = [{"role": "system", "content": SYSTEM}]
    for example, answer in TRIPLET_EXAMPLES:
        chat.append({"role": "user", "content": TRIPLET_PROMPT.format(task=task, perspective=perspective, **example)})
        chat.append({"role": "assistant", "content": answer})
    prompt = TRIPLET_PROMPT.format(task=task, perspective=perspective, anchor=anchor, choice_1=choice_1, choice_2=choice_2)
    chat.append({"role": "user", "content": prompt})
    return chat


def pair_chat(task: str, text_a: str, text_b: str, demonstrations: Sequence[Demonstration]) -> Chat:
    """Demonstrations come first as answered turns, so the model copies their short form."""
    chat: Chat = [{"role": "system", "content": SYSTEM}]
    for demo in demonstrations:
        chat.append({"role": "user", "content": PAIR_PROMPT.format(task=task, text_a=demo.text_a, text_b=demo.text_b)})
        answer = DEMO_ANSWER.format(answer="Yes" if demo.same else "No", why=demo.why).strip()
        chat.append({"role": "assistant", "content": answer})
    chat.append({"role": "user", "content": PAIR_PROMPT.format(task=task, text_a=text_a, text_b=text_b)})
    return chat


class LLMJudge:
    """Asks the configured LLM through ``llm.generate_stage`` (checkpointed, cached, counted)."""

    def __init__(self, llm_cfg, task: str, demonstrations: Sequence[Demonstration] = (),
                 temperature: float = 0.0, seed: int = 0, backend=None):
        """``backend``: an already loaded backend to run in-process (tests); None: ``llm_cfg``'s, on Ray."""
        self.llm_cfg, self.task, self.demonstrations = llm_cfg, task, list(demonstrations)
        self.temperature, self.seed, self.backend = temperature, seed, backend
        self.name = f"llm:{llm_cfg.model}:{temperature}"

    def _ask(self, context: JudgeContext, chats: list[Chat], parse, max_tokens: int) -> list:
        from llmclust.llm import generate_stage

        params = SamplingParams(temperature=self.temperature, max_tokens=max_tokens, seed=self.seed)
        result = generate_stage(context.run, context.name, chats, params, self.llm_cfg, context.upstream,
                                parse=parse, backend=self.backend)
        return list(result.values)  # first completion's parsed value; None where unparseable after a retry

    def triplets(self, rows: np.ndarray, texts: Sequence[str], context: JudgeContext) -> np.ndarray:
        chats = [triplet_chat(self.task, texts[a], texts[c1], texts[c2]) for a, c1, c2 in rows[:, :3]]
        parsed = self._ask(context, chats, parse_choice, max_tokens=6)
        return np.asarray([TRIPLET_NO_ANSWER if p is None else p for p in parsed], np.int8)

    def pairs(self, rows: np.ndarray, texts: Sequence[str], context: JudgeContext) -> np.ndarray:
        chats = [pair_chat(self.task, texts[a], texts[b], self.demonstrations) for a, b in rows[:, :2]]
        parsed = self._ask(context, chats, parse_yes_no, max_tokens=4)
        return np.asarray([PAIR_NO_ANSWER if p is None else int(p) for p in parsed], np.int8)
