"""ChatGPT data export: the .zip as downloaded, its unzipped folder, or one file of conversations.

Two layouts have shipped. Until 2026 the conversations were one ``conversations.json``; exports made
since September 2026 split them across ``conversations-000.json``, ``conversations-001.json`` … beside
an ``export_manifest.json`` that lists every file with its size (see :func:`conversation_files`).
Both are read the same way, shard after shard, and a conversation is the same conversation whichever
layout brought it (its id), so importing an export again in the other layout, or shard by shard,
adds nothing.

Each conversation's ``mapping`` is a tree (edits and regenerations make branches). We walk from
``current_node`` up to the root to get the branch the user last saw; with ``all_branches`` the other
branches are kept too, searchable but never training data (they are not the conversation that
happened).

What becomes memory (searchable) and training data (trainable), by message kind:

| message kind                                  | searchable | trainable | why |
|-----------------------------------------------|-----------|-----------|-----|
| text, multimodal_text (text parts)            | yes       | yes       | the user's and the assistant's own words |
| code in the answer (recipient "all")          | yes       | yes       | code the user asked for, shown in the answer |
| canvas (canmore.create_textdoc + updates)     | yes       | no        | the document the assistant wrote, as last edited; a document, not a chat turn |
| other tool calls (recipient not "all": python, container, computer, browser, web, image_gen, bio…) | no | no | payloads addressed to a tool, not prose anyone read |
| interrupted answers (finish_details interrupted, status not finished) | yes | no | a cut-off answer is not a voice to learn |
| execution_output, tool messages               | no        | no        | tool noise |
| tether_quote                                  | yes       | no        | quoted web pages the user read; not anyone's voice |
| tether_browsing_display                       | no        | no        | browsing UI residue |
| thoughts, reasoning_recap                     | no        | no        | the model's hidden reasoning is not the user's voice |
| user_editable_context, model_editable_context | no        | no        | custom instructions and memory, repeated in every chat |
| hidden / system / weight 0                    | no        | no        | not shown in the conversation |
| null messages, empty text                     | skipped   |           | |

Visible text is cleaned of ChatGPT's markup (citations, file placeholders, sandbox links), keeping
the words (``documents.clean_markup``); the stored ``content_type`` is the kind above (``tool_call``
and ``canvas`` for the tool rows).
Image parts become an ``[image]`` marker so the surrounding text still reads naturally.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

from backend.importers.bounded_json import iter_list_items
from backend.importers.documents import Document, canvas_create, canvas_update, clean_markup, parse_payload
from backend.importers.model import (
    ImportedConversation,
    ImportedMessage,
    ImportFormatError,
    as_dict,
    as_list,
    as_text,
    timestamp,
)
from backend.importers.source_files import ByteProgress, ExportFile, head_has, list_export, open_export_file

SOURCE_KIND = "chatgpt"
FILE_NAME = "conversations.json"

HIDDEN_TYPES = {"thoughts", "reasoning_recap", "user_editable_context", "tether_browsing_display",
                "execution_output", "system_error", "model_editable_context"}
QUOTE_TYPES = {"tether_quote"}
TEXT_TYPES = {"text", "multimodal_text", "code"}
CANVAS_CREATE, CANVAS_UPDATE = "canmore.create_textdoc", "canmore.update_textdoc"
INTERRUPTED = {"interrupted"}
UNFINISHED_STATUS = {"in_progress", "finished_partial_completion"}


MARKER = b'"mapping"'
MAX_NODES = 100_000  # nodes in one conversation's tree; real ones have hundreds
SHARD_NAME = re.compile(r"conversations-(\d{1,6})\.json")
MANIFEST_NAME = "export_manifest.json"
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
HEADS_CHECKED = 3  # shards whose beginning detection reads (an early shard may be an empty list)


def detect(path: Path) -> bool:
    try:
        files = conversation_files(path)
        for file in files[:HEADS_CHECKED]:
            with open_export_file(path, file.name) as stream:
                if head_has(stream.read(65536), MARKER):
                    return True
    except ImportFormatError:
        return False
    return False


def conversation_files(path: Path) -> list[ExportFile]:
    """The files of the export at ``path`` that hold its conversations, in order.

    A single file is itself. In a .zip or folder: the ``conversations-NNN.json`` shards by number
    when there are any (only those ``export_manifest.json`` lists, when it lists files: the manifest
    says what belongs to the export, and a listed shard that is missing or of another size means
    the export is incomplete), else the shallowest ``conversations.json``. Nothing else is read:
    ``chat.html``, ``user.json``, feedback, shared links and ``file-*.dat`` assets are not
    conversations (an asset stays an ``[image]`` or attachment marker in its message)."""
    files = list_export(path)
    if path.is_file() and len(files) == 1 and files[0].name == path.name:
        return files
    shards = [f for f in files if SHARD_NAME.fullmatch(f.base_name)]
    if shards:
        top = min(f.name.count("/") for f in shards)
        shards = [f for f in shards if f.name.count("/") == top]
        folder = PurePosixPath(shards[0].name).parent
        listed = _manifest_sizes(path, files, folder)
        if listed:
            shards = _check_against_manifest(path, shards, listed)
        return sorted(shards, key=lambda f: int(SHARD_NAME.fullmatch(f.base_name).group(1)))  # type: ignore[union-attr]
    legacy = [f for f in files if f.base_name == FILE_NAME]
    if not legacy:
        raise ImportFormatError(f"{path.name} has no {FILE_NAME} and no conversations-000.json; is this the right export?")
    return [min(legacy, key=lambda f: (f.name.count("/"), f.name))]


def _manifest_sizes(path: Path, files: list[ExportFile], folder: PurePosixPath) -> dict[str, int | None]:
    """Base name -> declared size (None: not stated) of the conversation shards the manifest beside
    them lists; empty when there is no manifest or it lists no shards. Read defensively: any list of
    objects naming a file (``path``/``name``/``file``…) with a size, or an object keyed by file names."""
    manifest = next((f for f in files if f.base_name == MANIFEST_NAME and PurePosixPath(f.name).parent == folder), None)
    if manifest is None:
        return {}
    if manifest.size > MAX_MANIFEST_BYTES:
        raise ImportFormatError(f"{MANIFEST_NAME} in {path.name} is {manifest.size:,} bytes; that is not an export manifest.")
    with open_export_file(path, manifest.name) as stream:
        raw = stream.read(MAX_MANIFEST_BYTES + 1)
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return {}  # a damaged manifest: the shards themselves are still the export
    found: dict[str, int | None] = {}

    def visit(node: Any, name_hint: str | None, depth: int) -> None:
        if depth > 8:
            return
        if isinstance(node, dict):
            name = next((node[k] for k in ("path", "name", "file", "filename", "file_name") if isinstance(node.get(k), str)), None)
            size = next((node[k] for k in ("size", "bytes", "size_bytes", "byte_size", "file_size")
                         if isinstance(node.get(k), int) and not isinstance(node.get(k), bool)), None)
            name = name or name_hint
            if name and SHARD_NAME.fullmatch(PurePosixPath(name).name):
                found[PurePosixPath(name).name] = size
            for key, value in node.items():
                hint = key if isinstance(key, str) and SHARD_NAME.fullmatch(PurePosixPath(key).name) else None
                if hint and isinstance(value, int) and not isinstance(value, bool):
                    found[PurePosixPath(hint).name] = value
                elif isinstance(value, (dict, list)):
                    visit(value, hint, depth + 1)
        elif isinstance(node, list):
            for item in node[:MAX_MANIFEST_BYTES // 64]:
                if isinstance(item, str) and SHARD_NAME.fullmatch(PurePosixPath(item).name):
                    found.setdefault(PurePosixPath(item).name, None)
                else:
                    visit(item, None, depth + 1)

    visit(data, None, 0)
    return found


def _check_against_manifest(path: Path, shards: list[ExportFile], listed: dict[str, int | None]) -> list[ExportFile]:
    present = {f.base_name: f for f in shards}
    missing = sorted(name for name in listed if name not in present)
    if missing:
        raise ImportFormatError(f"{path.name} is incomplete: {MANIFEST_NAME} lists {', '.join(missing[:3])}"
                                f"{' …' if len(missing) > 3 else ''}, which is not there. Download the export again, "
                                "or unzip all of it.")
    for name, size in listed.items():
        if size is not None and present[name].size != size:
            raise ImportFormatError(f"{name} in {path.name} has {present[name].size:,} bytes where {MANIFEST_NAME} says "
                                    f"{size:,}; the export is incomplete or damaged. Download it again.")
    return [f for f in shards if f.base_name in listed]


def _part_text(part: Any) -> str:
    if isinstance(part, str):
        return part
    if isinstance(part, dict):
        kind = part.get("content_type", "")
        if kind == "image_asset_pointer" or "asset_pointer" in part:
            return "[image]"
        return as_text(part.get("text"))
    return ""


def content_text(content: dict[str, Any]) -> str:
    """The readable text of any content type (used for memory; flags decide where it goes)."""
    kind = as_text(content.get("content_type"), "text")
    if kind in ("text", "multimodal_text") or "parts" in content:
        return "\n".join(t for t in (_part_text(p) for p in as_list(content.get("parts"))) if t).strip()
    if kind == "code":
        language = as_text(content.get("language"))
        code = as_text(content.get("text")).replace("\r\n", "\n")  # code pasted from Windows
        return f"```{language if language != 'unknown' else ''}\n{code}\n```" if code.strip() else ""
    if kind == "tether_quote":
        title = as_text(content.get("title")) or as_text(content.get("domain"))
        return "\n".join(x for x in (title, as_text(content.get("url")), as_text(content.get("text"))) if x).strip()
    if kind == "thoughts":
        return "\n".join(as_text(t.get("content")) for t in as_list(content.get("thoughts")) if isinstance(t, dict)).strip()
    if kind == "user_editable_context":
        return "\n".join(x for x in (content.get("user_profile"), content.get("user_instructions")) if isinstance(x, str)).strip()
    for key in ("text", "result", "content", "summary"):
        if isinstance(content.get(key), str):
            return content[key].strip()
    return ""


def recipient_of(message: dict[str, Any]) -> str:
    return as_text(message.get("recipient")) or "all"


def interrupted(message: dict[str, Any]) -> bool:
    finish = as_dict(as_dict(message.get("metadata")).get("finish_details"))
    return as_text(finish.get("type")) in INTERRUPTED or as_text(message.get("status")) in UNFINISHED_STATUS


def classify(message: dict[str, Any]) -> tuple[str, str, bool, bool]:
    """(role, kind, searchable, trainable) for one message, per the table above."""
    author = as_dict(message.get("author"))
    role = as_text(author.get("role")) or "unknown"
    content = as_dict(message.get("content"))
    kind = as_text(content.get("content_type")) or "text"
    metadata = as_dict(message.get("metadata"))
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
    recipient = recipient_of(message)
    if recipient != "all":
        if role == "assistant" and recipient.startswith(CANVAS_CREATE):
            return role, "canvas", True, False
        return role, "tool_call", False, False
    return role, kind, True, role in ("user", "assistant") and not interrupted(message)


def _payload_text(content: dict[str, Any]) -> str:
    """A tool call's raw argument text (code content or the text parts), unformatted."""
    if isinstance(content.get("text"), str):
        return content["text"]
    return "".join(p for p in as_list(content.get("parts")) if isinstance(p, str))


