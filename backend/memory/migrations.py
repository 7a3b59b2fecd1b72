"""Append-only schema migrations (``m001_…``), recorded in a table and applied on open.

Never edit a migration that has shipped: add the next one. Every schema statement lives in this
module; the one made at run time is :func:`set_embedding_space`, because the ``embeddings`` table's
vector width is the embedding model's dimension, known only when a model is chosen.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import duckdb

Migration = Callable[[duckdb.DuckDBPyConnection], None]


@contextlib.contextmanager
def transaction(db: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN … COMMIT, or ROLLBACK on any exception (a kill -9 rolls back on its own)."""
    db.execute("BEGIN TRANSACTION")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def set_embedding_space(db: duckdb.DuckDBPyConnection, model: str, dimension: int) -> None:
    """(Re)create the content-addressed ``embeddings`` table for ``model``'s vectors, dropping any
    vectors of another model, and record the space. Call inside a transaction."""
    if not isinstance(dimension, int) or not 1 <= dimension <= 16384:
        raise ValueError(f"not an embedding dimension: {dimension!r}")
    db.execute("DROP TABLE IF EXISTS embeddings")
    db.execute(f"CREATE TABLE embeddings (text_hash VARCHAR PRIMARY KEY, vector FLOAT[{dimension}] NOT NULL)")
    db.execute("DELETE FROM embedding_space")
    db.execute("INSERT INTO embedding_space VALUES (?, ?)", [model, dimension])


MIGRATIONS: list[Migration] = []


def migration(function: Migration) -> Migration:
    MIGRATIONS.append(function)
    return function


@migration
def m001_initial(db: duckdb.DuckDBPyConnection) -> None:
    db.execute("""
        CREATE TABLE sources (
            id VARCHAR PRIMARY KEY, kind VARCHAR NOT NULL, label VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL
        )""")
    db.execute("""
        CREATE TABLE conversations (
            id VARCHAR PRIMARY KEY, source_id VARCHAR NOT NULL, external_id VARCHAR NOT NULL,
            title VARCHAR NOT NULL, created_at TIMESTAMP, updated_at TIMESTAMP,
            content_hash VARCHAR NOT NULL, message_count INTEGER NOT NULL, imported_at TIMESTAMP NOT NULL
        )""")
    db.execute("""
        CREATE TABLE messages (
            id VARCHAR NOT NULL, conversation_id VARCHAR NOT NULL, position INTEGER NOT NULL,
            external_id VARCHAR NOT NULL, role VARCHAR NOT NULL, content_type VARCHAR NOT NULL,
            model VARCHAR, created_at TIMESTAMP, text VARCHAR NOT NULL,
            searchable BOOLEAN NOT NULL, trainable BOOLEAN NOT NULL, on_active_branch BOOLEAN NOT NULL
        )""")
    db.execute("""
        CREATE TABLE chunks (
            id VARCHAR NOT NULL, conversation_id VARCHAR NOT NULL, message_id VARCHAR NOT NULL,
            source_id VARCHAR NOT NULL, position INTEGER NOT NULL, role VARCHAR NOT NULL,
            created_at TIMESTAMP, text VARCHAR NOT NULL, text_hash VARCHAR NOT NULL
        )""")
    db.execute("CREATE TABLE embedding_space (model VARCHAR NOT NULL, dimension INTEGER NOT NULL)")
    db.execute("""
        CREATE TABLE imports (
            id VARCHAR PRIMARY KEY, source_id VARCHAR, path VARCHAR NOT NULL, mode VARCHAR NOT NULL,
            state VARCHAR NOT NULL, started_at TIMESTAMP NOT NULL, finished_at TIMESTAMP,
            stats VARCHAR, error VARCHAR, pid INTEGER
        )""")
    db.execute("CREATE TABLE store_flags (name VARCHAR PRIMARY KEY, value VARCHAR)")
    db.execute("CREATE INDEX messages_conversation ON messages (conversation_id)")
    db.execute("CREATE INDEX chunks_conversation ON chunks (conversation_id)")


def apply_migrations(db: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply pending migrations, each in its own transaction; returns the names applied."""
    db.execute("CREATE TABLE IF NOT EXISTS migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMP NOT NULL)")
    done = {row[0] for row in db.execute("SELECT name FROM migrations").fetchall()}
    applied = []
    for function in MIGRATIONS:
        if function.__name__ in done:
            continue
        with transaction(db):
            function(db)
            db.execute("INSERT INTO migrations VALUES (?, now())", [function.__name__])
        applied.append(function.__name__)
    return applied


@migration
def m002_chat(db: duckdb.DuckDBPyConnection) -> None:
    """The app's own chats: they are shown in Chat, and become memory and training data."""
    db.execute("""
        CREATE TABLE chat_sessions (
            id VARCHAR PRIMARY KEY, title VARCHAR NOT NULL, model VARCHAR NOT NULL, system_prompt VARCHAR NOT NULL,
            memory_enabled BOOLEAN NOT NULL, created_at TIMESTAMP NOT NULL, updated_at TIMESTAMP NOT NULL
        )""")
    db.execute("""
        CREATE TABLE chat_messages (
            id VARCHAR NOT NULL, session_id VARCHAR NOT NULL, position INTEGER NOT NULL, role VARCHAR NOT NULL,
            content VARCHAR NOT NULL, model VARCHAR, sources VARCHAR, stats VARCHAR, created_at TIMESTAMP NOT NULL
        )""")
    db.execute("CREATE INDEX chat_messages_session ON chat_messages (session_id)")


@migration
def m003_chat_options(db: duckdb.DuckDBPyConnection) -> None:
    """Per-chat reply length and temperature (NULL: the defaults in Settings)."""
    db.execute("ALTER TABLE chat_sessions ADD COLUMN max_tokens INTEGER")
    db.execute("ALTER TABLE chat_sessions ADD COLUMN temperature DOUBLE")


@migration
def m004_keyword_postings(db: duckdb.DuckDBPyConnection) -> None:
    """Keyword search reads precomputed BM25 postings: mark the keyword index stale so the next
    search builds them (the flag ``keyword_index.STALE_FLAG``)."""
    db.execute("INSERT OR REPLACE INTO store_flags VALUES ('keyword_index_stale', '1')")


@migration
def m005_lookup_indexes(db: duckdb.DuckDBPyConnection) -> None:
    """Search hits are read back by chunk and message id: without an index each read scanned every
    chunk (about 25 ms at 100k chunks, a third of a hybrid search); with one it is an index lookup."""
    db.execute("CREATE INDEX chunks_id ON chunks (id)")
    db.execute("CREATE INDEX messages_id ON messages (id)")


@migration
def m006_keyword_delta(db: duckdb.DuckDBPyConnection) -> None:
    """Small changes go to a keyword delta beside the snapshot, whose postings now carry their
    conversation: mark the index stale so the next search builds the new shape."""
    db.execute("INSERT OR REPLACE INTO store_flags VALUES ('keyword_index_stale', '1')")


@migration
def m007_vector_changes(db: duckdb.DuckDBPyConnection) -> None:
    """Which conversations' chunks changed in each vector generation, so an in-memory vector index
    updates those rows instead of reloading every vector (a chat turn at 100k chunks reloaded ~1 s).
    A NULL conversation means "anything may have changed": reload."""
    db.execute("CREATE TABLE vector_changes (generation BIGINT NOT NULL, conversation_id VARCHAR)")
    db.execute("INSERT INTO vector_changes VALUES (0, NULL)")
