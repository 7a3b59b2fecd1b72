"""Mend broken text in an export's JSON bytes before the parser sees them, without touching the rest.

Real exports carry text other tools broke: an emoji cut in half leaves a lone surrogate, as an escape
(``"\\udc00"``) or as raw bytes (``ED A0 80``, which is not UTF-8), and a few files hold stray bytes
that are not UTF-8 at all. yajl, the JSON parser, rejects the first and the last with a
``UnicodeDecodeError`` that ended the whole import, and joins a high surrogate escape with whatever
escape follows it (``"\\ud800\\u0041"`` became U+10041, the ``A`` lost). Here each broken character
becomes U+FFFD on its own, in place, and its neighbours stay as they were: bytes that are not UTF-8
through Python's incremental decoder (``errors="replace"``), surrogate escapes that are not a valid
high-low pair by a rewrite of just that escape. Valid text, escaped backslashes (``"\\\\ud800"`` is the
six characters ``\\ud800``) and valid pairs (emoji) pass unchanged.
"""

from __future__ import annotations

import codecs
import io
import re
from typing import Any

# A run of backslashes, then a surrogate escape: a high one (with the low one after it, when there is
# one), or a low one that no high one came before.
SURROGATE_ESCAPE = re.compile(r"(\\+)u([dD][89abAB][0-9a-fA-F]{2})(\\u[dD][c-fC-F][0-9a-fA-F]{2})?|(\\+)u[dD][c-fC-F][0-9a-fA-F]{2}")
HIGH_ESCAPE = re.compile(r"\\u[dD][89abAB][0-9a-fA-F]{2}")
HOLD_BACK = 13            # an escape pair is 12 characters: keep a possibly cut one for the next read
MAX_HELD_BACKSLASHES = 4096
REPLACEMENT = "\\ufffd"


def _mend(match: re.Match[str]) -> str:
    slashes = match.group(1) or match.group(4)
    if len(slashes) % 2 == 0:  # an escaped backslash followed by plain text, not an escape
        return match.group(0)
    if match.group(2) is not None and match.group(3) is not None:  # a valid pair
        return match.group(0)
    return slashes[:-1] + REPLACEMENT


def mend_surrogate_escapes(text: str) -> tuple[str, int]:
    """``text`` with each lone surrogate escape replaced by ``\\ufffd``, and how many were."""
    count = 0

    def counted(match: re.Match[str]) -> str:
        nonlocal count
        mended = _mend(match)
        count += mended != match.group(0)
        return mended

    return SURROGATE_ESCAPE.sub(counted, text), count


class RepairedText(io.RawIOBase):
    """The bytes of ``inner`` (a reader with ``read`` and ``start_item``) as valid UTF-8 JSON text:
    see the module's docstring. ``repaired`` counts the characters replaced so far."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._held = ""
        self._out = b""
        self._done = False
        self.repaired = 0

    def readable(self) -> bool:
        return True

    def start_item(self, limit: int, what: str) -> None:
        self._inner.start_item(limit, what)

    def readinto(self, buffer: Any) -> int:  # type: ignore[override]
        while not self._out and not self._done:
            data = self._inner.read(max(len(buffer), 1 << 16))
            final = not data
            decoded = self._decoder.decode(data, final)
            if "\ufffd" in decoded:
                self.repaired += decoded.count("\ufffd") - (data.count(b"\xef\xbf\xbd") if data else 0)
            text = self._held + decoded
            self._held = "" if final else _tail(text)
            if self._held:
                text = text[: len(text) - len(self._held)]
            text, mended = mend_surrogate_escapes(text)
            self.repaired += mended
            self._out = text.encode("utf-8")
            self._done = final
        count = min(len(buffer), len(self._out))
        buffer[:count] = self._out[:count]
        self._out = self._out[count:]
        return count


def _tail(text: str) -> str:
    """The end of ``text`` that may hold an escape (or a pair) cut by the read: from the first
    backslash run within the last ``HOLD_BACK`` characters."""
    position = text.find("\\", max(0, len(text) - HOLD_BACK))
    if position < 0:
        return ""
    if HIGH_ESCAPE.fullmatch(text, max(0, position - 6), position):  # the first half of a pair stays with its second
        position -= 6
    start = position
    while start > 0 and text[start - 1] == "\\" and position - start < MAX_HELD_BACKSLASHES:
        start -= 1
    return text[start:]
