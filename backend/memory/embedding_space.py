"""Which model's vectors the store holds, and the content-addressed ``embeddings`` table.

Vectors are keyed by the hash of the chunk text, not by chunk: identical text is embedded once,
re-imports find their vectors already there, and an import killed half-way keeps the vectors it
paid for (the next run resumes from them). Switching the model drops the vectors and re-embeds
every chunk, so two models' spaces are never mixed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import duckdb
import numpy as np
import pyarrow as pa

from backend.memory.embeddings import Embedder
from backend.memory.migrations import set_embedding_space, transaction
from backend.memory.store import MemoryStore
from backend.memory.vector_index import bump_generation

ProgressCallback = Callable[[int, int], None]


def current_space(db: duckdb.DuckDBPyConnection) -> tuple[str, int] | None:
    row = db.execute("SELECT model, dimension FROM embedding_space").fetchone()
    return (row[0], int(row[1])) if row else None


def ensure_space(store: MemoryStore, embedder: Embedder, progress: ProgressCallback | None = None) -> bool:
    """Make the store's space match ``embedder``; returns True when everything was re-embedded."""
    db = store.cursor()
    space = current_space(db)
    if space == (embedder.name, embedder.dimension):
        return False
    with store.write_lock, transaction(db):
        set_embedding_space(db, embedder.name, embedder.dimension)
    bump_generation(store)
    if space is None:
        return False
    texts = db.execute("SELECT text_hash, any_value(text) FROM chunks GROUP BY text_hash").fetchall()
    embed_missing(store, embedder, dict(texts), progress)
    return True


def missing_hashes(db: duckdb.DuckDBPyConnection, hashes: Iterable[str]) -> set[str]:
    wanted = list(set(hashes))
    if not wanted:
        return set()
    wanted_table = pa.table({"text_hash": wanted})  # noqa: F841 - scanned by DuckDB below
    present = db.execute("SELECT w.text_hash FROM wanted_table w JOIN embeddings e USING (text_hash)").fetchall()
    return set(wanted) - {row[0] for row in present}


def embed_missing(store: MemoryStore, embedder: Embedder, texts_by_hash: dict[str, str],
                  progress: ProgressCallback | None = None, batch: int = 4096) -> int:
    """Embed and store the texts whose hash has no vector yet; each batch commits on its own."""
    db = store.cursor()
    todo = sorted(missing_hashes(db, texts_by_hash))
    for start in range(0, len(todo), batch):
        hashes = todo[start:start + batch]
        vectors = embedder.embed([texts_by_hash[h] for h in hashes])
        insert_vectors(db, hashes, vectors)
        # Only chunks that already use these texts gain a vector (an import embeds before it writes chunks).
        bump_generation(store, [row[0] for row in db.execute(
            "SELECT DISTINCT conversation_id FROM chunks WHERE text_hash IN (SELECT unnest(?::VARCHAR[]))", [hashes]).fetchall()])
        if progress:
            progress(min(start + batch, len(todo)), len(todo))
    return len(todo)


def insert_vectors(db: duckdb.DuckDBPyConnection, hashes: list[str], vectors: np.ndarray) -> None:
    dimension = vectors.shape[1]
    incoming = pa.table({  # noqa: F841 - scanned by DuckDB below
        "text_hash": hashes,
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.astype(np.float32).ravel()), dimension),
    })
    db.execute("INSERT INTO embeddings SELECT text_hash, vector FROM incoming ON CONFLICT DO NOTHING")
