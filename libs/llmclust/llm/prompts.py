"""Prompt templates with named placeholders, chosen by the job's task description.

A task description reads ``"<task>: <standard>"``, e.g. ``"intent: banking customer purpose"``.
The task word picks a template set (``intent``; anything else gets ``generic``), and both
halves fill the ``{task}`` / ``{standard}`` placeholders. Templates are one short user
message each: with SmolLM2-135M a system message or a worked example made it answer
"I'm sorry for the confusion..." or copy the example; a plain question
("In 2 to 4 words, what does the customer want?") gave usable labels.

Example::

    chat = render("lumi_label", "intent: banking customer purpose", text="my card has not arrived",
                  context=context_block(["where is my card?"]))
    chat[-1]["content"]
"""

from __future__ import annotations

from llmclust.llm.base import Chat

# {context} is empty or a block of neighbouring texts ending in a blank line (see context_block)
TEMPLATES = {
    "intent": {
        "lumi_label": "{context}Customer message: {text}\nIn 2 to 4 words, what does the customer want?",
        "lumi_multilabel": ("Customer message: {text}\nPossible intents:\n{labels}\n"
                            "Which intents fit the message? Reply with their numbers only."),
        "cluster_name": "Intents of customer messages in one group:\n{labels}\nIn 2 to 4 words, name the group.",
        "description_fit": ("Customer message: {text}\nIntent: {candidate}\n"
                            "Does the intent fit the message? Answer yes or no."),
        "description_fit_swapped": ("Intent: {candidate}\nCustomer message: {text}\n"
                                    "Does the intent fit the message? Answer yes or no."),
    },
    "generic": {
        "lumi_label": "{context}Text: {text}\nIn 2 to 4 words, what is the {task} of this text ({standard})?",
        "lumi_multilabel": ("Text: {text}\nPossible {task} labels ({standard}):\n{labels}\n"
                            "Which labels fit the text? Reply with their numbers only."),
        "cluster_name": "{task} labels of texts in one group:\n{labels}\nIn 2 to 4 words, name the group.",
        "description_fit": ("Text: {text}\n{task}: {candidate}\n"
                            "Is that the {task} of the text ({standard})? Answer yes or no."),
        "description_fit_swapped": ("{task}: {candidate}\nText: {text}\n"
                                    "Is that the {task} of the text ({standard})? Answer yes or no."),
    },
}


def split_task(description: str) -> tuple[str, str]:
    """'intent: banking customer purpose' -> ('intent', 'banking customer purpose')."""
    task, _, standard = description.partition(":")
    task = task.strip().lower() or "category"
    return task, standard.strip() or task


def template(name: str, description: str) -> str:
    """The template ``name`` for the task word of ``description`` (``generic`` if unknown)."""
    if name not in TEMPLATES["generic"]:
        raise KeyError(f"unknown prompt template {name!r}; expected one of {sorted(TEMPLATES['generic'])}")
    task, _ = split_task(description)
    return TEMPLATES.get(task, TEMPLATES["generic"])[name]


def render(name: str, description: str, **values: str) -> Chat:
    """A one-message chat: template ``name`` with the task and ``values`` filled in."""
    task, standard = split_task(description)
    values.setdefault("context", "")
    return [{"role": "user", "content": template(name, description).format(task=task, standard=standard, **values)}]


def numbered(items: list[str], max_chars: int = 120) -> str:
    """'1. first\\n2. second', each item cut to ``max_chars`` (keeps prompts short)."""
    return "\n".join(f"{i}. {item[:max_chars]}" for i, item in enumerate(items, 1))


def context_block(texts: list[str], max_chars: int = 120) -> str:
    """Neighbouring texts shown before the one to label ('' when there are none)."""
    if not texts:
        return ""
    return "Similar messages (some may be about something else):\n" + numbered(texts, max_chars) + "\n\n"
