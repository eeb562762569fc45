"""Closed questions asked in two views, so that an LLM's preference for a position cancels.

A small LLM prefers an answer position ("2", "B") whatever the texts say. Every closed
question is therefore asked twice, the second time with the choices (or the two texts)
swapped; each view's answer is a probability from the log-probabilities of the allowed
answers (:mod:`llmclust.llm.scoring`), and the question's answer is the mean of the two. It is
*consistent* when both views prefer the same answer on their own; how often that happens is
what :mod:`llmclust.llm.audit` reads the LLM's reliability from.

Example::

    views = [[View([chat_ab], ("A", "B")), View([chat_ba], ("A", "B"))] for chat_ab, chat_ba in questions]
    per_view = ask_views(run, "llm_fit", views, LLMConfig(), upstream)   # [view][slot] -> (m, 2) log-probs
    votes = Votes.from_views([normalised(per_view[0][0])[:, 0], 1 - normalised(per_view[1][0])[:, 0]])
    votes.p, votes.consistent
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmclust.llm.base import Chat, SamplingParams
from llmclust.llm.scoring import choice_logprobs


@dataclass
class View:
    """Chats of one view of a question and the answers they allow (the first answer means
    "first choice" or "same")."""

    chats: list[Chat]
    choices: tuple[str, ...]


def ask_views(run, name: str, questions: list[list[View]], llm_cfg, upstream, backend=None) -> list[list[np.ndarray]]:
    """Log-probabilities of every question's views: ``[view][slot]`` -> (questions, choices).

    All chats go to one checkpointed LLM stage ``name`` (cached, budgeted); every question has
    the same views and slots, and one set of choices.
    """
    from llmclust.llm.stage import generate_stage

    shape = questions[0]
    slots = [(v, j) for v in range(len(shape)) for j in range(len(shape[v].chats))]
    chats = [q[v].chats[j] for v, j in slots for q in questions]
    params = SamplingParams(choices=shape[0].choices, max_tokens=1)
    result = generate_stage(run, name, chats, params, llm_cfg, upstream, backend=backend)
    logprobs = choice_logprobs(result.answers).reshape(len(slots), len(questions), -1)
    return [[logprobs[slots.index((v, j))] for j in range(len(shape[v].chats))] for v in range(len(shape))]


def log_odds_preference(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """P(the first is preferred) from two (n, 2) yes / no log-probability arrays: the logistic of
    the difference of their log-odds of "yes". A model's leaning to "yes" cancels out."""
    return 1 / (1 + np.exp(-((first[:, 0] - first[:, 1]) - (second[:, 0] - second[:, 1]))))


@dataclass
class Votes:
    """Two-view answers: ``p`` of the first answer per question, and whether the views agreed."""

    p: np.ndarray  # mean of the views' probabilities; NaN where a view failed
    consistent: np.ndarray  # bool: both views prefer the same answer

    @classmethod
    def from_views(cls, views: list[np.ndarray]) -> "Votes":
        stacked = np.stack(views)
        consistent = np.all(stacked > 0.5, axis=0) | np.all(stacked < 0.5, axis=0)
        return cls(stacked.mean(axis=0), consistent)

    @property
    def confidence(self) -> np.ndarray:
        """0 (a coin flip) .. 1 (certain), from the mean probability."""
        return np.abs(self.p - 0.5) * 2
