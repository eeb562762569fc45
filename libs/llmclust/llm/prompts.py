"""Prompt templates with named placeholders, chosen by the job's task description.

A task description reads ``"<task>: <standard>"``, e.g. ``"intent: banking customer purpose"``.
A :class:`PromptSet` holds template sets keyed by task word (``intent``; any other word gets
``generic``), and both halves of the description fill the ``{task}`` / ``{standard}``
placeholders. Each method keeps its own set beside its code (``methods/<name>/prompts.py``);
the audit's closed questions are :data:`AUDIT_PROMPTS`. Templates are one short user message
each: with SmolLM2-135M a system message or a worked example made it answer "I'm sorry for the
confusion..." or copy the example; a plain question gave usable answers.

Example::

    chat = AUDIT_PROMPTS.render("description_fit", "intent: banking customer purpose",
                                text="my card has not arrived", candidate="card delivery")
    chat[-1]["content"]
"""

from __future__ import annotations

from llmclust.llm.base import Chat


def split_task(description: str) -> tuple[str, str]:
    """'intent: banking customer purpose' -> ('intent', 'banking customer purpose')."""
    task, _, standard = description.partition(":")
    task = task.strip().lower() or "category"
    return task, standard.strip() or task


class PromptSet:
    """Named templates per task word; ``generic`` is required and names every template."""

    def __init__(self, templates: dict[str, dict[str, str]]):
        self.templates = templates

    def template(self, name: str, description: str) -> str:
        """The template ``name`` for the task word of ``description`` (``generic`` if unknown)."""
        generic = self.templates["generic"]
        if name not in generic:
            raise KeyError(f"unknown prompt template {name!r}; expected one of {sorted(generic)}")
        task, _ = split_task(description)
        return self.templates.get(task, generic)[name]

    def render(self, name: str, description: str, **values: str) -> Chat:
        """A one-message chat: template ``name`` with the task and ``values`` filled in."""
        task, standard = split_task(description)
        values.setdefault("context", "")
        return [{"role": "user", "content": self.template(name, description).format(task=task, standard=standard,
                                                                                      **values)}]


# the audit's closed question (llmclust.llm.audit): does a description fit a text, in both orders
AUDIT_PROMPTS = PromptSet({
    "intent": {
        "description_fit": ("Customer message: {text}\nIntent: {candidate}\n"
                            "Does the intent fit the message? Answer yes or no."),
        "description_fit_swapped": ("Intent: {candidate}\nCustomer message: {text}\n"
                                    "Does the intent fit the message? Answer yes or no."),
    },
    "generic": {
        "description_fit": ("Text: {text}\n{task}: {candidate}\n"
                            "Is that the {task} of the text ({standard})? Answer yes or no."),
        "description_fit_swapped": ("{task}: {candidate}\nText: {text}\n"
                                    "Is that the {task} of the text ({standard})? Answer yes or no."),
    },
})


def numbered(items: list[str], max_chars: int = 120) -> str:
    """'1. first\\n2. second', each item cut to ``max_chars`` (keeps prompts short)."""
    return "\n".join(f"{i}. {item[:max_chars]}" for i, item in enumerate(items, 1))


def context_block(texts: list[str], max_chars: int = 120) -> str:
    """Neighbouring texts shown before the one to label ('' when there are none)."""
    if not texts:
        return ""
    return "Similar messages (some may be about something else):\n" + numbered(texts, max_chars) + "\n\n"