def _node_time(node: Any) -> float:
    value = as_dict(as_dict(node).get("message")).get("create_time")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def _active_path(mapping: dict[str, Any], current: Any) -> list[str]:
    """Root to ``current_node``, walking ``parent`` links (exports since 2026 carry no ``children``);
    without a usable current node, to the newest leaf."""
    if not isinstance(current, str) or current not in mapping:
        parents = {as_dict(v).get("parent") for v in mapping.values()}
        leaves = [k for k, v in mapping.items() if k not in parents and not as_list(as_dict(v).get("children"))]
        if not leaves:
            return []
        current = max(leaves, key=lambda k: _node_time(mapping[k]))
    path, seen = [], set()
    node_id: Any = current
    while isinstance(node_id, str) and node_id in mapping and node_id not in seen:
        seen.add(node_id)
        path.append(node_id)
        node_id = as_dict(mapping[node_id]).get("parent")
    return path[::-1]


def _well_formed(message: dict[str, Any]) -> bool:
    """A message whose parts have the shapes we read; anything else is skipped and counted."""
    return (isinstance(message.get("content"), dict) and isinstance(message.get("author") or {}, dict)
            and isinstance(message.get("metadata") or {}, dict)
            and isinstance(as_dict(message.get("content")).get("content_type", "text"), str)
            and isinstance(as_dict(message.get("author")).get("role", "unknown"), str))


