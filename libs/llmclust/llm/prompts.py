"""Prompt templates with named placeholders, chosen by the job's task description.

A task description reads ``"<task>: <standard>"``, e.g. ``"intent: banking customer purpose"``.
The task word picks a template set (``intent``, ``topic``; anything else gets ``generic``);
both halves fill the ``{task}`` and ``{standard}`` placeholders. Each template is a system
message, a user message and one worked example (a user/assistant pair): small models copy
the example's short answer format far more reliably than they follow an instruction.

Example::

    chat = render("lumi_label", "intent: banking customer purpose",
                  text="my card has not arrived", neighbours=numbered(["where is my card?"]))
    chat[-1]["content"]   # the user message with the text and its neighbours filled in
"""

from __future__ import annotations

from dataclasses import dataclass

from llmclust.llm.base import Chat


@dataclass(frozen=True)
class Template:
    system: str
    user: str
    example: tuple[dict, str]  # placeholder values of the worked example, and its answer


LABEL_SYSTEM = ("You name the {task} of short texts ({standard}). Reply with a label of 2 to 4 words "
                "and nothing else.")
LABEL_USER = ("Text: {text}\nSimilar texts (some may have another {task}):\n{neighbours}\n"
              "Using only the similar texts that share the text's {task}, give its {task} label.")
MULTI_SYSTEM = ("You match short texts to {task} labels ({standard}). Reply only with the numbers of "
                "the matching labels separated by commas, or 0 if none matches.")
MULTI_USER = "Text: {text}\nLabels:\n{labels}\nWhich labels fit the text's {task}?"
NAME_SYSTEM = "You name groups of texts by their {task} ({standard}). Reply with a name of 2 to 4 words."
NAME_USER = "Labels given to texts of one group:\n{labels}\nName the group's {task}."

EXAMPLES = {
    "intent": {
        "lumi_label": ({"text": "I was charged twice for one coffee",
                        "neighbours": "1. why is there a double charge on my card\n2. how do I change my PIN\n"
                                      "3. the same payment shows up two times"}, "duplicate card payment"),
        "lumi_multilabel": ({"text": "I was charged twice for one coffee",
                             "labels": "1. duplicate card payment\n2. change pin\n3. card payment charged twice"}, "1, 3"),
        "cluster_name": ({"labels": "- duplicate card payment\n- charged twice\n- double charge"}, "duplicate charge"),
    },
    "topic": {
        "lumi_label": ({"text": "Stocks fell sharply after the rate decision",
                        "neighbours": "1. markets slide as the central bank raises rates\n2. local team wins the cup\n"
                                      "3. bond yields climb on inflation fears"}, "financial markets"),
        "lumi_multilabel": ({"text": "Stocks fell sharply after the rate decision",
                             "labels": "1. financial markets\n2. football\n3. interest rates"}, "1, 3"),
        "cluster_name": ({"labels": "- financial markets\n- stock prices\n- interest rates"}, "financial markets"),
    },
    "generic": {
        "lumi_label": ({"text": "the printer keeps jamming on page two",
                        "neighbours": "1. paper stuck in the printer again\n2. how do I reset my password\n"
                                      "3. printer jams every few pages"}, "printer paper jam"),
        "lumi_multilabel": ({"text": "the printer keeps jamming on page two",
                             "labels": "1. printer paper jam\n2. password reset\n3. printer problem"}, "1, 3"),
        "cluster_name": ({"labels": "- printer paper jam\n- printer problem\n- paper stuck"}, "printer jams"),
    },
}
MESSAGES = {"lumi_label": (LABEL_SYSTEM, LABEL_USER), "lumi_multilabel": (MULTI_SYSTEM, MULTI_USER),
            "cluster_name": (NAME_SYSTEM, NAME_USER)}


def split_task(description: str) -> tuple[str, str]:
    """'intent: banking customer purpose' -> ('intent', 'banking customer purpose')."""
    task, _, standard = description.partition(":")
    task = task.strip().lower() or "category"
    return task, standard.strip() or task


def template(name: str, description: str) -> Template:
    """The template ``name`` for the task word of ``description`` (``generic`` if unknown)."""
    if name not in MESSAGES:
        raise KeyError(f"unknown prompt template {name!r}; expected one of {sorted(MESSAGES)}")
    task, _ = split_task(description)
    system, user = MESSAGES[name]
    return Template(system, user, EXAMPLES.get(task, EXAMPLES["generic"])[name])


def render(name: str, description: str, **values: str) -> Chat:
    """A chat for template ``name``: system, worked example, then the user message for ``values``."""
    tpl = template(name, description)
    task, standard = split_task(description)
    example_values, example_answer = tpl.example
    return [
        {"role": "system", "content": tpl.system.format(task=task, standard=standard)},
        {"role": "user", "content": tpl.user.format(task=task, standard=standard, **example_values)},
        {"role": "assistant", "content": example_answer},
        {"role": "user", "content": tpl.user.format(task=task, standard=standard, **values)},
    ]


def numbered(items: list[str], max_chars: int = 120) -> str:
    """'1. first\\n2. second', each item cut to ``max_chars`` (keeps prompts short)."""
    return "\n".join(f"{i}. {item[:max_chars]}" for i, item in enumerate(items, 1))


def bulleted(items: list[str], max_chars: int = 120) -> str:
    return "\n".join(f"- {item[:max_chars]}" for item in items)
