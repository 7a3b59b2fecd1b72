"""Documents an assistant wrote through a tool (ChatGPT canvas, Claude artifacts) and the markup
ChatGPT puts into visible text: pure functions, no I/O.

A canvas or an artifact is created once and then edited by later tool calls; what the person saw is
the document after every edit, so the edits are applied in order and the final text becomes memory.
ChatGPT's answers carry citation and file markup (``【3†source】``, private-use ``cite`` spans,
``{{file:…}}`` placeholders, ``sandbox:/mnt/data/…`` links) that reads as noise in search results and
would teach a model to emit it; :func:`clean_markup` keeps the words and drops the markup.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from backend.importers.model import as_dict, as_list, as_text

MAX_DOCUMENT_CHARS = 2_000_000  # a document grown past this by edits stops growing (bounded work per file)
MAX_PATTERN_CHARS = 2_000  # longer edit patterns are applied literally, never as regular expressions

# ChatGPT: 【12†source】, 【4:0†report.pdf】, and the 2025 private-use spans \ue200name\ue202args\ue201.
_BRACKET_CITATION = re.compile(r"【[^【】\n]{0,200}†[^【】\n]{0,200}】")
_PRIVATE_SPAN = re.compile("\ue200([a-z_]{1,40})\ue202([^\ue200\ue201]{0,4000})\ue201")
_PRIVATE_MARKS = re.compile("[\ue200-\ue206]")
_FILE_PLACEHOLDER = re.compile(r"\{\{file:[^{}\s]{1,300}\}\}")
_SANDBOX_LINK = re.compile(r"\[([^\]\n]{1,500})\]\(sandbox:[^)\s]{1,1000}\)")
_SANDBOX_PATH = re.compile(r"sandbox:(?:/mnt/data/)?([^\s)\]]{1,1000})")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"[ \t]+([.,;:!?)])")
_DOUBLE_SPACES = re.compile(r"(?<=\S)[ \t]{2,}(?=\S)")


def _private_span(match: re.Match[str]) -> str:
    name, arguments = match.group(1), match.group(2)
    if name == "entity":  # entity["restaurant", "Café Aurora", "Porto Alegre"]: the visible name is the second item
        try:
            items = json.loads(arguments)
        except ValueError:
            return ""
        if isinstance(items, list) and len(items) > 1 and isinstance(items[1], str):
            return items[1]
    return ""  # cite, filecite, navlist, image_group, …: references, not words


def clean_markup(text: str) -> str:
    """ChatGPT's citation and file markup removed, the words kept (link text stays, file names stay)."""
    if not any(marker in text for marker in ("【", "\ue200", "\ue203", "{{file:", "sandbox:")):
        return text
    text = _BRACKET_CITATION.sub("", text)
    text = _PRIVATE_SPAN.sub(_private_span, text)
    text = _PRIVATE_MARKS.sub("", text)
    text = _FILE_PLACEHOLDER.sub("", text)
    text = _SANDBOX_LINK.sub(r"\1", text)
    text = _SANDBOX_PATH.sub(lambda m: m.group(1).rsplit("/", 1)[-1], text)
    text = _SPACE_BEFORE_PUNCTUATION.sub(r"\1", text)
    return _DOUBLE_SPACES.sub(" ", text).strip()


@dataclass
class Document:
    """One canvas or artifact: its title, kind (``document``, ``code/python``, ``text/markdown``…) and text."""

    key: str
    title: str
    kind: str
    text: str
    language: str = ""

    def readable(self) -> str:
        """The document as memory text: its title, then the text (code fenced with its language)."""
        code = self.kind.startswith(("code", "application/vnd.ant.code"))
        language = self.language or (self.kind.split("/", 1)[1] if self.kind.startswith("code/") else "")
        language = language if re.fullmatch(r"[A-Za-z0-9+#._-]{1,30}", language) else ""
        body = f"```{language}\n{self.text.strip()}\n```" if code else self.text.strip()
        return f"{self.title}\n\n{body}" if self.title else body


def _bounded(text: str) -> str:
    return text[:MAX_DOCUMENT_CHARS]


def replace_pattern(document: str, pattern: str, replacement: str, multiple: bool) -> str:
    """One canvas edit: ``pattern`` (a regular expression, ``.*`` meaning the whole document) replaced
    by ``replacement`` taken literally. A pattern that is not a valid expression is matched literally."""
    if pattern.strip() in (".*", "^.*$", "(?s).*", "^[\\s\\S]*$", "[\\s\\S]*"):
        return _bounded(replacement)
    if len(pattern) > MAX_PATTERN_CHARS:
        return _bounded(document.replace(pattern, replacement, -1 if multiple else 1))
    try:
        compiled = re.compile(pattern, re.MULTILINE)
    except re.error:
        return _bounded(document.replace(pattern, replacement, -1 if multiple else 1))
    return _bounded(compiled.sub(lambda _: replacement, document, count=0 if multiple else 1))


def parse_payload(text: str) -> dict[str, Any]:
    """A tool call's JSON arguments, or an empty dict when they are not a JSON object."""
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def canvas_create(payload: dict[str, Any], key: str) -> Document | None:
    content = payload.get("content")
    if not isinstance(content, str) or not content.strip():
        return None
    return Document(key, as_text(payload.get("name")).strip()[:300], as_text(payload.get("type"), "document"), _bounded(content))


def canvas_update(document: Document, payload: dict[str, Any]) -> None:
    for update in as_list(payload.get("updates"))[:1000]:
        update = as_dict(update)
        pattern, replacement = update.get("pattern"), update.get("replacement")
        if isinstance(pattern, str) and isinstance(replacement, str):
            document.text = replace_pattern(document.text, pattern, replacement, bool(update.get("multiple")))


def artifact_command(documents: dict[str, Document], payload: dict[str, Any], order: list[str]) -> None:
    """Apply one Claude ``artifacts`` call (create / update / rewrite) to the conversation's documents."""
    command, identifier = as_text(payload.get("command")), as_text(payload.get("id"))[:200]
    if not identifier:
        return
    document = documents.get(identifier)
    if command == "create" and isinstance(payload.get("content"), str):
        documents[identifier] = Document(identifier, as_text(payload.get("title")).strip()[:300],
                                         as_text(payload.get("type"), "text/markdown"), _bounded(payload["content"]),
                                         as_text(payload.get("language")))
        if identifier not in order:
            order.append(identifier)
    elif command == "rewrite" and document is not None and isinstance(payload.get("content"), str):
        document.text = _bounded(payload["content"])
        document.title = as_text(payload.get("title")).strip()[:300] or document.title
    elif command == "update" and document is not None:
        old, new = payload.get("old_str"), payload.get("new_str")
        if isinstance(old, str) and isinstance(new, str) and old:
            document.text = _bounded(document.text.replace(old, new, 1))
