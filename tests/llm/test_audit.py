"""The LLM-signal audit: consistent, meaningful answers keep their weight; position-biased,
random or meaningless ones are switched off."""

import numpy as np
import pytest
from llmclust.llm.audit import AuditConfig, audit_votes, reliability
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


class FitReader:
    """Answers "does it fit?" by whether the candidate's first word occurs in the text; or,
    with ``always``, says that answer to everything."""

    model_id = "fit-reader"

    def __init__(self, always: str = ""):
        self.always = always

    def generate(self, chats, params):
        out = []
        for chat in chats:
            lines = dict(line.split(": ", 1) for line in chat[-1]["content"].splitlines() if ": " in line)
            fits = lines["Intent"].split()[0] in lines["Customer message"]
            answer = self.always or ("yes" if fits else "no")
            out.append(["-0.1" if c == answer else "-2.5" for c in params.choices])
        return out


def _described_corpus(n_per=30, seed=0):
    rng = np.random.default_rng(seed)
    topics = ["card arrival", "refund request", "exchange rate"]
    centres = rng.normal(size=(3, 16))
    truth = np.repeat(np.arange(3), n_per)
    vectors = centres[truth] + 0.3 * rng.normal(size=(len(truth), 16))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = centres / np.linalg.norm(centres, axis=1, keepdims=True)
    texts = [f"my {topics[t].split()[0]} question {i}" for i, t in enumerate(truth)]
    return texts, [topics[t] for t in truth], vectors.astype(np.float32), unit[truth].astype(np.float32)


@pytest.mark.parametrize("always, weighted", [("", True), ("yes", False), ("no", False)])
def test_description_audit_trusts_an_llm_that_stands_by_its_descriptions(tmp_path, always, weighted):
    from llmclust.llm import LLMConfig
    from llmclust.llm.audit import description_audit
    from llmclust.store.runs import RunDir

    texts, descriptions, vectors, description_vectors = _described_corpus()
    run = RunDir(tmp_path / "run")
    result = description_audit(run, "labels", AuditConfig(sample=60), "intent: banking", texts, descriptions, vectors,
                               description_vectors, LLMConfig(num_actors=0, cache=False), run.stage("up", "x"),
                               backend=FitReader(always))
    assert result.n == 60 and (result.weight == 1) == weighted and (result.weight == 0) == (not weighted)
    assert (tmp_path / "run" / "llm_labels_audit" / "answers.parquet").exists()  # 4 prompts a text, kept
