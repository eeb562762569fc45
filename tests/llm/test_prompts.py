"""Prompt templates: chosen by the task word, placeholders all filled."""

import pytest
from llmclust.llm.prompts import AUDIT_PROMPTS, context_block, numbered, split_task
from llmclust.methods.lumi.prompts import LUMI_PROMPTS


def test_split_task():
    assert split_task("intent: banking customer purpose") == ("intent", "banking customer purpose")
    assert split_task("Topic") == ("topic", "topic")


def test_template_is_chosen_by_task_word():
    assert "customer" in LUMI_PROMPTS.template("lumi_label", "intent: banking")
    assert LUMI_PROMPTS.template("lumi_label", "mood: feelings") == LUMI_PROMPTS.template("lumi_label", "anything: else")
    assert "Customer message" in AUDIT_PROMPTS.template("description_fit", "intent: banking")


def test_render_fills_every_placeholder():
    chat = LUMI_PROMPTS.render("lumi_label", "topic: news section", text="stocks fell",
                               context=context_block(["markets slide", "rates rise"]))
    content = chat[0]["content"]
    assert chat[0]["role"] == "user" and "{" not in content
    assert "stocks fell" in content and "2. rates rise" in content and "news section" in content
    assert "Similar" not in LUMI_PROMPTS.render("lumi_label", "intent: x", text="t")[0]["content"]


def test_numbered_cuts_long_items():
    assert numbered(["abcdef", "g"], max_chars=3) == "1. abc\n2. g"


def test_unknown_template_names_the_valid_ones():
    with pytest.raises(KeyError, match="lumi_label"):
        LUMI_PROMPTS.template("nope", "intent: x")
