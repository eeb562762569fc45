"""Parsers of raw LLM answers: a value, or ``None`` when the answer cannot be used.

``None`` is what the LLM stage counts as a parse failure (and retries once), so a parser
never guesses: it accepts the common wordy shapes of a valid answer and rejects the rest.

Example::

    parse_label('Label: "Card Arrival."')                   # 'card arrival'
    parse_label("The customer wants to know where their card is.")  # 'where their card is'
    parse_choices("1, 3")                                    # [1, 3]
    parse_choices("None of them")                            # []
    parse_choices("I think the text is about cards")         # None
"""

from __future__ import annotations

import re

MAX_LABEL_WORDS = 6
# wordy lead-ins small models put before the label itself
LEAD_INS = re.compile(
    r"^(?:(?:the\s+)?(?:intent|label|topic|category|name|answer)(?:\s+is)?\s*[:\-]\s*"
    r"|the\s+(?:customer|user|text|person)\s+(?:wants|is asking|asks|would like)\s+(?:to\s+know\s+)?(?:to\s+)?"
    r"|(?:the\s+)?(?:intent|label|topic|category)\s+(?:of the text\s+)?is\s+)",
    re.IGNORECASE,
)
REFUSALS = re.compile(r"^(?:i\s*(?:'m| am)\s+sorry|i\s+can(?:not|'t)|as an ai)", re.IGNORECASE)
NONE_ANSWER = re.compile(r"^\s*(?:0|none|no(?:ne)? (?:of (?:them|the labels)|label)s?)\b", re.IGNORECASE)


def parse_label(answer: str) -> str | None:
    """A short lower-case label from the first line of ``answer``; None if nothing usable."""
    line = next((l for l in answer.strip().splitlines() if l.strip()), "")
    line = re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", line)  # list markers
    for _ in range(2):  # "Label: The intent is ..." has two lead-ins
        line = LEAD_INS.sub("", line.strip().strip("\"'`*"))
    if REFUSALS.match(line):
        return None
    words = re.findall(r"[A-Za-z0-9][A-Za-z0-9'&/+-]*", line)
    if not words or not any(re.search("[A-Za-z]", w) for w in words):
        return None
    return " ".join(words[:MAX_LABEL_WORDS]).lower()


def parse_choices(answer: str) -> list[int] | None:
    """1-based label numbers named in ``answer`` ([] for 'none'); None if it names none."""
    text = answer.strip()
    if NONE_ANSWER.match(text):
        return []
    first = next((l for l in text.splitlines() if l.strip()), "")
    numbers = [int(n) for n in re.findall(r"\b(\d{1,3})\b", first)]
    if not numbers:
        return None
    return sorted({n for n in numbers if n > 0})
