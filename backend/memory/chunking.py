"""Split message text into chunks for embedding: pure functions, no I/O.

Chunks are measured in the embedding model's tokens (``count``: the embedder's own tokenizer; an
estimate when none is given) and cut on text boundaries: paragraphs first, then sentences, then
words. A word or a URL is never split, even one longer than a chunk (the embedder truncates it).
Consecutive chunks share up to ``overlap_tokens`` of whole sentences (or, when one sentence is longer,
whole words), so a fact that straddles a boundary is still found.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

TokenCounter = Callable[[str], int]

MAX_TOKENS = 200  # MiniLM reads 256 word pieces; smaller chunks rank more precisely
OVERLAP_TOKENS = 32
_PARAGRAPHS = re.compile(r".*?(?:\n[ \t]*\n\s*|\Z)", re.S)  # a paragraph with the blank lines after it
_SENTENCES = re.compile(r".*?(?:(?<=[.!?…。！？])\s+|\n\s*|\Z)", re.S)  # a sentence (or a line) with its trailing space
_WORDS = re.compile(r"\S+\s*|\s+")
_ESTIMATE = re.compile(r"\w+|[^\w\s]")


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def estimate_tokens(text: str) -> int:
    """Word pieces, roughly: one per word or symbol, more for long words (WordPiece splits them)."""
    return sum(1 + len(piece) // 7 for piece in _ESTIMATE.findall(text))


def _split(text: str, pattern: re.Pattern[str]) -> list[str]:
    return [match.group(0) for match in pattern.finditer(text) if match.group(0)]


def _units(text: str, max_tokens: int, count: TokenCounter) -> list[tuple[str, int]]:
    """The text as consecutive pieces (joined, they give the text back), each within ``max_tokens``
    unless it is a single word: whole paragraphs where they fit, else sentences, else words."""
    units: list[tuple[str, int]] = []
    for paragraph in _split(text, _PARAGRAPHS):
        tokens = count(paragraph)
        if tokens <= max_tokens:
            units.append((paragraph, tokens))
            continue
        for sentence in _split(paragraph, _SENTENCES):
            tokens = count(sentence)
            if tokens <= max_tokens:
                units.append((sentence, tokens))
            else:
                units.extend((word, count(word)) for word in _split(sentence, _WORDS))
    return units


def _overlap(units: list[tuple[str, int]], overlap_tokens: int, count: TokenCounter) -> list[tuple[str, int]]:
    """The end of a chunk to repeat at the start of the next: whole units, else the last unit's last words."""
    tail: list[tuple[str, int]] = []
    total = 0
    for unit, tokens in reversed(units):
        if total + tokens > overlap_tokens:
            break
        tail.insert(0, (unit, tokens))
        total += tokens
    if tail or not units:
        return tail
    for word in reversed(_split(units[-1][0], _WORDS)):
        tokens = count(word)
        if total + tokens > overlap_tokens:
            break
        tail.insert(0, (word, tokens))
        total += tokens
    return tail


def chunk_text(text: str, max_tokens: int = MAX_TOKENS, overlap_tokens: int = OVERLAP_TOKENS,
               count: TokenCounter = estimate_tokens) -> list[str]:
    """Greedy packing of paragraphs, sentences and words into chunks of at most ``max_tokens``."""
    text = text.strip()
    if not text:
        return []
    if count(text) <= max_tokens:
        return [text]
    chunks: list[str] = []
    current: list[tuple[str, int]] = []
    total = 0
    for unit, tokens in _units(text, max_tokens, count):
        if current and total + tokens > max_tokens and any(t for _, t in current):
            chunks.append("".join(u for u, _ in current).strip())
            current = _overlap(current, overlap_tokens, count)
            total = sum(t for _, t in current)
            if total + tokens > max_tokens:
                current, total = [], 0
        current.append((unit, tokens))
        total += tokens
    if current and "".join(u for u, _ in current).strip():
        chunks.append("".join(u for u, _ in current).strip())
    return chunks
