"""What a search query says about time, in English and Portuguese: pure functions, no I/O.

"Which book was I reading in May 2023?" asks for a window (May 2023); "what did I cook the week
before my trip to Osaka?" asks for a window relative to an event the history itself dates (the
conversation where the trip was mentioned: its date is the anchor); "where do I work now?" asks for
the newest of several answers. Search uses these hints to add rankings restricted to the window and
to prefer newer evidence (``backend.memory.search``); the words that name the time are taken out of
the text that is searched for, so "May 2023" does not have to appear in a chunk to be found.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

MONTHS = {name: number for number, names in enumerate((
    ("january", "janeiro", "jan"), ("february", "fevereiro", "feb", "fev"), ("march", "março", "marco", "mar"),
    ("april", "abril", "apr", "abr"), ("may", "maio", "mai"), ("june", "junho", "jun"), ("july", "julho", "jul"),
    ("august", "agosto", "aug", "ago"), ("september", "setembro", "sep", "sept", "set"), ("october", "outubro", "oct", "out"),
    ("november", "novembro", "nov"), ("december", "dezembro", "dec", "dez")), start=1) for name in names}
_MONTH = "|".join(sorted(MONTHS, key=len, reverse=True))
_MONTH_YEAR = re.compile(rf"\b(?:(?:in|during|em|durante|of|de)\s+)?({_MONTH})\.?\s+(?:de\s+|of\s+)?(\d{{4}})\b", re.I)
_YEAR = re.compile(r"\b(?:in|during|em|durante|no ano de)\s+(\d{4})\b", re.I)
_RELATIVE_TO = re.compile(
    r"\b(?:(?:in|on|during)\s+)?(?:the\s+)?(day|week|month)\s+(before|after|prior to)\s+(.+?)\s*[?.!]*$"
    r"|\bn[oa]\s+(dia|semana|mês|mes)\s+(antes|depois)\s+d[aoe]s?\s+(.+?)\s*[?.!]*$", re.I)
_RELATIVE_NOW = {
    "yesterday": (-1, 0), "ontem": (-1, 0), "today": (0, 1), "hoje": (0, 1),
    "last week": (-7, 0), "semana passada": (-7, 0), "last month": (-31, 0), "mês passado": (-31, 0), "mes passado": (-31, 0),
    "last year": (-365, 0), "ano passado": (-365, 0),
}
_RELATIVE_NOW_RE = re.compile(r"\b(?:(?:na|no|em)\s+)?(" + "|".join(sorted(map(re.escape, _RELATIVE_NOW), key=len, reverse=True))
                              + r")\b(?!\s+em\s+dia)", re.I)  # "hoje em dia" is "nowadays", not today
_LATEST = re.compile(r"\b(now|currently|current|these days|nowadays|at the moment|at present|still|"
                     r"agora|atualmente|atual|hoje em dia|no momento|ainda)\b", re.I)
_SPAN_DAYS = {"day": 1, "dia": 1, "week": 7, "semana": 7, "month": 31, "mês": 31, "mes": 31}


@dataclass(frozen=True)
class TimeHint:
    rest: str                                     # the query without its time words: what is searched for
    window: tuple[datetime, datetime] | None = None  # [start, end) the evidence was said in
    anchor: str | None = None                     # an event the window is relative to ("my trip to Osaka")
    offset_days: tuple[int, int] | None = None    # the window around the anchor's date, in days
    latest: bool = False                          # the newest evidence is the answer ("now", "currently")

    @property
    def empty(self) -> bool:
        return self.window is None and self.anchor is None and not self.latest

    def around(self, anchor_date: datetime) -> tuple[datetime, datetime]:
        start, end = self.offset_days or (0, 0)
        day = anchor_date.replace(hour=0, minute=0, second=0, microsecond=0)
        return day + timedelta(days=start), day + timedelta(days=end)


def _month_window(year: int, month: int) -> tuple[datetime, datetime]:
    return datetime(year, month, 1), datetime(year, month, calendar.monthrange(year, month)[1]) + timedelta(days=1)


def _cut(text: str, match: re.Match[str]) -> str:
    return " ".join((text[:match.start()] + " " + text[match.end():]).split())


def understand_time(query: str, now: datetime | None = None) -> TimeHint:
    """The time ``query`` refers to (``now``: what "last week" is relative to; naive, as stored dates are)."""
    now = now or datetime.now()
    text = query
    window = anchor = offset = None
    if match := _RELATIVE_TO.search(text):
        unit, direction, event = (match.group(1), match.group(2), match.group(3)) if match.group(1) else \
            (match.group(4), match.group(5), match.group(6))
        span = _SPAN_DAYS[unit.lower()]
        offset = (-span, 1) if direction.lower() in ("before", "prior to", "antes") else (0, span + 1)  # the day itself too
        anchor, text = event.strip(), text[:match.start()].strip()
    elif match := _MONTH_YEAR.search(text):
        window = _month_window(int(match.group(2)), MONTHS[match.group(1).lower()])
        text = _cut(text, match)
    elif match := _YEAR.search(text):
        window = (datetime(int(match.group(1)), 1, 1), datetime(int(match.group(1)) + 1, 1, 1))
        text = _cut(text, match)
    elif match := _RELATIVE_NOW_RE.search(text):
        start, end = _RELATIVE_NOW[match.group(1).lower()]
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        window = (today + timedelta(days=start), today + timedelta(days=end))
        text = _cut(text, match)
    latest = window is None and anchor is None and bool(_LATEST.search(text))
    return TimeHint(rest=text or query, window=window, anchor=anchor, offset_days=offset, latest=latest)
