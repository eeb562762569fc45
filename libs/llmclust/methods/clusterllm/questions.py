"""The judges' closed questions, each asked in two views (:mod:`llmclust.llm.two_views`):
the choices swapped (triplets) or the two texts swapped (pairs). A view's probability of
each answer comes from the log-probabilities of the allowed answer tokens, normalised over
those answers only.

Triplet formulations (``clusterllm.triplet_question``; which carries signal is measured by
``benchmarks/triplet_questions.py``):

* ``choice``: the worked-examples prompt of :mod:`.prompts`, the assistant turn prefixed with
  "Choice", the answers " 1" / " 2";
* ``letters``: no examples, the choices as A and B, the answers "A" / "B";
* ``same_pair``: the anchor and each choice asked separately, "same {perspective}? yes / no";
  the choice with the higher log-odds of "yes" wins (a view per text order).

Pairs (granularity) are asked with the demonstrations prompt of :mod:`.prompts`, answers
"Yes" / "No", in both text orders.

Example::

    views = triplet_views("letters", "intent: banking", "card lost", "I lost my card", "top up failed")
    [len(v.chats) for v in views], views[0].choices       # [1, 1], ('A', 'B')
"""

from __future__ import annotations

import numpy as np

from llmclust.llm.scoring import normalised
from llmclust.llm.two_views import View, Votes, log_odds_preference
from llmclust.methods.clusterllm.prompts import choice_chat, letters_chat, same_chat

TRIPLET_NO_ANSWER = 0
PAIR_NO_ANSWER = -1
YES_NO = ("yes", "no")


class JudgeVotes(Votes):
    """Two-view answers read as ClusterLLM's: which choice of a triplet, same category or not."""

    def choices(self) -> np.ndarray:
        """Triplets: int8 1 (first choice), 2 (second), 0 (no answer, or an exact tie)."""
        return np.where(self.p > 0.5, 1, np.where(self.p < 0.5, 2, TRIPLET_NO_ANSWER)).astype(np.int8)

    def same(self) -> np.ndarray:
        """Pairs: int8 1 (same), 0 (different), -1 (no answer, or an exact tie)."""
        return np.where(self.p > 0.5, 1, np.where(self.p < 0.5, 0, PAIR_NO_ANSWER)).astype(np.int8)


def triplet_views(question: str, task: str, anchor: str, first: str, second: str) -> list[View]:
    """The chats that answer one triplet under ``question``, view by view (see the module docstring)."""
    if question == "same_pair":
        return [View([same_chat(task, anchor, first), same_chat(task, anchor, second)], YES_NO),
                View([same_chat(task, first, anchor), same_chat(task, second, anchor)], YES_NO)]
    build, choices = {"choice": (choice_chat, (" 1", " 2")), "letters": (letters_chat, ("A", "B"))}[question]
    return [View([build(task, anchor, first, second)], choices), View([build(task, anchor, second, first)], choices)]


def triplet_view_probability(question: str, logprobs: list[np.ndarray], view: int) -> np.ndarray:
    """P(first choice) per triplet from one view's log-probabilities (one array per chat of the view)."""
    if question == "same_pair":  # log-odds of "same" for each choice, compared
        return log_odds_preference(logprobs[0], logprobs[1])
    p = normalised(logprobs[0])[:, 0]
    return p if view == 0 else 1 - p  # the second view lists the choices swapped


def pair_view_probability(logprobs: np.ndarray) -> np.ndarray:
    """P(same) per pair from one view's (yes, no) log-probabilities."""
    return normalised(logprobs)[:, 0]
