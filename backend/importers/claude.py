"""Claude data export: ``conversations.json`` (bare or in the export .zip) with ``chat_messages``.

Text blocks are memory and training data; ``thinking`` blocks (the model's reasoning) and tool
use/results are neither, matching the ChatGPT rules. Attachment text the user pasted is searchable
but not trainable (it is usually someone else's document). Artifacts (the ``artifacts`` tool's
create / update / rewrite calls, applied in order) become one memory message each, attributed to the
assistant, with the document as last edited: searchable, not trainable (a document, not a chat turn).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from backend.importers.bounded_json import iter_list_items
from backend.importers.documents import Document, artifact_command
from backend.importers.model import (
    ImportedConversation,
    ImportedMessage,
    ImportFormatError,
    as_dict,
    as_list,
    as_text,
    timestamp,
)
from backend.importers.source_files import ByteProgress, looks_like_export, open_export_json

SOURCE_KIND = "claude"
FILE_NAME = "conversations.json"
ROLES = {"human": "user", "assistant": "assistant"}


MARKER = b'"chat_messages"'


def detect(path: Path) -> bool:
    return looks_like_export(path, FILE_NAME, MARKER)


def _message_text(message: dict[str, Any]) -> str:
    blocks = message.get("content")
    if isinstance(blocks, list) and blocks:
        texts = [as_text(b.get("text")) for b in blocks if isinstance(b, dict) and b.get("type") == "text"]
        return "\n".join(t for t in texts if t).strip()
    return as_text(message.get("text")).strip()


def _artifact_calls(message: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = message.get("content")
    return [as_dict(b.get("input")) for b in as_list(blocks)
            if isinstance(b, dict) and b.get("type") == "tool_use" and b.get("name") == "artifacts"]


def parse_conversation(raw: Any, index: int) -> ImportedConversation:
    if not isinstance(raw, dict) or not isinstance(raw.get("chat_messages"), list):
        raise ImportFormatError(f"Conversation #{index + 1} has no 'chat_messages'; this does not look like a Claude export.")
    messages: list[ImportedMessage] = []
    documents: dict[str, Document] = {}
    order: list[str] = []
    placed: dict[str, int] = {}  # artifact id -> index of its memory message
    skipped = 0
    for position, message in enumerate(raw["chat_messages"]):
        if not isinstance(message, dict):
            skipped += 1
            continue
        sender = message.get("sender")
        role = ROLES.get(sender, "unknown") if isinstance(sender, str) else "unknown"
        created = timestamp(message.get("created_at"))
        identifier = message.get("uuid")
        message_id = identifier if isinstance(identifier, str) and identifier else f"{index}-{position}"
        text = _message_text(message)
        if text:
            messages.append(ImportedMessage(message_id, role, text, "text", created, None, True, role in ROLES.values()))
        for call in _artifact_calls(message) if role == "assistant" else ():
            artifact_command(documents, call, order)
            for identifier in order:
                if identifier not in placed:
                    placed[identifier] = len(messages)
                    messages.append(ImportedMessage(f"{message_id}-artifact-{len(placed)}", role, identifier, "artifact", created,
                                                    None, True, False))
        for number, attachment in enumerate(as_list(message.get("attachments"))):
            content = as_text(as_dict(attachment).get("extracted_content"))
            if content.strip():
                name = as_text(attachment.get("file_name")) or "attachment"
                messages.append(ImportedMessage(f"{message_id}-att{number}", role, f"[{name}]\n{content.strip()}",
                                                "attachment", created, None, True, False))
    for identifier, position in placed.items():  # each artifact as last edited
        messages[position] = replace(messages[position], text=documents[identifier].readable())
    messages = [m for m in messages if m.text]  # an artifact left empty is no memory
    identifier = raw.get("uuid")
    return ImportedConversation(
        source_kind=SOURCE_KIND, external_id=identifier if isinstance(identifier, str) and identifier else f"index-{index}",
        title=as_text(raw.get("name")) or "Untitled", created_at=timestamp(raw.get("created_at")),
        updated_at=timestamp(raw.get("updated_at")), messages=messages, skipped_messages=skipped,
    )


def iter_conversations(path: Path, *, on_progress: ByteProgress | None = None) -> Iterator[ImportedConversation]:
    with open_export_json(path, FILE_NAME) as stream:
        for index, raw in enumerate(iter_list_items(stream, path.name)):
            yield parse_conversation(raw, index)
            if on_progress:
                on_progress(stream.bytes_read, stream.total_bytes)
