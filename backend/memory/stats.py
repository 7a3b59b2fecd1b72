"""What is in memory: counts, sources, activity per month (for the UI chart and ``memory stats``)."""

from __future__ import annotations

from typing import Any

from backend.memory.embedding_space import current_space
from backend.memory.store import MemoryStore


def memory_stats(store: MemoryStore) -> dict[str, Any]:
    db = store.cursor()
    # "messages" are memory: what search can find. Tool calls, reasoning and tool output are stored
    # (the conversation stays whole) but counted apart, as "kept_out".
    conversations, messages, kept_out, chunks = db.execute(
        """SELECT (SELECT count(*) FROM conversations), (SELECT count(*) FILTER (WHERE searchable) FROM messages),
                  (SELECT count(*) FILTER (WHERE NOT searchable) FROM messages), (SELECT count(*) FROM chunks)"""
    ).fetchone()
    sources = [
        {"id": row[0], "kind": row[1], "label": row[2], "conversations": int(row[3]), "messages": int(row[4])}
        for row in db.execute(
            """SELECT s.id, s.kind, s.label, count(DISTINCT c.id),
                      count(m.id) FILTER (WHERE m.searchable)
               FROM sources s LEFT JOIN conversations c ON c.source_id = s.id LEFT JOIN messages m ON m.conversation_id = c.id
               GROUP BY ALL ORDER BY s.id"""
        ).fetchall()
    ]
    months = [
        {"month": row[0], "messages": int(row[1])}
        for row in db.execute(
            """SELECT strftime(date_trunc('month', created_at), '%Y-%m') AS month, count(*) FROM messages
               WHERE created_at IS NOT NULL AND searchable GROUP BY month ORDER BY month"""
        ).fetchall()
    ]
    last_import = db.execute(
        "SELECT state, path, started_at, error FROM imports ORDER BY started_at DESC LIMIT 1"
    ).fetchone()
    space = current_space(db)
    return {
        "conversations": int(conversations), "messages": int(messages), "kept_out": int(kept_out), "chunks": int(chunks),
        "sources": sources, "per_month": months,
        "embedding_model": space[0] if space else None, "embedding_dimension": space[1] if space else None,
        "last_import": None if last_import is None else {
            "state": last_import[0], "path": last_import[1], "started_at": last_import[2].isoformat(), "error": last_import[3]},
    }
