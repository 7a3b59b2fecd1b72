"""Read training conversations out of the memory store: imported ones and the app's own chats.

Only messages the importers marked trainable (the user's and the assistant's own words on the
branch that happened) are used; reasoning, tool noise and quotes never become training data.
"""

from __future__ import annotations

from itertools import groupby

from backend.memory.store import MemoryStore
from backend.training.dataset import SourceConversation, Turn


def conversations_from_memory(store: MemoryStore, source_ids: tuple[str, ...] = ()) -> list[SourceConversation]:
    db = store.cursor()
    where = f"AND c.source_id IN ({', '.join('?' * len(source_ids))})" if source_ids else ""
    rows = db.execute(
        f"""SELECT c.id, c.external_id, c.title, c.created_at, m.role, m.text
            FROM conversations c JOIN messages m ON m.conversation_id = c.id
            WHERE m.trainable AND m.on_active_branch {where}
            ORDER BY c.created_at NULLS LAST, c.id, m.position""",
        list(source_ids),
    ).fetchall()
    conversations = []
    for (key, _external, title, created), group in groupby(rows, key=lambda r: (r[0], r[1], r[2], r[3])):
        conversations.append(SourceConversation(f"{key}", title, created, tuple(Turn(r[4], r[5]) for r in group)))
    chats = db.execute(
        """SELECT s.id, s.title, s.created_at, m.role, m.content FROM chat_sessions s JOIN chat_messages m ON m.session_id = s.id
           ORDER BY s.created_at, s.id, m.position""").fetchall()
    for (session, title, created), group in groupby(chats, key=lambda r: (r[0], r[1], r[2])):
        conversations.append(SourceConversation(f"chat:{session}", title, created, tuple(Turn(r[3], r[4]) for r in group)))
    return conversations
