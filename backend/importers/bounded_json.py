"""Stream the items of an export's top-level JSON list with limits checked while parsing.

``ijson.items`` builds each item without limits, and its prefix strings grow with the nesting depth
(a 200 KB file nested 100,000 levels deep took 21 GB). Here each item is built from ijson's basic
events with a cap on nesting depth, on the number of values and on string length, and the byte
reader caps each item's size while it is read, so even one giant string stops at the cap instead
of being buffered whole. Every limit ends the import with a message that names the item.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import ijson

from backend.importers.model import ImportFormatError
from backend.importers.text_repair import RepairedText

log = logging.getLogger("orch_mind.import")


@dataclass(frozen=True)
class JsonLimits:
    max_depth: int = 64  # real exports nest about 12 levels (conversation → mapping → node → message → metadata …)
    max_values: int = 5_000_000  # scalars and containers in one conversation
    max_string_chars: int = 16 * 1024 * 1024
    max_item_bytes: int = 128 * 1024 * 1024  # one conversation's JSON


DEFAULT_LIMITS = JsonLimits()
# yajl re-scans a token that spans reads, so one long string costs O(length² / read size): a 128 MiB
# string took 80 s to refuse with ijson's 64 KiB reads and takes about 1.5 s with 4 MiB reads.
READ_BYTES = 4 * 1024 * 1024


class ItemBudgetReader(Protocol):
    def start_item(self, limit: int, what: str) -> None: ...


class _Slot:
    """A container being built and, for an object, the key its next value goes under."""

    __slots__ = ("container", "key")

    def __init__(self, container: Any) -> None:
        self.container = container
        self.key: str | None = None

    def attach(self, value: Any) -> None:
        if isinstance(self.container, list):
            self.container.append(value)
        else:
            self.container[self.key] = value


def iter_list_items(stream: Any, what: str, limits: JsonLimits = DEFAULT_LIMITS) -> Iterator[Any]:
    """Yield each element of the JSON list in ``stream`` (a binary reader with ``start_item``).
    Broken text (lone surrogates, bytes that are not UTF-8) becomes U+FFFD first (``text_repair``)."""
    repaired = RepairedText(stream)
    try:
        yield from _items(repaired, what, limits)
    except ijson.JSONError as exc:
        raise ImportFormatError(_described(what, exc)) from exc
    finally:
        if repaired.repaired:
            log.warning("%s: %d broken characters (cut emoji, bytes that are not UTF-8) replaced with U+FFFD", what, repaired.repaired)


def _described(what: str, exc: Exception) -> str:
    """What is wrong with the JSON, in words: yajl raises the same "incomplete" error for a file cut
    short, a number too large and a stray character, so its message tells them apart."""
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "premature EOF" in detail:
        return f"{what} ends before its JSON is complete (a truncated download? export it again): {detail}"
    if "integer overflow" in detail:
        return f"{what} holds a number too large to read (more than 19 digits); the file was changed after export?"
    return f"{what} is not valid JSON: {detail}"


def _items(stream: Any, what: str, limits: JsonLimits) -> Iterator[Any]:
    events = ijson.basic_parse(stream, use_float=True, buf_size=READ_BYTES)
    first = next(events, None)
    if first is None or first[0] != "start_array":
        raise ImportFormatError(f"{what} is not a JSON list of conversations.")
    stack: list[_Slot] = []
    values = 0
    index = 0
    stream.start_item(limits.max_item_bytes, f"Conversation #{index + 1} in {what}")
    for event, value in events:
        if event == "map_key":
            stack[-1].key = value
            continue
        values += 1
        if values > limits.max_values:
            raise ImportFormatError(f"Conversation #{index + 1} in {what} has more than {limits.max_values:,} values; "
                                    "this is not a chat export, or it is damaged.")
        if event in ("start_map", "start_array"):
            if len(stack) >= limits.max_depth:
                raise ImportFormatError(f"Conversation #{index + 1} in {what} is nested more than {limits.max_depth} "
                                        "levels deep; this is not a chat export, or it is damaged.")
            container: Any = {} if event == "start_map" else []
            if stack:
                stack[-1].attach(container)
            stack.append(_Slot(container))
            continue
        if event in ("end_map", "end_array"):
            if not stack:  # the end of the top-level list
                return
            finished = stack.pop().container
            if stack:
                continue
            item = finished
        else:
            if event == "string" and len(value) > limits.max_string_chars:
                raise ImportFormatError(f"Conversation #{index + 1} in {what} holds a text of {len(value):,} characters "
                                        f"(the limit is {limits.max_string_chars:,}); refusing it.")
            if stack:
                stack[-1].attach(value)
                continue
            item = value
        yield item
        index += 1
        values = 0
        stream.start_item(limits.max_item_bytes, f"Conversation #{index + 1} in {what}")
