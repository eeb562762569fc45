"""Judges answer ClusterLLM's two questions: triplets (which choice matches the anchor) and
pairs (same category or not).

* :class:`LLMJudge` asks an LLM through the LLM layer: closed questions answered from the
  log-probabilities of the allowed answers, each in two views whose position bias cancels
  (:mod:`.questions`). No text is generated or parsed.
* :class:`OracleJudge` answers from ground-truth labels, as the paper's "GT" ablation does.
  It exists to check the training and granularity machinery apart from LLM quality and is
  only ever built by benchmarks and tests: no config key selects it.

Answers are :class:`.questions.JudgeVotes`: the probability of the first answer (choice 1;
"same") and whether both views agreed. ``votes.choices()`` gives triplets as int8 1 / 2
(0: no answer), ``votes.same()`` pairs as 1 same / 0 different (-1: no answer).

Example::

    judge = OracleJudge(["card", "card", "topup"])
    judge.triplets(np.array([[0, 1, 2]]), texts=None, context=None).choices()    # array([1], dtype=int8)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import numpy as np

from llmclust.llm.two_views import View, ask_views
from llmclust.methods.clusterllm.config import Demonstration
from llmclust.methods.clusterllm.prompts import pair_chat
from llmclust.methods.clusterllm.questions import (
    JudgeVotes,
    pair_view_probability,
    triplet_view_probability,
    triplet_views,
)


@dataclass
class JudgeContext:
    """Where an LLM judge checkpoints its answers: the run, a stage name, the upstream stage."""

    run: Any  # runs.RunDir
    name: str
    upstream: Any  # runs.Stage


class TripletJudge(Protocol):
    name: str  # identifies the answers (model, prompts) in stage fingerprints

    def triplets(self, rows: np.ndarray, texts: Sequence[str], context: JudgeContext) -> JudgeVotes:
        """(m, 3) rows (anchor, choice 1, choice 2) -> P(choice 1) per row, and its consistency."""
        ...


class PairJudge(Protocol):
    name: str

    def pairs(self, rows: np.ndarray, texts: Sequence[str], context: JudgeContext) -> JudgeVotes:
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

    def triplets(self, rows: np.ndarray, texts=None, context=None) -> JudgeVotes:
        anchor, first, second = (self.labels[rows[:, i]] for i in range(3))
        hit1, hit2 = first == anchor, second == anchor
        p = np.where(hit1 & ~hit2, 1.0, np.where(hit2 & ~hit1, 0.0, np.nan))
        return JudgeVotes(p, ~np.isnan(p))

    def pairs(self, rows: np.ndarray, texts=None, context=None) -> JudgeVotes:
        same = (self.labels[rows[:, 0]] == self.labels[rows[:, 1]]).astype(float)
        return JudgeVotes(same, np.ones(len(same), bool))


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

    def triplets(self, rows: np.ndarray, texts: Sequence[str], context: JudgeContext) -> JudgeVotes:
        views = [triplet_views(self.question, self.task, texts[a], texts[c1], texts[c2]) for a, c1, c2 in rows[:, :3]]
        per_view = ask_views(context.run, context.name, views, self.llm_cfg, context.upstream, self.backend)
        return JudgeVotes.from_views([triplet_view_probability(self.question, lp, v) for v, lp in enumerate(per_view)])

    def pairs(self, rows: np.ndarray, texts: Sequence[str], context: JudgeContext) -> JudgeVotes:
        """Each pair in both text orders, "Yes" / "No" after the user's demonstrations."""
        def view(a, b):
            return View([pair_chat(self.task, texts[a], texts[b], self.demonstrations)], ("Yes", "No"))

        per_view = ask_views(context.run, context.name, [[view(a, b), view(b, a)] for a, b in rows[:, :2]],
                             self.llm_cfg, context.upstream, self.backend)
        return JudgeVotes.from_views([pair_view_probability(lp[0]) for lp in per_view])
