import numpy as np
import pyarrow.parquet as pq
import pytest
from llmclust.methods.clusterllm.config import Demonstration
from llmclust.methods.clusterllm.judges import OracleJudge
from llmclust.methods.clusterllm.prompts import (
    pair_chat,
    parse_choice,
    parse_yes_no,
    triplet_chat,
)


def test_oracle_triplets_and_pairs():
    judge = OracleJudge(["a", "a", "b", "b", "c"])
    rows = np.array([[0, 1, 2], [0, 2, 1], [0, 2, 3], [2, 3, 1]])
    votes = judge.triplets(rows)
    np.testing.assert_array_equal(votes.choices(), [1, 2, 0, 1])  # 0: neither choice shares the class
    np.testing.assert_array_equal(votes.consistent, [True, True, False, True])
    np.testing.assert_array_equal(judge.pairs(np.array([[0, 1], [1, 2]])).same(), [1, 0])
    assert judge.name != OracleJudge(["a", "a", "b", "b", "d"]).name  # other labels, other fingerprint


@pytest.mark.parametrize("answer,expected", [
    ("Choice 1", 1), ("choice 2.", 2), ("Choice2", 2), ("2", 2), ("(1) because", 1),
    ("Choice 1 or Choice 2", None), ("I cannot tell", None), ("", None),
])
def test_parse_choice(answer, expected):
    assert parse_choice(answer) == expected


@pytest.mark.parametrize("answer,expected", [
    ("Yes", True), ("no.", False), ("No, they differ. Yes?", False), ("Yesterday", None), ("maybe", None),
])
def test_parse_yes_no(answer, expected):
    assert parse_yes_no(answer) == expected


def test_prompts_fill_every_placeholder():
    chat = triplet_chat("intent: customer purpose", "lost card", "card missing", "top up failed")
    text = chat[-1]["content"]
    assert "Query: lost card" in text and "Choice 2: top up failed" in text and "terms of intent" in text
    assert "{" not in text and [m["role"] for m in chat[:3]] == ["system", "user", "assistant"]
    demos = [Demonstration("a", "b", True, "same thing"), Demonstration("c", "d", False, "differ")]
    chat = pair_chat("intent: x", "t1", "t2", demos)
    assert [m["role"] for m in chat] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert chat[2]["content"] == "Yes. same thing" and chat[4]["content"].startswith("No.")
    assert "Text A: t1" in chat[-1]["content"]


class ScoringBackend:
    """Answers closed questions with log-probabilities (no model): ``prefer`` picks the answer
    from the last user message; the preferred answer gets log-probability -0.1, the other -2.5."""

    model_id = "scripted"

    def __init__(self, prefer):
        self.prefer, self.seen = prefer, []

    def generate(self, chats, params):
        assert params.choices, "the judge asks closed questions only"
        self.seen += chats
        out = []
        for chat in chats:
            best = self.prefer(next(m for m in reversed(chat) if m["role"] == "user")["content"], params.choices)
            out.append(["-0.1" if c == best else "-2.5" for c in params.choices])
        return out


def by_content(message, choices):
    """A judge that reads: the listed choice that shares the query's first word."""
    lines = dict(line.split(": ", 1) for line in message.splitlines() if ": " in line)
    if choices == ("A", "B"):
        return "A" if lines["Query"].split()[0] in lines["A"] else "B"
    return "Yes" if lines["Text A"].split()[0] == lines["Text B"].split()[0] else "No"


def judge_with(backend, tmp_path, question="letters"):  # not the default: A/B is the simplest to script
    from llmclust.llm import LLMConfig
    from llmclust.methods.clusterllm.judges import JudgeContext, LLMJudge
    from llmclust.store.runs import RunDir

    run = RunDir(tmp_path / "run")
    judge = LLMJudge(LLMConfig(num_actors=0, cache=False), "intent: purpose",
                     [Demonstration("a", "b", True, "why")], question=question, backend=backend)
    return judge, lambda name: JudgeContext(run, name, run.stage("triplets", "x"))


