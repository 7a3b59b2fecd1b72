"""Build synthetic ChatGPT and Claude exports in memory: every content type, branches, oddities.

A fixture that builds data beats a stored blob: each test states exactly what it needs.
"""

from __future__ import annotations

import json
import uuid
import zipfile
from pathlib import Path
from typing import Any

BASE_TIME = 1_700_000_000.0


class ChatGPTConversation:
    def __init__(self, title: str, conversation_id: str | None = None, create_time: float = BASE_TIME) -> None:
        self.title = title
        self.id = conversation_id or str(uuid.uuid4())
        self.create_time = create_time
        self.mapping: dict[str, Any] = {"root": {"id": "root", "message": None, "parent": None, "children": []}}
        self.current = "root"
        self._clock = create_time

    def add(self, role: str, content: dict[str, Any] | str, *, parent: str | None = None, node_id: str | None = None,
            make_current: bool = True, **message_fields: Any) -> str:
        node_id = node_id or f"{self.id}-n{len(self.mapping)}"
        parent = parent or self.current
        if isinstance(content, str):
            content = {"content_type": "text", "parts": [content]}
        self._clock += 10
        message = {
            "id": node_id, "author": {"role": role, "name": None, "metadata": {}}, "create_time": self._clock,
            "update_time": None, "content": content, "status": "finished_successfully", "end_turn": True,
            "weight": 1.0, "metadata": {"model_slug": "gpt-4o"} if role == "assistant" else {}, "recipient": "all",
        }
        for key, value in message_fields.items():
            if key == "metadata":
                message["metadata"].update(value)
            else:
                message[key] = value
        self.mapping[node_id] = {"id": node_id, "message": message, "parent": parent, "children": []}
        self.mapping[parent]["children"].append(node_id)
        if make_current:
            self.current = node_id
        return node_id

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "create_time": self.create_time, "update_time": self._clock, "mapping": self.mapping,
                "current_node": self.current, "conversation_id": self.id, "id": self.id, "default_model_slug": "gpt-4o"}


def every_content_type_conversation() -> ChatGPTConversation:
    """One conversation exercising each content type, a hidden system message and a branch."""
    c = ChatGPTConversation("Everything at once", "conv-everything")
    c.add("system", "You are ChatGPT.", weight=0.0, metadata={"is_visually_hidden_from_conversation": True})
    c.add("user", {"content_type": "user_editable_context", "user_profile": "I am a gardener.", "user_instructions": "Be brief."})
    c.add("user", {"content_type": "multimodal_text", "parts": [{"content_type": "image_asset_pointer", "asset_pointer": "file-service://x"}, "What plant is this?"]})
    c.add("assistant", {"content_type": "thoughts", "thoughts": [{"summary": "Looking", "content": "SECRET-REASONING about leaves"}]})
    c.add("assistant", {"content_type": "reasoning_recap", "content": "Thought for 3 seconds"})
    c.add("assistant", {"content_type": "code", "language": "python", "text": "print('identify')"}, recipient="python")
    c.add("tool", {"content_type": "execution_output", "text": "TOOL-NOISE output"}, author={"role": "tool", "name": "python", "metadata": {}})
    c.add("tool", {"content_type": "tether_browsing_display", "result": "BROWSING-RESIDUE", "summary": None})
    c.add("tool", {"content_type": "tether_quote", "url": "https://plants.example", "domain": "plants.example", "title": "Monstera care", "text": "Monstera likes indirect light."}, author={"role": "tool", "name": "browser", "metadata": {}})
    question = c.current
    c.add("assistant", "OLD-BRANCH answer: it is a fern.")
    c.add("assistant", "It is a Monstera deliciosa; water it weekly.", parent=question)
    c.add("user", {"content_type": "text", "parts": ["Thanks! ```code``` and more"]})
    c.add("assistant", {"content_type": "text", "parts": [""]})  # empty: skipped
    c.mapping["dangling"] = {"id": "dangling", "message": None, "parent": c.current, "children": []}
    return c


def simple_conversation(title: str, user: str, assistant: str, conversation_id: str | None = None, create_time: float = BASE_TIME) -> ChatGPTConversation:
    c = ChatGPTConversation(title, conversation_id, create_time)
    c.add("user", user)
    c.add("assistant", assistant)
    return c


def write_chatgpt_export(path: Path, conversations: list[ChatGPTConversation], *, as_zip: bool | None = None, nested: bool = False) -> Path:
    data = json.dumps([c.to_dict() for c in conversations]).encode()
    if as_zip if as_zip is not None else path.suffix == ".zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(("export/" if nested else "") + "conversations.json", data)
            archive.writestr("chat.html", "<html></html>")
            archive.writestr("user.json", "{}")
    else:
        path.write_bytes(data)
    return path


def write_claude_export(path: Path, conversations: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(conversations))
    return path


