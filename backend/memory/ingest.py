"""Import an export into the memory store: incremental, idempotent, all-or-nothing.

Two passes over the (streamed) input:

1. **Embed**: parse every conversation, skip the unchanged ones (same content hash), chunk the rest
   and embed the chunk texts that have no vector yet. Vectors are content-addressed and commit in
   batches, so an interrupted import keeps what it paid for. Bad input fails here, before anything
   else is written.
2. **Write**: in one transaction, insert new conversations and replace changed ones (messages,
   chunks). A crash rolls it back entirely; the next run redoes it in seconds, as its vectors exist.

Then the keyword index is rebuilt and orphaned vectors are dropped.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import duckdb
import pyarrow as pa

from backend.errors import CancelledError, OrchMindError
from backend.importers import chatgpt, claude, gemini, notes
from backend.importers.model import BadImportOption, ImportedConversation, ImportFormatError
from backend.importers.source_files import head_has, read_head
from backend.memory.chunking import MAX_TOKENS, TokenCounter, chunk_text, estimate_tokens, text_hash
from backend.memory.embedding_space import embed_missing, ensure_space
from backend.memory.embeddings import Embedder
from backend.memory.keyword_index import rebuild_keyword_index, refresh_keyword_index
from backend.memory.migrations import transaction
from backend.memory.store import MemoryStore

ImportMode = Literal["increment", "overwrite"]
Progress = Callable[[str, int, int], None]  # (status, completed, total)
EMBED_BATCH_TEXTS = 4096  # large batches let sentence-transformers sort by length: less padding
WRITE_BATCH_ROWS = 5_000
WRITE_BATCH_BYTES = 32 << 20  # and at most this much text per batch: tool outputs run to megabytes each
KEPT_CHUNKS_BYTES = 64 << 20  # chunks cut while embedding are kept for the write pass, up to this much text


@dataclass
class ImportStats:
    source_id: str
    source_kind: str
    conversations: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    messages: int = 0
    chunks: int = 0
    vectors_embedded: int = 0
    skipped_messages: int = 0  # malformed messages left out
    duplicates: int = 0  # conversations whose id appeared earlier in the same file (the first one is kept)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def detect_source(path: Path) -> str:
    """Which importer reads ``path``. Archive problems (no conversations.json, unsafe names, bombs)
    surface here with their own message rather than a generic "unknown format"."""
    if chatgpt.detect(path):  # before notes: an unzipped export is a folder too
        return chatgpt.SOURCE_KIND
    if notes.detect(path):
        return notes.SOURCE_KIND
    try:
        head = read_head(path, chatgpt.FILE_NAME)  # both exports name it conversations.json
    except ImportFormatError:
        if gemini.detect(path):  # a Takeout .zip has no conversations.json
            return gemini.SOURCE_KIND
        raise
    if head_has(head, claude.MARKER):
        return claude.SOURCE_KIND
    if gemini.detect(path):
        return gemini.SOURCE_KIND
    raise ImportFormatError(
        f"{path.name} is not a ChatGPT export (.zip or conversations.json with 'mapping'), a Claude export "
        "(conversations.json with 'chat_messages'), a Google Takeout of Gemini Apps activity (MyActivity.json) "
        "or a folder of notes."
    )


def source_id_for(kind: str, path: Path) -> str:
    """One source per service account kind; one per notes folder (its resolved path, hashed)."""
    if kind == notes.SOURCE_KIND:
        return f"notes:{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]}"
    return kind


def conversation_key(source_id: str, external_id: str) -> str:
    return hashlib.sha1(f"{source_id}\x00{external_id}".encode()).hexdigest()[:20]


def _stream(kind: str, path: Path, all_branches: bool, on_progress: Callable[[int, int], None] | None) -> Iterator[ImportedConversation]:
    """The importer's conversations; JSON, archive and limit problems arrive as ImportFormatError."""
    if kind == chatgpt.SOURCE_KIND:
        yield from chatgpt.iter_conversations(path, all_branches=all_branches, on_progress=on_progress)
    elif kind == claude.SOURCE_KIND:
        yield from claude.iter_conversations(path, on_progress=on_progress)
    elif kind == gemini.SOURCE_KIND:
        yield from gemini.iter_conversations(path, on_progress=on_progress)
    else:
        yield from notes.iter_conversations(path)


