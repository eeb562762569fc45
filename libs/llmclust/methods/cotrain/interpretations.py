"""Task-aware interpretations: the LLM explains each text as "Reasoning: ... / Keywords: ...".

The prompt is built from the task description ("intent: banking customer purpose"): the LLM
is asked which <standard> the text expresses, for one short reasoning sentence and at most 8
keywords, with one worked example (small models copy an example's format far more reliably
than they follow instructions). One greedy answer and one sampled answer per configured
temperature are generated through the LLM layer's checkpointed, cached stage (:mod:`llmclust.llm.stage`).

:func:`parse_interpretation` accepts the wordy shapes small models produce (markdown bold,
bullets, numbered keywords, answers cut off by the token limit) and normalises them; an
answer with neither a reasoning nor a keyword part is a failure (``None``), which the LLM
stage retries once and counts.

Example::

    parse_interpretation("**Reasoning:** The user lost a card.\\n**Keywords:** 1. lost card 2. card")
    # 'Reasoning: The user lost a card.\\nKeywords: lost card, card'
    chats = interpretation_chats(["my card never came"], "intent: banking customer purpose")
"""

from __future__ import annotations

import re

from llmclust.llm.base import Chat
from llmclust.llm.prompts import split_task

MAX_KEYWORDS = 8
MAX_REASONING_CHARS = 400

SYSTEM = ("You explain short texts so that texts with the same {task} can be grouped. Work out which "
          "{standard} the text is about. Answer in exactly two lines and nothing else:\n"
          "Reasoning: one short sentence\nKeywords: at most 8 comma-separated keywords")
USER = "Text: {text}"
EXAMPLE_TEXT = "the printer stops after two pages and shows a paper error"
EXAMPLE_ANSWER = ("Reasoning: The person reports that the printer gets paper stuck and stops printing.\n"
                  "Keywords: printer, paper jam, printing stops, hardware fault")

_MARKUP = re.compile(r"[*#_`]+")
_REASONING = re.compile(r"reasoning\s*[:\-]\s*(.*?)(?=key\s*words?\b|$)", re.IGNORECASE | re.DOTALL)
_KEYWORDS = re.compile(r"key\s*words?\s*[:\-]\s*(.*?)(?=\n\s*\n|reasoning\s*[:\-]|text\s*:|$)", re.IGNORECASE | re.DOTALL)
_ITEM_MARKER = re.compile(r"^\s*(?:[-•]|\d+[.)])\s*")


def interpretation_chats(texts: list[str], description: str) -> list[Chat]:
    """One chat per text: system instructions for the task, a worked example, then the text."""
    task, standard = split_task(description)
    system = SYSTEM.format(task=task, standard=standard)
    return [[{"role": "system", "content": system},
             {"role": "user", "content": USER.format(text=EXAMPLE_TEXT)},
             {"role": "assistant", "content": EXAMPLE_ANSWER},
             {"role": "user", "content": USER.format(text=text)}] for text in texts]


def _keywords(raw: str) -> list[str]:
    items = re.split(r"[,;\n]|\s(?=\d+[.)]\s)", raw)
    seen, out = set(), []
    for item in items:
        word = " ".join(_ITEM_MARKER.sub("", item).strip(" .\"'").split()[:5])
        if word and word.lower() not in seen:
            seen.add(word.lower())
            out.append(word)
    return out[:MAX_KEYWORDS]


def parse_interpretation(answer: str) -> str | None:
    """Normalised "Reasoning: ...\\nKeywords: a, b" text, or None if the answer has neither part."""
    text = _MARKUP.sub("", answer or "")
    reasoning_match, keywords_match = _REASONING.search(text), _KEYWORDS.search(text)
    reasoning = " ".join(reasoning_match.group(1).split())[:MAX_REASONING_CHARS] if reasoning_match else ""
    keywords = _keywords(keywords_match.group(1)) if keywords_match else []
    parts = ([f"Reasoning: {reasoning}"] if reasoning else []) + ([f"Keywords: {', '.join(keywords)}"] if keywords else [])
    return "\n".join(parts) or None
