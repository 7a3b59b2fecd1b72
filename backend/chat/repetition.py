"""Notice a reply that has started to repeat itself, so it can be stopped instead of running on.

Small models fall into loops ("a gentle rain, a gentle rain, …") that last until the token cap.
A repeat penalty makes that rarer; this guard ends the ones that still happen. A reply is looping
when one run of words (a span of 4+ words) comes back 3 times in a row at its end, or when one
6-word phrase has come back 4 times in the last 200 words. Lists and tables that repeat a word or
two per line do not trip it: the repeated span must be long.
"""

from __future__ import annotations

import re
from collections import Counter

WORD = re.compile(r"\w+|[^\w\s]")
MIN_SPAN_WORDS = 4
MAX_SPAN_WORDS = 60
TAIL_REPEATS = 3
PHRASE_WORDS = 6
PHRASE_REPEATS = 4
WINDOW_WORDS = 200


def _words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def looping_span(text: str) -> str | None:
    """The repeating span if ``text`` ends in a loop, else None."""
    words = _words(text)[-WINDOW_WORDS:]
    for span in range(MIN_SPAN_WORDS, min(MAX_SPAN_WORDS, len(words) // TAIL_REPEATS) + 1):
        tail = words[-span:]
        if all(words[-span * (k + 1): len(words) - span * k] == tail for k in range(1, TAIL_REPEATS)):
            return " ".join(tail)
    if len(words) >= PHRASE_WORDS * PHRASE_REPEATS:
        phrases = Counter(tuple(words[i:i + PHRASE_WORDS]) for i in range(len(words) - PHRASE_WORDS + 1))
        phrase, count = phrases.most_common(1)[0]
        if count >= PHRASE_REPEATS and len(set(phrase)) > 2:
            return " ".join(phrase)
    return None


def loop_start(text: str, span: str) -> int:
    """Where the looping part begins: the text is kept up to the end of the span's first occurrence
    in the run, so the reply ends on what it said once."""
    pattern = r"\W*".join(re.escape(word) for word in span.split())
    matches = list(re.finditer(pattern, text, flags=re.IGNORECASE))
    if len(matches) < 2:
        return len(text)
    return matches[0].end()