@dataclass(frozen=True)
class Chunker:
    """Chunks measured in the embedding model's own tokens, within its window."""

    count: TokenCounter = estimate_tokens
    max_tokens: int = MAX_TOKENS

    @classmethod
    def for_embedder(cls, embedder: object) -> Chunker:
        window = getattr(embedder, "max_tokens", None)
        limit = min(MAX_TOKENS, window - 2) if isinstance(window, int) and window > 34 else MAX_TOKENS
        return cls(getattr(embedder, "count_tokens", estimate_tokens), limit)

    def chunks_of(self, conversation: ImportedConversation) -> list[tuple[int, int, str]]:
        """(message position, chunk position, text) for the searchable messages."""
        out = []
        for position, message in enumerate(conversation.messages):
            if message.searchable:
                for chunk_position, text in enumerate(chunk_text(message.text, self.max_tokens, count=self.count)):
                    out.append((position, chunk_position, text))
        return out


class _Writer:
    """Buffers rows and appends them through Arrow (fast bulk insert) inside the open transaction."""

    def __init__(self, db: duckdb.DuckDBPyConnection, chunker: Chunker) -> None:
        self.db = db
        self.chunker = chunker
        self.messages: dict[str, list] = {k: [] for k in ("id", "conversation_id", "position", "external_id", "role", "content_type", "model", "created_at", "text", "searchable", "trainable", "on_active_branch")}
        self.chunks: dict[str, list] = {k: [] for k in ("id", "conversation_id", "message_id", "source_id", "position", "role", "created_at", "text", "text_hash")}
        self.buffered_bytes = 0

    def add(self, source_id: str, key: str, conversation: ImportedConversation,
            chunks: list[tuple[int, int, str]] | None = None) -> int:
        """Buffer a conversation's messages and chunks (``chunks``: already cut, or None to cut them)."""
        for position, message in enumerate(conversation.messages):
            message_id = f"{key}:{position}"
            for column, value in zip(self.messages, (message_id, key, position, message.external_id, message.role, message.content_type, message.model, message.created_at, message.text, message.searchable, message.trainable, message.on_active_branch)):
                self.messages[column].append(value)
            self.buffered_bytes += len(message.text)
        count = 0
        for position, chunk_position, text in self.chunker.chunks_of(conversation) if chunks is None else chunks:
            message = conversation.messages[position]
            values = (f"{key}:{position}:{chunk_position}", key, f"{key}:{position}", source_id, chunk_position, message.role, message.created_at or conversation.created_at, text, text_hash(text))
            for column, value in zip(self.chunks, values):
                self.chunks[column].append(value)
            count += 1
        if len(self.messages["id"]) >= WRITE_BATCH_ROWS or self.buffered_bytes >= WRITE_BATCH_BYTES:
            self.flush()
        return count

    def flush(self) -> None:
        if self.messages["id"]:
            message_rows = pa.table(self.messages)  # noqa: F841 - scanned by DuckDB
            self.db.execute("INSERT INTO messages SELECT * FROM message_rows")
        if self.chunks["id"]:
            chunk_rows = pa.table(self.chunks)  # noqa: F841 - scanned by DuckDB
            self.db.execute("INSERT INTO chunks SELECT * FROM chunk_rows")
        for table in (self.messages, self.chunks):
            for column in table.values():
                column.clear()
        self.buffered_bytes = 0


def import_path(
    store: MemoryStore,
    path: Path,
    embedder: Embedder,
    *,
    mode: ImportMode = "increment",
    all_branches: bool = False,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    label: str | None = None,
) -> ImportStats:
    """Import ``path`` (export .zip/.json or notes folder). Raises ImportFormatError on bad input,
    leaving the store exactly as it was (apart from reusable vectors). ``label`` names the source
    (the user's file name; ``path.name`` by default)."""
    path = Path(path)
    kind = detect_source(path)
    report = progress or (lambda status, done, total: None)
    bytes_progress = lambda done, total: report("reading and embedding", done, total)  # noqa: E731
    return import_conversations(
        store, embedder, source_id_for(kind, path), kind, label or path.name, str(path),
        lambda with_progress: _stream(kind, path, all_branches, bytes_progress if with_progress else None),
        mode=mode, progress=progress, should_stop=should_stop,
    )


