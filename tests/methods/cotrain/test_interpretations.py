import pytest
from llmclust.config import ConfigError
from llmclust.methods.cotrain.config import CoTrainConfig
from llmclust.methods.cotrain.interpretations import (
    interpretation_chats,
    parse_interpretation,
)


@pytest.mark.parametrize("answer, expected", [
    ("Reasoning: The user lost a card.\nKeywords: lost card, card, help",
     "Reasoning: The user lost a card.\nKeywords: lost card, card, help"),
    # SmolLM2-style markdown, numbered keywords, duplicates and more than 8 keywords
    ("**Reasoning:** The customer asks about a refund.\n\n**Keywords:** 1. refund 2. Refund 3. account",
     "Reasoning: The customer asks about a refund.\nKeywords: refund, account"),
    ("Keywords: a, b, c, d, e, f, g, h, i, j", "Keywords: a, b, c, d, e, f, g, h"),
    # cut off by the token limit before the keywords: the reasoning still counts
    ("Reasoning: The text is about a transfer that", "Reasoning: The text is about a transfer that"),
    # keywords end at a blank line; chatter after it is ignored
    ("Keywords: top up, failed\n\nI hope this helps!", "Keywords: top up, failed"),
])
def test_parser_normalises_wordy_answers(answer, expected):
    assert parse_interpretation(answer) == expected


@pytest.mark.parametrize("answer", ["", "The customer wants to know", "Reasoning:\nKeywords:"])
def test_parser_rejects_answers_without_either_part(answer):
    assert parse_interpretation(answer) is None


def test_chats_carry_the_task_and_the_text():
    chat = interpretation_chats(["my card never came"], "intent: banking customer purpose")[0]
    assert [m["role"] for m in chat] == ["system", "user", "assistant", "user"]
    assert "intent" in chat[0]["content"] and "banking customer purpose" in chat[0]["content"]
    assert chat[-1]["content"].endswith("my card never came")
    assert parse_interpretation(chat[2]["content"]) == chat[2]["content"]  # the example parses as is


def test_config_errors_say_key_value_and_expectation():
    with pytest.raises(ConfigError, match="task='intent'.*<task>: <standard>"):
        CoTrainConfig(task="intent")
    with pytest.raises(ConfigError, match="preference='best'.*density"):
        CoTrainConfig(preference="best")
    with pytest.raises(ConfigError, match="temperatures"):
        CoTrainConfig(temperatures=[])
