import numpy as np
import pytest

from llmclust.methods.clusterllm.config import Demonstration
from llmclust.methods.clusterllm.judges import OracleJudge, pair_chat, parse_choice, parse_yes_no, triplet_chat


def test_oracle_triplets_and_pairs():
    judge = OracleJudge(["a", "a", "b", "b", "c"])
    rows = np.array([[0, 1, 2], [0, 2, 1], [0, 2, 3], [2, 3, 1]])
    np.testing.assert_array_equal(judge.triplets(rows), [1, 2, 0, 1])  # 0: neither choice shares the class
    np.testing.assert_array_equal(judge.pairs(np.array([[0, 1], [1, 2]])), [1, 0])
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


class ScriptedBackend:
    """Answers from a script keyed by a word of the last user message (no model)."""

    model_id = "scripted"

    def __init__(self, script):
        self.script, self.seen = script, []

    def generate(self, chats, params):
        self.seen += chats
        return [[next(v for k, v in self.script.items() if k in chat[-1]["content"])] * params.n for chat in chats]


def test_llm_judge_prompts_parses_and_counts_failures(tmp_path):
    from llmclust.methods.clusterllm.judges import JudgeContext, LLMJudge
    from llmclust.llm import LLMConfig
    from llmclust.runs import RunDir

    run = RunDir(tmp_path / "run")
    upstream = run.stage("triplets", "x")
    texts = ["lost card", "card missing", "top up failed", "rambling"]
    backend = ScriptedBackend({"Query: lost card": "Choice 1", "Query: top up": "Choice 2 I think",
                               "Query: rambling": "both?", "Text A: lost": "Yes, same.", "Text A: top": "nope"})
    judge = LLMJudge(LLMConfig(num_actors=0, cache=False), "intent: purpose",
                     [Demonstration("a", "b", True, "why")], backend=backend)
    choices = judge.triplets(np.array([[0, 1, 2], [2, 3, 0], [3, 0, 1]]), texts, JudgeContext(run, "llm_t", upstream))
    np.testing.assert_array_equal(choices, [1, 2, 0])  # unparseable -> 0, after one retry
    assert len(backend.seen) == 4 and "terms of intent" in backend.seen[0][-1]["content"]
    same = judge.pairs(np.array([[0, 1], [2, 0]]), texts, JudgeContext(run, "llm_p", upstream))
    np.testing.assert_array_equal(same, [1, -1])  # "nope" is not a yes/no word: unanswered
    assert backend.seen[-1][2] == {"role": "assistant", "content": "Yes. why"}


@pytest.mark.slow
def test_llm_judge_with_real_smollm2(tmp_path, small_csv):
    import csv

    from llmclust.methods.clusterllm.judges import JudgeContext, LLMJudge
    from llmclust.llm import LLMConfig, make_backend
    from llmclust.runs import RunDir

    texts = [r["text"] for r in csv.DictReader(open(small_csv))]
    cfg = LLMConfig(num_actors=0, device="cpu", batch_size=8)
    run = RunDir(tmp_path / "run")
    upstream = run.stage("triplets", "x")
    judge = LLMJudge(cfg, "intent: what the banking customer wants",
                     [Demonstration(texts[0], texts[1], True, "same request")], backend=make_backend(cfg))
    choices = judge.triplets(np.array([[0, 1, 40], [40, 41, 0], [80, 120, 81], [121, 122, 160]]), texts,
                             JudgeContext(run, "llm_triplets", upstream))
    same = judge.pairs(np.array([[0, 1], [0, 100]]), texts, JudgeContext(run, "llm_pairs", upstream))
    assert set(choices.tolist()) <= {0, 1, 2} and len(choices) == 4
    assert set(same.tolist()) <= {-1, 0, 1} and len(same) == 2
    assert (choices > 0).sum() >= 2  # the worked examples make most answers parseable
    assert (tmp_path / "run" / "llm_triplets" / "answers.parquet").exists()  # prompts and answers kept
