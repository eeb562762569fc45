"""Parsers on real SmolLM2-style answers and on malformed ones."""

import pytest
from llmclust.llm.parsers import parse_choices, parse_label


@pytest.mark.parametrize("answer, expected", [
    ("card arrival", "card arrival"),
    ('Label: "Card Arrival."', "card arrival"),
    ("The customer wants to know how to locate their card.", "how to locate their card"),  # real SmolLM2 shape
    ("The intent is: top up failed", "top up failed"),
    ("- card not received\nThis is because the customer...", "card not received"),
    ("**Exchange rate inquiry**", "exchange rate inquiry"),
    ("one two three four five six seven eight", "one two three four five six"),
])
def test_parse_label_accepts_wordy_valid_answers(answer, expected):
    assert parse_label(answer) == expected


@pytest.mark.parametrize("answer", ["", "   \n ", "123", "...", "I'm sorry, I can't help with that.", "As an AI model"])
def test_parse_label_rejects_unusable_answers(answer):
    assert parse_label(answer) is None


@pytest.mark.parametrize("answer, expected", [
    ("1, 3", [1, 3]), ("3,1,3", [1, 3]), ("Labels 2 and 5.", [2, 5]), ("0", []),
    ("None of them", []), ("none", []), ("2\n7 is also close", [2]),
])
def test_parse_choices(answer, expected):
    assert parse_choices(answer) == expected


@pytest.mark.parametrize("answer", ["", "I think the text is about cards", "card payment"])
def test_parse_choices_rejects_answers_without_numbers(answer):
    assert parse_choices(answer) is None
