"""ChatGPT data export: the .zip as downloaded, or its bare ``conversations.json``.

Each conversation's ``mapping`` is a tree (edits and regenerations make branches). We walk from
``current_node`` up to the root to get the branch the user last saw; with ``all_branches`` the other
branches are kept too, searchable but never training data (they are not the conversation that
happened).

What becomes memory (searchable) and training data (trainable), by content type:

| content type / message             | searchable | trainable | why |
|------------------------------------|-----------|-----------|-----|
| text, multimodal_text (text parts) | yes       | yes       | the user's and the assistant's own words |
| code (recipient "all")             | yes       | yes       | code the assistant wrote in the answer |
| code sent to a tool                | yes       | no        | a tool call, not the assistant's voice |
| execution_output, tool messages    | no        | no        | tool noise |
| tether_quote                       | yes       | no        | quoted web pages the user read; not anyone's voice |
| tether_browsing_display            | no        | no        | browsing UI residue |
| thoughts, reasoning_recap          | no        | no        | the model's hidden reasoning is not the user's voice |
| user_editable_context              | no        | no        | custom instructions, repeated in every chat |
| hidden / system / weight 0         | no        | no        | not shown in the conversation |
| null messages, empty text          | skipped   |           | |
Image parts become an ``[image]`` marker so the surrounding text still reads naturally.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import ijson

from backend.importers.model import ImportedConversation, ImportedMessage, ImportFormatError, timestamp
from backend.importers.source_files import ByteProgress, looks_like_export, open_export_json

SOURCE_KIND = "chatgpt"
FILE_NAME = "conversations.json"

HIDDEN_TYPES = {"thoughts", "reasoning_recap", "user_editable_context", "tether_browsing_display",
                "execution_output", "system_error", "model_editable_context"}
QUOTE_TYPES = {"tether_quote"}


MARKER = b'"mapping"'


def detect(path: Path) -> bool:
    return looks_like_export(path, FILE_NAME, MARKER)


def _part_text(part: Any) -> str:
    if isinstance(part, str):
        return part
    if isinstance(part, dict):
        kind = part.get("content_type", "")
        if kind == "image_asset_pointer" or "asset_pointer" in part:
            return "[image]"
        if kind == "audio_transcription" and isinstance(part.get("text"), str):
            return part["text"]
        if isinstance(part.get("text"), str):
            return part["text"]
    return ""


def content_text(content: dict[str, Any]) -> str:
    """The readable text of any content type (used for memory; flags decide where it goes)."""
    kind = content.get("content_type", "text")
    if kind in ("text", "multimodal_text") or "parts" in content:
        return "\n".join(t for t in (_part_text(p) for p in content.get("parts") or []) if t).strip()
    if kind == "code":
        language = content.get("language") or ""
        code = content.get("text") or ""
        return f"```{language if language != 'unknown' else ''}\n{code}\n```" if code.strip() else ""
    if kind == "tether_quote":
        title = content.get("title") or content.get("domain") or ""
        return "\n".join(x for x in (title, content.get("url") or "", content.get("text") or "") if x).strip()
    if kind == "thoughts":
        return "\n".join(str(t.get("content", "")) for t in content.get("thoughts") or [] if isinstance(t, dict)).strip()
    if kind == "user_editable_context":
        return "\n".join(x for x in (content.get("user_profile"), content.get("user_instructions")) if isinstance(x, str)).strip()
    for key in ("text", "result", "content", "summary"):
        if isinstance(content.get(key), str):
            return content[key].strip()
    return ""


def classify(message: dict[str, Any]) -> tuple[str, str, bool, bool]:
    """(role, content_type, searchable, trainable) for one message, per the table above."""
    author = message.get("author") or {}
    role = author.get("role") or "unknown"
    content = message.get("content") or {}
    kind = content.get("content_type") or "text"
    metadata = message.get("metadata") or {}
    hidden = (
        message.get("weight") == 0
        or metadata.get("is_visually_hidden_from_conversation")
        or metadata.get("is_user_system_message")
        or role == "system"
    )
    if hidden or kind in HIDDEN_TYPES or (role == "tool" and kind not in QUOTE_TYPES):
        return role, kind, False, False
    if kind in QUOTE_TYPES:
        return role, kind, True, False
    tool_call = (message.get("recipient") or "all") != "all"
    return role, kind, True, role in ("user", "assistant") and not tool_call


def _active_path(mapping: dict[str, Any], current: str | None) -> list[str]:
    if not current or current not in mapping:
        leaves = [k for k, v in mapping.items() if not (v or {}).get("children")]
        if not leaves:
            return []
        current = max(leaves, key=lambda k: float(((mapping[k] or {}).get("message") or {}).get("create_time") or 0))
    path, seen = [], set()
    node_id: str | None = current
    while node_id and node_id in mapping and node_id not in seen:
        seen.add(node_id)
        path.append(node_id)
        node_id = (mapping[node_id] or {}).get("parent")
    return path[::-1]


def parse_conversation(raw: Any, index: int, *, all_branches: bool = False) -> ImportedConversation:
    if not isinstance(raw, dict) or not isinstance(raw.get("mapping"), dict):
        raise ImportFormatError(f"Conversation #{index + 1} has no 'mapping'; this does not look like a ChatGPT export.")
    mapping: dict[str, Any] = raw["mapping"]
    external_id = str(raw.get("conversation_id") or raw.get("id") or f"index-{index}")
    active = _active_path(mapping, raw.get("current_node"))
    active_set = set(active)
    order = list(active)
    if all_branches:
        others = [k for k in mapping if k not in active_set]
        others.sort(key=lambda k: float(((mapping[k] or {}).get("message") or {}).get("create_time") or 0))
        order += others
    messages = []
    for node_id in order:
        message = (mapping.get(node_id) or {}).get("message")
        if not isinstance(message, dict):
            continue  # null messages (the root, deleted nodes)
        text = content_text(message.get("content") or {})
        if not text:
            continue
        role, kind, searchable, trainable = classify(message)
        on_active = node_id in active_set
        messages.append(ImportedMessage(
            external_id=str(message.get("id") or node_id), role=role, text=text, content_type=kind,
            created_at=timestamp(message.get("create_time")),
            model=(message.get("metadata") or {}).get("model_slug"),
            searchable=searchable, trainable=trainable and on_active, on_active_branch=on_active,
        ))
    return ImportedConversation(
        source_kind=SOURCE_KIND, external_id=external_id, title=str(raw.get("title") or "Untitled"),
        created_at=timestamp(raw.get("create_time")), updated_at=timestamp(raw.get("update_time")), messages=messages,
    )


def iter_conversations(path: Path, *, all_branches: bool = False, on_progress: ByteProgress | None = None) -> Iterator[ImportedConversation]:
    """Stream conversations one at a time (ijson), so a multi-GB export stays in bounded memory."""
    with open_export_json(path, FILE_NAME) as stream:
        for index, raw in enumerate(ijson.items(stream, "item", use_float=True)):
            yield parse_conversation(raw, index, all_branches=all_branches)
            if on_progress:
                on_progress(stream.bytes_read, stream.total_bytes)
