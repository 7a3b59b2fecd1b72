"""Split message text into chunks for embedding: pure functions, no I/O.

Chunks follow paragraph, then sentence boundaries, up to ``max_chars`` (about 200 tokens for the
MiniLM family, whose window is 256 word pieces), with a small overlap so a fact that straddles a
boundary is still found.
"""

from __future__ import annotations

import hashlib
import re

MAX_CHARS = 900
OVERLAP_CHARS = 120
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _pieces(text: str, max_chars: int) -> list[str]:
    pieces: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if len(paragraph) <= max_chars:
            pieces.append(paragraph)
            continue
        for sentence in _SENTENCE_END.split(paragraph):
            while len(sentence) > max_chars:  # one enormous "sentence" (code, logs): hard split
                pieces.append(sentence[:max_chars])
                sentence = sentence[max_chars:]
            if sentence.strip():
                pieces.append(sentence.strip())
    return pieces


def chunk_text(text: str, max_chars: int = MAX_CHARS, overlap: int = OVERLAP_CHARS) -> list[str]:
    """Greedy packing of paragraphs/sentences into chunks of at most ``max_chars`` characters."""
    chunks: list[str] = []
    current = ""
    for piece in _pieces(text, max_chars):
        if current and len(current) + 2 + len(piece) > max_chars:
            chunks.append(current)
            tail = current[-overlap:] if overlap else ""
            tail = tail[tail.find(" ") + 1:] if " " in tail else tail
            current = f"{tail} {piece}".strip() if tail and len(tail) + 1 + len(piece) <= max_chars else piece
        else:
            current = f"{current}\n\n{piece}" if current else piece
    if current:
        chunks.append(current)
    return chunks
