"""The one event channel to the UI: a numbered ring buffer that the UI reads by cursor.

The window polls it through the bridge (``poll_events``, a long poll) and browser mode streams it as
Server-Sent Events; both read the same buffer, so the UI code is the same in both modes.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

Event = dict[str, Any]


class EventChannel:
    def __init__(self, capacity: int = 5_000) -> None:
        self._events: deque[tuple[int, Event]] = deque(maxlen=capacity)
        self._next = 1
        self._condition = threading.Condition()

    def publish(self, event: Event) -> int:
        with self._condition:
            sequence = self._next
            self._next += 1
            self._events.append((sequence, {**event, "seq": sequence}))
            self._condition.notify_all()
            return sequence

    def since(self, cursor: int, timeout: float = 0.0, limit: int = 500) -> tuple[list[Event], int]:
        """Events after ``cursor`` (waiting up to ``timeout`` s for one), and the new cursor."""
        with self._condition:
            if timeout > 0 and self._next - 1 <= cursor:
                self._condition.wait_for(lambda: self._next - 1 > cursor, timeout=timeout)
            events = [event for sequence, event in self._events if sequence > cursor][:limit]
            new_cursor = events[-1]["seq"] if events else max(cursor, 0)
            if not events and cursor > self._next - 1:
                new_cursor = self._next - 1  # the app restarted: resynchronise the UI's cursor
            return events, new_cursor