def parse_conversation(raw: Any, index: int, *, all_branches: bool = False) -> ImportedConversation:
    if not isinstance(raw, dict) or not isinstance(raw.get("mapping"), dict):
        raise ImportFormatError(f"Conversation #{index + 1} has no 'mapping'; this does not look like a ChatGPT export.")
    mapping: dict[str, Any] = raw["mapping"]
    if len(mapping) > MAX_NODES:
        raise ImportFormatError(f"Conversation #{index + 1} has {len(mapping):,} nodes (the limit is {MAX_NODES:,}); "
                                "this is not a chat export, or it is damaged.")
    identifier = raw.get("conversation_id") or raw.get("id")
    external_id = str(identifier) if isinstance(identifier, (str, int)) and not isinstance(identifier, bool) else f"index-{index}"
    active = _active_path(mapping, raw.get("current_node"))
    active_set = set(active)
    order = list(active)
    if all_branches:
        others = [k for k in mapping if k not in active_set]
        others.sort(key=lambda k: _node_time(mapping[k]))
        order += others
    messages: list[ImportedMessage] = []
    documents: dict[int, Document] = {}  # message index -> the canvas it shows, edited in place by later updates
    latest: Document | None = None
    skipped = 0
    for node_id in order:
        node = mapping.get(node_id)
        if not isinstance(node, dict):
            skipped += node is not None
            continue
        message = node.get("message")
        if message is None or (isinstance(message, dict) and message.get("content") is None):
            continue  # null messages (the root, deleted nodes) and messages without content
        if not isinstance(message, dict) or not _well_formed(message):
            skipped += 1
            continue
        on_active = node_id in active_set
        role, kind, searchable, trainable = classify(message)
        recipient = recipient_of(message)
        if recipient.startswith(CANVAS_UPDATE) and role == "assistant":
            if latest is not None and on_active:
                canvas_update(latest, parse_payload(_payload_text(message["content"])))
            continue
        if kind == "canvas":
            document = canvas_create(parse_payload(_payload_text(message["content"])), node_id) if on_active else None
            if document is None:
                continue
            latest = documents[len(messages)] = document
            text = document.text
        else:
            text = content_text(message["content"])
            if searchable and kind in TEXT_TYPES:
                text = clean_markup(text)
        if not text:
            continue
        model_slug = as_dict(message.get("metadata")).get("model_slug")
        messages.append(ImportedMessage(
            external_id=as_text(message.get("id")) or node_id, role=role, text=text, content_type=kind,
            created_at=timestamp(message.get("create_time")),
            model=model_slug if isinstance(model_slug, str) else None,
            searchable=searchable, trainable=trainable and on_active, on_active_branch=on_active,
        ))
    for index, document in documents.items():  # each canvas as last edited
        messages[index] = replace(messages[index], text=document.readable())
    title = raw.get("title")
    return ImportedConversation(
        source_kind=SOURCE_KIND, external_id=external_id, title=title if isinstance(title, str) and title else "Untitled",
        created_at=timestamp(raw.get("create_time")), updated_at=timestamp(raw.get("update_time")), messages=messages,
        skipped_messages=skipped,
    )


def iter_conversations(path: Path, *, all_branches: bool = False, on_progress: ByteProgress | None = None) -> Iterator[ImportedConversation]:
    """Stream conversations one at a time (ijson), shard after shard, so a multi-GB export stays in
    bounded memory; progress counts bytes across all the shards."""
    files = conversation_files(path)
    total = sum(f.size for f in files)
    done = index = 0
    for file in files:
        what = path.name if len(files) == 1 else f"{file.base_name} in {path.name}"
        with open_export_file(path, file.name) as stream:
            for raw in iter_list_items(stream, what):
                yield parse_conversation(raw, index, all_branches=all_branches)
                index += 1
                if on_progress:
                    on_progress(done + stream.bytes_read, total)
        done += file.size