TEXTS = ["lost card", "lost my card again", "top up failed", "top up twice"]


def test_llm_judge_asks_both_views_and_a_reading_judge_is_consistent(tmp_path):
    backend = ScoringBackend(by_content)
    judge, context = judge_with(backend, tmp_path)
    votes = judge.triplets(np.array([[0, 1, 2], [2, 0, 3], [3, 0, 2]]), TEXTS, context("llm_t"))
    np.testing.assert_array_equal(votes.choices(), [1, 2, 2])
    assert votes.consistent.all() and len(backend.seen) == 6  # every triplet in both choice orders
    asked = [c[-1]["content"] for c in backend.seen if "Query: lost card" in c[-1]["content"]]
    assert sorted(a.split("\n")[2] for a in asked) == ["A: lost my card again", "A: top up failed"]
    same = judge.pairs(np.array([[0, 1], [2, 0]]), TEXTS, context("llm_p"))
    np.testing.assert_array_equal(same.same(), [1, 0])
    assert backend.seen[-1][2] == {"role": "assistant", "content": "Yes. why"}  # demonstrations come first


def test_a_position_biased_judge_is_never_consistent(tmp_path):
    judge, context = judge_with(ScoringBackend(lambda message, choices: choices[-1]), tmp_path)
    votes = judge.triplets(np.array([[0, 1, 2], [2, 0, 3]]), TEXTS, context("llm_t"))
    assert not votes.consistent.any()
    np.testing.assert_allclose(votes.p, 0.5)  # the two views cancel exactly


@pytest.mark.parametrize("question", ["choice", "same_pair"])
def test_every_formulation_reads_the_content(tmp_path, question):
    def reader(message, choices):
        if choices == (" 1", " 2"):
            lines = dict(line.split(": ", 1) for line in message.splitlines() if ": " in line)
            return " 1" if lines["Query"].split()[0] in lines["Choice 1"] else " 2"
        lines = dict(line.split(": ", 1) for line in message.splitlines() if ": " in line)
        return "yes" if lines["Text 1"].split()[0] == lines["Text 2"].split()[0] else "no"

    judge, context = judge_with(ScoringBackend(reader), tmp_path, question)
    votes = judge.triplets(np.array([[0, 1, 2], [2, 0, 3]]), TEXTS, context("llm_t"))
    np.testing.assert_array_equal(votes.choices(), [1, 2])
    assert votes.consistent.all()


@pytest.mark.slow
def test_llm_judge_with_real_smollm2(tmp_path, small_csv):
    import csv

    from llmclust.llm import LLMConfig, make_backend
    from llmclust.methods.clusterllm.judges import JudgeContext, LLMJudge
    from llmclust.store.runs import RunDir

    texts = [r["text"] for r in csv.DictReader(open(small_csv))]
    cfg = LLMConfig(num_actors=0, device="cpu", batch_size=8)
    run = RunDir(tmp_path / "run")
    upstream = run.stage("triplets", "x")
    judge = LLMJudge(cfg, "intent: what the banking customer wants",
                     [Demonstration(texts[0], texts[1], True, "same request")], backend=make_backend(cfg))
    votes = judge.triplets(np.array([[0, 1, 40], [40, 41, 0], [80, 120, 81], [121, 122, 160]]), texts,
                           JudgeContext(run, "llm_triplets", upstream))
    same = judge.pairs(np.array([[0, 1], [0, 100]]), texts, JudgeContext(run, "llm_pairs", upstream))
    # every question gets a probability (no parsing can fail), strictly between 0 and 1
    assert len(votes.p) == 4 and ((votes.p > 0) & (votes.p < 1)).all()
    assert len(same.p) == 2 and ((same.p > 0) & (same.p < 1)).all()
    answers = pq.read_table(tmp_path / "run" / "llm_triplets" / "answers.parquet")  # prompts and answers kept
    assert answers.num_rows == 16  # 4 triplets x 2 views x 2 yes/no questions (same_pair, the default)