def import_conversations(
    store: MemoryStore,
    embedder: Embedder,
    source_id: str,
    kind: str,
    label: str,
    origin: str,
    conversations: Callable[[bool], Iterator[ImportedConversation]],
    *,
    mode: ImportMode = "increment",
    progress: Progress | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> ImportStats:
    """The import core for any source: ``conversations(with_progress)`` must stream the same items
    each time it is called (it is read twice: embed, then write)."""
    if mode not in ("increment", "overwrite"):
        raise BadImportOption(f"Unknown import mode {mode!r}; use 'increment' or 'overwrite'.")
    started = time.time()
    stats = ImportStats(source_id=source_id, source_kind=kind)
    report = progress or (lambda status, done, total: None)
    ensure_space(store, embedder, lambda done, total: report("re-embedding memory for the new model", done, total))

    chunker = Chunker.for_embedder(embedder)
    db = store.cursor()
    import_id = uuid.uuid4().hex[:12]
    db.execute("INSERT INTO imports VALUES (?, ?, ?, ?, 'running', now(), NULL, NULL, NULL, ?)",
               [import_id, source_id, origin, mode, os.getpid()])
    try:
        with store.write_lock:
            known = dict(db.execute("SELECT external_id, content_hash FROM conversations WHERE source_id = ?", [source_id]).fetchall())
            if mode == "overwrite":
                known = {}
            changed: set[str] = set()
            pending: dict[str, str] = {}

            def embed_pending() -> None:
                stats.vectors_embedded += embed_missing(store, embedder, pending)
                pending.clear()

            seen: set[str] = set()
            # Cutting text into chunks counts tokens, a good part of an import's own work: the write
            # pass reuses the embed pass's chunks while they fit in KEPT_CHUNKS_BYTES, and cuts again past it.
            kept: dict[tuple[str, str], list[tuple[int, int, str]]] = {}  # (id, content hash) -> its chunks
            kept_bytes = 0
            for conversation in conversations(True):
                if should_stop():
                    raise CancelledError("The import was cancelled; nothing was changed.")
                if conversation.external_id in seen:
                    stats.duplicates += 1
                    continue
                seen.add(conversation.external_id)
                stats.conversations += 1
                stats.skipped_messages += conversation.skipped_messages
                digest = conversation.content_hash()
                if known.get(conversation.external_id) == digest:
                    stats.unchanged += 1
                    continue
                changed.add(conversation.external_id)
                chunks = chunker.chunks_of(conversation)
                for _, _, text in chunks:
                    pending[text_hash(text)] = text
                size = sum(len(text) for _, _, text in chunks)
                if kept_bytes + size <= KEPT_CHUNKS_BYTES:
                    kept[(conversation.external_id, digest)] = chunks
                    kept_bytes += size
                if len(pending) >= EMBED_BATCH_TEXTS:
                    embed_pending()
            embed_pending()
            if stats.conversations == 0 and kind not in ("orch-chat",):
                raise ImportFormatError(f"{label} contains no conversations; is it the right file?")

            if changed or mode == "overwrite":
                _write(store, kind, label, source_id, conversations(False), changed, known, mode, stats, report, chunker, kept)
        if mode == "overwrite":
            rebuild_keyword_index(store)
        elif changed:  # an unchanged re-import leaves the index as it was; a chat turn updates its delta
            refresh_keyword_index(store, {conversation_key(source_id, external_id) for external_id in changed})
        stats.seconds = round(time.time() - started, 3)
        db.execute("UPDATE imports SET state = 'completed', finished_at = now(), stats = ? WHERE id = ?",
                   [json.dumps(stats.to_dict()), import_id])
        return stats
    except BaseException as exc:
        message = exc.message if isinstance(exc, OrchMindError) else f"{type(exc).__name__}: {exc}"
        state = "cancelled" if isinstance(exc, CancelledError) else "failed"
        db.execute("UPDATE imports SET state = ?, finished_at = now(), error = ? WHERE id = ?", [state, message, import_id])
        raise


def _write(store: MemoryStore, kind: str, label: str, source_id: str, conversations: Iterator[ImportedConversation],
           changed: set[str], known: dict[str, str], mode: str, stats: ImportStats, report: Progress, chunker: Chunker,
           kept: dict[tuple[str, str], list[tuple[int, int, str]]]) -> None:
    db = store.cursor()
    with transaction(db):
        db.execute("INSERT INTO sources VALUES (?, ?, ?, now()) ON CONFLICT (id) DO UPDATE SET label = excluded.label",
                   [source_id, kind, label])
        if mode == "overwrite":
            _delete_conversations_of(db, source_id)
        writer = _Writer(db, chunker)
        done = 0
        written: set[str] = set()
        for conversation in conversations:
            if conversation.external_id not in changed or conversation.external_id in written:
                continue  # unchanged, or a later duplicate of an id already written
            written.add(conversation.external_id)
            key = conversation_key(source_id, conversation.external_id)
            digest = conversation.content_hash()
            if conversation.external_id in known:
                writer.flush()
                db.execute("DELETE FROM chunks WHERE conversation_id = ?", [key])
                db.execute("DELETE FROM messages WHERE conversation_id = ?", [key])
                db.execute("UPDATE conversations SET title = ?, created_at = ?, updated_at = ?, content_hash = ?, "
                           "message_count = ?, imported_at = now() WHERE id = ?",
                           [conversation.title, conversation.created_at, conversation.updated_at,
                            digest, len(conversation.messages), key])
                stats.updated += 1
            else:
                db.execute("INSERT INTO conversations VALUES (?, ?, ?, ?, ?, ?, ?, ?, now())",
                           [key, source_id, conversation.external_id, conversation.title, conversation.created_at,
                            conversation.updated_at, digest, len(conversation.messages)])
                stats.added += 1
            stats.messages += len(conversation.messages)
            chunks = kept.pop((conversation.external_id, digest), None)  # None: cut again
            stats.chunks += writer.add(source_id, key, conversation, chunks)
            done += 1
            if done % 200 == 0:
                report("writing", done, len(changed))
        writer.flush()
        report("writing", done, len(changed))


def _delete_conversations_of(db: duckdb.DuckDBPyConnection, source_id: str) -> int:
    """Delete a source's conversations with their messages and chunks (inside the caller's transaction)."""
    count = db.execute("SELECT count(*) FROM conversations WHERE source_id = ?", [source_id]).fetchone()[0]
    for table in ("chunks", "messages"):
        db.execute(f"DELETE FROM {table} WHERE conversation_id IN (SELECT id FROM conversations WHERE source_id = ?)", [source_id])
    db.execute("DELETE FROM conversations WHERE source_id = ?", [source_id])
    return int(count)


def forget_conversation(store: MemoryStore, source_id: str, external_id: str) -> bool:
    """Remove one conversation (messages, chunks, then its unused vectors); False if it was not there."""
    key = conversation_key(source_id, external_id)
    db = store.cursor()
    with store.write_lock, transaction(db):
        found = db.execute("SELECT count(*) FROM conversations WHERE id = ?", [key]).fetchone()[0]
        for table in ("chunks", "messages"):
            db.execute(f"DELETE FROM {table} WHERE conversation_id = ?", [key])
        db.execute("DELETE FROM conversations WHERE id = ?", [key])
    if found:
        refresh_keyword_index(store, {key})
    return bool(found)


def delete_source(store: MemoryStore, source_id: str) -> int:
    """Remove a source with its conversations, messages and chunks; returns conversations removed."""
    db = store.cursor()
    with store.write_lock, transaction(db):
        count = _delete_conversations_of(db, source_id)
        db.execute("DELETE FROM sources WHERE id = ?", [source_id])
    rebuild_keyword_index(store)
    return count
