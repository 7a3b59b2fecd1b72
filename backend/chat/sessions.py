"""Chat sessions and their messages in the memory store (tables from migration m002)."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from backend.errors import NotFoundError
from backend.memory.store import MemoryStore


@dataclass
class ChatMessage:
    id: str
    role: str
    content: str
    created_at: str
    model: str | None = None
    sources: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass
class ChatSession:
    id: str
    title: str
    model: str
    system_prompt: str
    memory_enabled: bool
    created_at: str
    updated_at: str
    messages: list[ChatMessage] = field(default_factory=list)
    max_tokens: int | None = None  # per-chat reply cap; None: Settings' chat_max_tokens
    temperature: float | None = None  # per-chat sampling temperature; None: the model's default
    message_count: int = 0  # in lists, where messages are not loaded

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


SESSION_COLUMNS = "id, title, model, system_prompt, memory_enabled, created_at, updated_at, max_tokens, temperature"


def _session(row: Any) -> ChatSession:
    return ChatSession(row[0], row[1], row[2], row[3], row[4], _iso(row[5]), _iso(row[6]), max_tokens=row[7], temperature=row[8])


class ChatSessions:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def create(self, model: str, system_prompt: str, memory_enabled: bool, title: str = "New chat") -> ChatSession:
        session_id = uuid.uuid4().hex[:16]
        self.store.cursor().execute("INSERT INTO chat_sessions VALUES (?, ?, ?, ?, ?, now(), now(), NULL, NULL)",
                                    [session_id, title, model, system_prompt, memory_enabled])
        return self.get(session_id)

    def list(self) -> list[ChatSession]:
        rows = self.store.cursor().execute(
            f"SELECT {SESSION_COLUMNS}, (SELECT count(*) FROM chat_messages m WHERE m.session_id = chat_sessions.id) "
            "FROM chat_sessions ORDER BY updated_at DESC").fetchall()
        sessions = [_session(r) for r in rows]
        for session, row in zip(sessions, rows):
            session.message_count = row[-1]
        return sessions

    def get(self, session_id: str) -> ChatSession:
        db = self.store.cursor()
        row = db.execute(f"SELECT {SESSION_COLUMNS} FROM chat_sessions WHERE id = ?", [session_id]).fetchone()
        if row is None:
            raise NotFoundError(f"No chat with id {session_id!r}.")
        session = _session(row)
        for m in db.execute("SELECT id, role, content, created_at, model, sources, stats FROM chat_messages "
                            "WHERE session_id = ? ORDER BY position", [session_id]).fetchall():
            session.messages.append(ChatMessage(m[0], m[1], m[2], _iso(m[3]), m[4], json.loads(m[5] or "[]"), json.loads(m[6] or "{}")))
        session.message_count = len(session.messages)
        return session

    def update(self, session_id: str, **fields: Any) -> ChatSession:
        """Change the named fields; ``max_tokens``/``temperature`` may be set back to None (the defaults)."""
        allowed = {"title", "model", "system_prompt", "memory_enabled"}
        resettable = {"max_tokens", "temperature"}
        for name, value in fields.items():
            if (name in allowed and value is not None) or name in resettable:
                self.store.cursor().execute(f"UPDATE chat_sessions SET {name} = ?, updated_at = now() WHERE id = ?", [value, session_id])
        return self.get(session_id)

    def append(self, session_id: str, role: str, content: str, model: str | None = None,
               sources: list[dict[str, Any]] | None = None, stats: dict[str, Any] | None = None) -> ChatMessage:
        db = self.store.cursor()
        position = db.execute("SELECT coalesce(max(position) + 1, 0) FROM chat_messages WHERE session_id = ?", [session_id]).fetchone()[0]
        message_id = uuid.uuid4().hex[:16]
        db.execute("INSERT INTO chat_messages VALUES (?, ?, ?, ?, ?, ?, ?, ?, now())",
                   [message_id, session_id, position, role, content, model, json.dumps(sources or []), json.dumps(stats or {})])
        db.execute("UPDATE chat_sessions SET updated_at = now() WHERE id = ?", [session_id])
        return self.get(session_id).messages[-1]

    def drop_last_assistant(self, session_id: str) -> None:
        self.store.cursor().execute(
            """DELETE FROM chat_messages WHERE session_id = ? AND role = 'assistant' AND position =
               (SELECT max(position) FROM chat_messages WHERE session_id = ?)""", [session_id, session_id])

    def delete(self, session_id: str) -> None:
        self.get(session_id)
        db = self.store.cursor()
        db.execute("DELETE FROM chat_messages WHERE session_id = ?", [session_id])
        db.execute("DELETE FROM chat_sessions WHERE id = ?", [session_id])
