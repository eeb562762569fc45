"""Judges answer ClusterLLM's two questions: triplets (which choice matches the anchor) and
pairs (same category or not).

* :class:`LLMJudge` asks an LLM through the LLM layer: closed questions answered from the
  log-probabilities of the allowed answers, each in two views whose position bias cancels
  (:mod:`.questions`). No text is generated or parsed.
* :class:`OracleJudge` answers from ground-truth labels, as the paper's "GT" ablation does.
  It exists to check the training and granularity machinery apart from LLM quality and is
  only ever built by benchmarks and tests: no config key selects it.

Answers are :class:`llmclust.llm.two_views.Votes`: the probability of the first answer (choice 1;
"same") and whether both views agreed. ``votes.choices()`` gives triplets as int8 1 / 2
(0: no answer), ``votes.same()`` pairs as 1 same / 0 different (-1: no answer).
``parse_choice`` / ``parse_yes_no`` read generated answers (benchmarks compare them).

Example::

    judge = OracleJudge(["card", "card", "topup"])
    judge.triplets(np.array([[0, 1, 2]]), texts=None, context=None).choices()    # array([1], dtype=int8)
    parse_choice("Choice 2."), parse_yes_no("No, they differ.")                  # (2, False)
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import numpy as np

from llmclust.llm.base import Chat
from llmclust.llm.prompts import split_task
from llmclust.llm.two_views import View, Votes, ask_views
from llmclust.methods.clusterllm.config import Demonstration
from llmclust.methods.clusterllm.questions import pair_view_probability, triplet_view_probability, triplet_views


@dataclass
class JudgeContext:
    """Where an LLM judge checkpoints its answers: the run, a stage name, the upstream stage."""

    run: Any  # runs.RunDir
    name: str
    upstream: Any  # runs.Stage


class TripletJudge(Protocol):
    name: str  # identifies the answers (model, prompts) in stage fingerprints

    def triplets(self, rows: np.ndarray, texts: Sequence[str], context: JudgeContext) -> Votes:
        """(m, 3) rows (anchor, choice 1, choice 2) -> P(choice 1) per row, and its consistency."""
        ...


class PairJudge(Protocol):
    name: str

    def pairs(self, rows: np.ndarray, texts: Sequence[str], context: JudgeContext) -> Votes:
        """(m, >=2) rows (a, b, ...) -> P(same category) per row, and its consistency."""
        ...


class OracleJudge:
    """Answers from ground-truth labels (evaluation only), certain and the same in both views.
    A triplet whose two choices are both or neither of the anchor's class has no true answer
    and is left unanswered."""

    def __init__(self, labels: Sequence):
        self.labels = np.asarray(labels, dtype=object)
        digest = hashlib.sha256("\x00".join(map(str, self.labels)).encode()).hexdigest()[:12]
        self.name = f"oracle:{digest}"  # other labels, other answers: stages must not be reused

    def triplets(self, rows: np.ndarray, texts=None, context=None) -> Votes:
        anchor, first, second = (self.labels[rows[:, i]] for i in range(3))
        hit1, hit2 = first == anchor, second == anchor
        p = np.where(hit1 & ~hit2, 1.0, np.where(hit2 & ~hit1, 0.0, np.nan))
        return Votes(p, ~np.isnan(p))

    def pairs(self, rows: np.ndarray, texts=None, context=None) -> Votes:
        same = (self.labels[rows[:, 0]] == self.labels[rows[:, 1]]).astype(float)
        return Votes(same, np.ones(len(same), bool))


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
    """Asks the configured LLM closed questions, answered from the log-probabilities of the
    allowed answers, each in two views (:mod:`.questions`), through ``llm.generate_stage``
    (checkpointed, cached, counted). ``question``: the triplet formulation."""

    def __init__(self, llm_cfg, task: str, demonstrations: Sequence[Demonstration] = (), question: str = "same_pair",
                 backend=None):
        """``backend``: an already loaded backend to run in-process (tests); None: ``llm_cfg``'s, on Ray."""
        self.llm_cfg, self.task, self.demonstrations = llm_cfg, task, list(demonstrations)
        self.question, self.backend = question, backend
        self.name = f"llm:{llm_cfg.model}:{question}"

    def triplets(self, rows: np.ndarray, texts: Sequence[str], context: JudgeContext) -> Votes:
        views = [triplet_views(self.question, self.task, texts[a], texts[c1], texts[c2]) for a, c1, c2 in rows[:, :3]]
        per_view = ask_views(context.run, context.name, views, self.llm_cfg, context.upstream, self.backend)
        return Votes.from_views([triplet_view_probability(self.question, lp, v) for v, lp in enumerate(per_view)])

    def pairs(self, rows: np.ndarray, texts: Sequence[str], context: JudgeContext) -> Votes:
        """Each pair in both text orders, "Yes" / "No" after the user's demonstrations."""
        def view(a, b):
            return View([pair_chat(self.task, texts[a], texts[b], self.demonstrations)], ("Yes", "No"))

        per_view = ask_views(context.run, context.name, [[view(a, b), view(b, a)] for a, b in rows[:, :2]],
                             self.llm_cfg, context.upstream, self.backend)
        return Votes.from_views([pair_view_probability(lp[0]) for lp in per_view])
