"""Prompt templates: chosen by the task word, placeholders all filled."""

import pytest

from llmclust.llm.prompts import numbered, render, split_task, template


def test_split_task():
    assert split_task("intent: banking customer purpose") == ("intent", "banking customer purpose")
    assert split_task("Topic") == ("topic", "topic")


def test_template_is_chosen_by_task_word():
    assert "charged twice" in template("lumi_label", "intent: banking").example[0]["text"]
    assert template("lumi_label", "mood: feelings") == template("lumi_label", "generic: x")


def test_render_fills_every_placeholder():
    chat = render("lumi_label", "intent: banking customer purpose", text="where is my card",
                  neighbours=numbered(["card not here", "lost card"]))
    assert [m["role"] for m in chat] == ["system", "user", "assistant", "user"]
    assert "banking customer purpose" in chat[0]["content"]
    assert "where is my card" in chat[-1]["content"] and "2. lost card" in chat[-1]["content"]
    assert not any("{" in m["content"] for m in chat)


def test_unknown_template_names_the_valid_ones():
    with pytest.raises(KeyError, match="lumi_label"):
        template("nope", "intent: x")
