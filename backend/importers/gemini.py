"""Google Gemini: the Takeout export of "My Activity" for Gemini Apps (``MyActivity.json``), bare or in
the Takeout .zip (``Takeout/My Activity/Gemini Apps/MyActivity.json``; Takeout translates folder and
file names, so any JSON member whose path names Gemini is taken).

Each activity entry is one prompt (``title``: "Prompted …") and the answer as HTML
(``safeHtmlItem``). My Activity keeps no conversation threads, so entries less than
``SESSION_GAP`` apart become one conversation, titled by its first prompt. The answer's HTML is turned
into plain text here (paragraphs, list items, code kept; no tag, script or style survives): it is never
rendered as HTML. Prompts and answers are memory and training data; entries without an answer
(feedback, settings changes) are left out.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from typing import Any

from backend.importers.bounded_json import iter_list_items
from backend.importers.model import ImportedConversation, ImportedMessage, ImportFormatError, as_dict, as_list, as_text, timestamp
from backend.importers.source_files import ByteProgress, head_has, open_export_json, read_head

SOURCE_KIND = "gemini"
FILE_NAME = "MyActivity.json"
MARKER = b'"Gemini'
SESSION_GAP = timedelta(minutes=30)
PROMPT_PREFIXES = ("Prompted ", "Perguntou ", "Comando: ", "Pediu ")  # English first; others as seen in translated exports
MAX_ANSWER_CHARS = 1_000_000
BLOCKS = {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "table", "tr", "blockquote"}
DROPPED = {"script", "style", "head", "title"}


def gemini_member(name: str) -> bool:
    """A Takeout member that is Gemini's activity JSON (in any language Takeout writes)."""
    path = PurePosixPath(name.replace("\\", "/"))
    return path.suffix.lower() == ".json" and any("gemini" in part.lower() for part in path.parts[:-1])


class _Text(HTMLParser):
    """Plain text of an HTML fragment: block elements become line breaks, list items "- ", the rest words."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._dropped = 0
        self._size = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in DROPPED:
            self._dropped += 1
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in DROPPED:
            self._dropped = max(0, self._dropped - 1)
        elif tag in BLOCKS and tag != "li":  # an item ends where the next one (or the list) starts
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._dropped and self._size < MAX_ANSWER_CHARS:
            self.parts.append(data)
            self._size += len(data)


def html_text(html: str) -> str:
    parser = _Text()
    parser.feed(html[: MAX_ANSWER_CHARS * 4])
    parser.close()
    lines = [" ".join(line.split()) if not line.startswith("- ") else "- " + " ".join(line[2:].split())
             for line in "".join(parser.parts).split("\n")]
    text, blank = [], False
    for line in lines:
        if line:
            text.append(line)
            blank = False
        elif not blank and text:
            text.append("")
            blank = True
    return "\n".join(text).strip()


def detect(path: Path) -> bool:
    try:
        head = read_head(path, FILE_NAME, member=gemini_member)
    except ImportFormatError:
        return False
    return head_has(head, MARKER) and b'"time"' in head


def _entry(raw: Any) -> tuple[datetime, str, str, list[str]] | None:
    """(time, prompt, answer, attached file names) of one activity entry, or None when it holds no exchange."""
    entry = as_dict(raw)
    when = timestamp(entry.get("time"))
    title = as_text(entry.get("title")).strip()
    prompt = next((title[len(p):] for p in PROMPT_PREFIXES if title.startswith(p)), title)
    answer = "\n\n".join(html_text(as_text(as_dict(item).get("html"))) for item in as_list(entry.get("safeHtmlItem"))).strip()
    files = [as_text(as_dict(f).get("name")) or as_text(f) for f in as_list(entry.get("attachedFiles"))]
    if when is None or not prompt or not answer:
        return None
    return when, prompt, answer, [f for f in files if f][:20]


def _conversation(entries: list[tuple[datetime, str, str, list[str]]]) -> ImportedConversation:
    first = entries[0][0]
    messages = []
    for number, (when, prompt, answer, files) in enumerate(entries):
        attached = "".join(f"\n[file: {name}]" for name in files)
        messages.append(ImportedMessage(f"{when.isoformat()}-q{number}", "user", prompt + attached, "text", when, None, True, True))
        messages.append(ImportedMessage(f"{when.isoformat()}-a{number}", "assistant", answer, "text", when, "gemini", True, True))
    title = entries[0][1].splitlines()[0][:80]
    return ImportedConversation(SOURCE_KIND, f"gemini-{first.isoformat()}", title or "Gemini", first, entries[-1][0], messages)


def iter_conversations(path: Path, *, on_progress: ByteProgress | None = None) -> Iterator[ImportedConversation]:
    """Entries are newest first in Takeout; sessions need them in time order, so the (small: text only)
    entries are read first, then grouped."""
    entries = []
    with open_export_json(path, FILE_NAME, member=gemini_member) as stream:
        for raw in iter_list_items(stream, path.name):
            entry = _entry(raw)
            if entry is not None:
                entries.append(entry)
            if on_progress:
                on_progress(stream.bytes_read, stream.total_bytes)
    entries.sort(key=lambda e: e[0])
    session: list[tuple[datetime, str, str, list[str]]] = []
    for entry in entries:
        if session and entry[0] - session[-1][0] > SESSION_GAP:
            yield _conversation(session)
            session = []
        session.append(entry)
    if session:
        yield _conversation(session)
