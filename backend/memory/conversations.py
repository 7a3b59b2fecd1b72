"""One stored conversation as the person saw it, for the Memory screen's "open the conversation"."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from backend.errors import NotFoundError
from backend.memory.store import MemoryStore

MAX_MESSAGES = 2_000  # a conversation opened on screen; longer ones show their first messages and say so
MAX_MESSAGE_CHARS = 50_000


def read_conversation(store: MemoryStore, conversation_key: str) -> dict[str, Any]:
    """Title, source and the conversation's memory messages (what was shown, on the branch that happened),
    in order; tool calls, reasoning and tool output are counted, not shown."""
    db = store.cursor()
    head = db.execute("SELECT id, source_id, external_id, title, created_at FROM conversations WHERE id = ?",
                      [conversation_key]).fetchone()
    if head is None:
        raise NotFoundError("That conversation is no longer in memory (its source was deleted or re-imported).")
    rows = db.execute(
        """SELECT id, role, content_type, created_at, text FROM messages
           WHERE conversation_id = ? AND searchable AND on_active_branch ORDER BY position LIMIT ?""",
        [conversation_key, MAX_MESSAGES + 1]).fetchall()
    hidden = db.execute("SELECT count(*) FROM messages WHERE conversation_id = ? AND NOT searchable",
                        [conversation_key]).fetchone()[0]

    def when(value: Any) -> str | None:
        return value.isoformat() if isinstance(value, datetime) else None

    return {
        "conversation_key": head[0], "source_id": head[1], "conversation_id": head[2], "title": head[3],
        "created_at": when(head[4]), "kept_out": int(hidden), "truncated": len(rows) > MAX_MESSAGES,
        "messages": [{"message_id": r[0], "role": r[1], "kind": r[2], "created_at": when(r[3]), "text": r[4][:MAX_MESSAGE_CHARS]}
                     for r in rows[:MAX_MESSAGES]],
    }
