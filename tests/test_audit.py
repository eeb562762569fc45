"""The LLM-signal audit: consistent, meaningful answers keep their weight; position-biased,
random or meaningless ones are switched off."""

import numpy as np
import pytest

from llmclust.audit import AuditConfig, audit_votes, reliability
from llmclust.llm.two_views import Votes

RNG = np.random.default_rng(0)
N = 400
TRUTH = RNG.random(N) < 0.5  # the first choice is right
MARGIN = RNG.random(N)
# an embedder right 80% of the time, more often where it is decisive
EMBEDDER = np.where(RNG.random(N) < 0.6 + 0.4 * MARGIN, TRUTH, ~TRUTH)


def votes_from(view_a, view_b):
    return Votes.from_views([view_a.astype(float), view_b.astype(float)])


def test_reliability_from_self_consistency():
    assert reliability(1.0) == 1 and reliability(0.5) == 0 and reliability(0.0) == 0
    assert reliability(0.82) == pytest.approx(0.8)  # views right 90% of the time each: c = .81 + .01


def test_an_oracle_keeps_full_weight():
    result = audit_votes("triplets", votes_from(TRUTH, TRUTH), EMBEDDER, MARGIN, AuditConfig())
    assert result.weight == 1 and result.consistent == 1 and result.z > 3
    assert "weight 1.00" in result.decision


def test_a_position_biased_llm_is_switched_off():
    # "always the second listed": view A says second, view B (choices swapped) says first-listed's partner
    result = audit_votes("triplets", votes_from(np.zeros(N, bool), np.ones(N, bool)), EMBEDDER, MARGIN, AuditConfig())
    assert result.consistent == 0 and result.weight == 0 and "weight 0" in result.decision


def test_a_consistent_but_meaningless_answerer_is_switched_off():
    unrelated = RNG.random(N) < 0.5  # e.g. "the shorter text": the same in both views, unrelated to the task
    result = audit_votes("triplets", votes_from(unrelated, unrelated), EMBEDDER, MARGIN, AuditConfig())
    assert result.consistent == 1 and result.weight == 0 and "no signal beyond chance" in result.decision


def test_a_good_but_noisy_llm_gets_a_partial_weight_and_disabling_trusts_fully():
    def noisy():
        return np.where(RNG.random(N) < 0.9, TRUTH, ~TRUTH)

    votes = votes_from(noisy(), noisy())
    result = audit_votes("triplets", votes, EMBEDDER, MARGIN, AuditConfig())
    assert 0.6 < result.weight < 0.95 and result.agreement > 0.6
    assert audit_votes("triplets", votes, EMBEDDER, MARGIN, AuditConfig(enabled=False)).weight == 1


def test_unanswered_questions_are_left_out():
    p = np.where(np.arange(N) % 2 == 0, np.nan, TRUTH.astype(float))
    result = audit_votes("triplets", Votes(p, ~np.isnan(p)), EMBEDDER, MARGIN, AuditConfig())
    assert result.n == N // 2 and result.weight == 1