def claude_conversation(name: str, turns: list[tuple[str, str]], uuid_: str | None = None) -> dict[str, Any]:
    messages = []
    for i, (sender, text) in enumerate(turns):
        messages.append({"uuid": f"{uuid_ or name}-{i}", "sender": sender, "text": text, "created_at": f"2024-05-0{1 + i % 9}T10:00:00Z",
                         "content": [{"type": "text", "text": text}, {"type": "thinking", "thinking": "HIDDEN"}],
                         "attachments": [], "files": []})
    return {"uuid": uuid_ or str(uuid.uuid4()), "name": name, "created_at": "2024-05-01T09:00:00Z",
            "updated_at": "2024-05-02T09:00:00Z", "chat_messages": messages}


def gemini_entry(prompt: str, answer_html: str, time: str, *, files: list[str] | None = None) -> dict[str, Any]:
    """One Google Takeout "My Activity" entry for Gemini Apps, as Takeout writes it."""
    entry: dict[str, Any] = {"header": "Gemini Apps", "title": f"Prompted {prompt}", "time": time, "products": ["Gemini Apps"],
                             "activityControls": ["Gemini Apps Activity"], "safeHtmlItem": [{"html": answer_html}]}
    if files:
        entry["attachedFiles"] = [{"name": name} for name in files]
    return entry


def write_gemini_takeout(path: Path, entries: list[dict[str, Any]], *, folder: str = "Takeout/My Activity/Gemini Apps",
                         file_name: str = "MyActivity.json") -> Path:
    """A Takeout .zip (other products' activity beside Gemini's, newest entries first) or a bare JSON file."""
    data = json.dumps(sorted(entries, key=lambda e: e["time"], reverse=True))
    if path.suffix == ".zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("Takeout/My Activity/Search/MyActivity.json", json.dumps([{"header": "Search", "title": "Searched for x",
                                                                                        "time": "2025-01-01T00:00:00Z"}]))
            archive.writestr(f"{folder}/{file_name}", data)
            archive.writestr("Takeout/archive_browser.html", "<html></html>")
    else:
        path.write_text(data)
    return path


def modern_conversation_dict(conversation: ChatGPTConversation, *, seed: int = 0) -> dict[str, Any]:
    """A conversation as exports made since September 2026 write it: the root is
    ``client-created-root``, nodes carry ``parent`` only (no ``children``) in no particular order,
    messages lack ``status``/``weight``/``recipient``/``end_turn``, ``metadata`` holds only
    ``model_slug`` and ``parent_id``, and the conversation has the new study/memory flags."""
    import random

    raw = conversation.to_dict()
    rename = {"root": "client-created-root"}
    mapping: dict[str, Any] = {}
    for node_id, node in raw["mapping"].items():
        new_id = rename.get(node_id, node_id)
        parent = rename.get(node["parent"], node["parent"]) if node["parent"] else None
        message = node["message"]
        if message is not None:
            message = {k: v for k, v in message.items() if k not in ("status", "weight", "recipient", "end_turn")}
            slug = message["metadata"].get("model_slug")
            message["metadata"] = {"parent_id": parent, **({"model_slug": slug} if slug else {})}
        mapping[new_id] = {"id": new_id, "message": message, "parent": parent}
    order = list(mapping)
    random.Random(seed).shuffle(order)
    raw["mapping"] = {k: mapping[k] for k in order}
    raw["current_node"] = rename.get(raw["current_node"], raw["current_node"])
    raw.update(is_study_mode=False, memory_scope="global_enabled", is_do_not_remember=False)
    return raw


def write_sharded_chatgpt_export(path: Path, conversations: list[ChatGPTConversation], *, per_shard: int = 2,
                                 as_zip: bool | None = None, manifest: bool = True) -> Path:
    """An export in today's layout (.zip, or a folder when ``path`` has no .zip suffix): shards of
    ``per_shard`` conversations, ``export_manifest.json`` listing every file with its size, and the
    files beside them that are not conversations (``chat.html``, ``user.json``, settings, feedback,
    shared links, ``file-*.dat`` assets)."""
    files: dict[str, bytes] = {}
    for number, start in enumerate(range(0, len(conversations), per_shard)):
        shard = [modern_conversation_dict(c, seed=start + i) for i, c in enumerate(conversations[start:start + per_shard])]
        files[f"conversations-{number:03d}.json"] = json.dumps(shard, sort_keys=True).encode()
    files.update({
        "chat.html": b"<html><body><script>var jsonData = []</script></body></html>",
        "user.json": b'{"email": "someone@example.com", "id": "user-1"}',
        "user_settings.json": b'{"settings": {}}',
        "message_feedback.json": b"[]",
        "shared_conversations.json": b'[{"conversation_id": "x", "id": "share-1", "title": "shared"}]',
        "file-AbCdEf123.dat": bytes(range(256)) * 8,
        "file_00000000a1b2c3.dat": b"\x89PNG\r\n\x1a\n" + bytes(64),
    })
    if manifest:
        entries = [{"path": name, "size": len(data)} for name, data in sorted(files.items())]
        files["export_manifest.json"] = json.dumps({"version": 1, "files": entries}).encode()
    if as_zip if as_zip is not None else path.suffix == ".zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in files.items():
                archive.writestr(name, data)
    else:
        path.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (path / name).write_bytes(data)
    return path
