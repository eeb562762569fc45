"""ClusterLLM's prompts, in one place: triplets in three formulations, pairs after the user's demonstrations.

Every chat opens with one system line (:data:`SYSTEM`). ``choice``: two domain-neutral worked
examples, then "Choice 1 or Choice 2?"; ``letters``: no examples, A / B; ``same_pair``: the
anchor and one text, "the same {perspective}? yes / no". Pairs: the user's demonstrations
(``clusterllm.granularity.demonstrations``) as answered turns, then "same category? Yes / No".
``parse_choice`` / ``parse_yes_no`` read generated answers (benchmarks compare formulations).

Example::

    triplet_chat("intent: banking", "card lost", "I lost my card", "top up failed")[-1]["content"]
    parse_choice("Choice 2."), parse_yes_no("No, they differ.")        # (2, False)
"""

from __future__ import annotations

import re
from typing import Sequence

from llmclust.llm.base import Chat
from llmclust.llm.prompts import split_task
from llmclust.methods.clusterllm.config import Demonstration

SYSTEM = "You answer with a few words only. Never explain."

TRIPLET_PROMPT = (
    "Task: {task}\n"
    "Query: {anchor}\n"
    "Choice 1: {choice_1}\n"
    "Choice 2: {choice_2}\n"
    "Which choice is more similar to the Query in terms of {perspective}? "
    "Reply with exactly 'Choice 1' or 'Choice 2'."
)

# domain-neutral worked examples, so that they suit any task description
TRIPLET_EXAMPLES = [
    ({"anchor": "the printer jams on every page", "choice_1": "how do I reset my password",
      "choice_2": "paper keeps getting stuck in the printer"}, "Choice 2"),
    ({"anchor": "I forgot my login password", "choice_1": "cannot sign in, password lost",
      "choice_2": "the screen is flickering"}, "Choice 1"),
]

PAIR_PROMPT = (
    "Task: {task}\n"
    "Text A: {text_a}\n"
    "Text B: {text_b}\n"
    "Do Text A and Text B belong to the same category? Reply 'Yes' or 'No'."
)

DEMO_ANSWER = "{answer}. {why}"

_CHOICE = re.compile(r"choice\s*([12])\b|^\s*\(?([12])\)?\b", re.IGNORECASE)
_YES_NO = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


def parse_choice(answer: str) -> int | None:
    """1 or 2 when the answer names exactly one choice, else None."""
    found = {int(a or b) for a, b in _CHOICE.findall(answer)}
    return found.pop() if len(found) == 1 else None


def parse_yes_no(answer: str) -> bool | None:
    """The first "yes"/"no" word of the answer, else None."""
    match = _YES_NO.search(answer)
    return None if match is None else match.group(1).lower() == "yes"


def triplet_chat(task: str, anchor: str, choice_1: str, choice_2: str) -> Chat:
    """Two worked examples (one answer each) first: small models copy the answer format."""
    perspective = split_task(task)[0]
    chat: Chat = [{"role": "system", "content": SYSTEM}]
    for example, answer in TRIPLET_EXAMPLES:
        chat.append({"role": "user", "content": TRIPLET_PROMPT.format(task=task, perspective=perspective, **example)})
        chat.append({"role": "assistant", "content": answer})
    prompt = TRIPLET_PROMPT.format(task=task, perspective=perspective, anchor=anchor, choice_1=choice_1, choice_2=choice_2)
    chat.append({"role": "user", "content": prompt})
    return chat


def pair_chat(task: str, text_a: str, text_b: str, demonstrations: Sequence[Demonstration]) -> Chat:
    """Demonstrations come first as answered turns, so the model copies their short form."""
    chat: Chat = [{"role": "system", "content": SYSTEM}]
    for demo in demonstrations:
        chat.append({"role": "user", "content": PAIR_PROMPT.format(task=task, text_a=demo.text_a, text_b=demo.text_b)})
        answer = DEMO_ANSWER.format(answer="Yes" if demo.same else "No", why=demo.why).strip()
        chat.append({"role": "assistant", "content": answer})
    chat.append({"role": "user", "content": PAIR_PROMPT.format(task=task, text_a=text_a, text_b=text_b)})
    return chat


SYSTEM = "You answer with a few words only. Never explain."
LETTERS_PROMPT = (
    "Task: {task}\n"
    "Query: {anchor}\n"
    "A: {first}\n"
    "B: {second}\n"
    "Which one, A or B, has the same {perspective} as the Query? Answer with the letter only."
)
SAME_PROMPT = (
    "Task: {task}\n"
    "Text 1: {a}\n"
    "Text 2: {b}\n"
    "Do Text 1 and Text 2 have the same {perspective}? Answer yes or no."
)
YES_NO = ("yes", "no")


def _user(content: str) -> list[dict]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": content}]


def same_chat(task: str, a: str, b: str) -> Chat:
    return _user(SAME_PROMPT.format(task=task, perspective=split_task(task)[0], a=a, b=b))


def letters_chat(task: str, anchor: str, first: str, second: str) -> Chat:
    return _user(LETTERS_PROMPT.format(task=task, perspective=split_task(task)[0], anchor=anchor,
                                       first=first, second=second))


def choice_chat(task: str, anchor: str, first: str, second: str) -> Chat:
    """The worked-examples triplet prompt, the assistant turn begun with "Choice": the next token answers."""
    return triplet_chat(task, anchor, first, second) + [{"role": "assistant", "content": "Choice"}]
