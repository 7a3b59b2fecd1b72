"""The BM25 keyword index (DuckDB ``fts``) over chunk text, rebuilt with the vector clean-up.

DuckDB's FTS index is a snapshot, not maintained on insert, so it is rebuilt after every change to
chunks. A change marks it stale first; if the app dies before the rebuild, the next search rebuilds.
The same step drops vectors no chunk uses any more: vectors of deleted text must not linger, since
an embedding leaks something of the text it came from.
"""

from __future__ import annotations

from backend.memory.store import MemoryStore
from backend.memory.vector_index import bump_generation

STALE_FLAG = "keyword_index_stale"


def mark_stale(store: MemoryStore) -> None:
    store.set_flag(STALE_FLAG, "1")


def rebuild_keyword_index(store: MemoryStore) -> None:
    mark_stale(store)
    with store.write_lock:
        db = store.cursor()
        db.execute("PRAGMA create_fts_index('chunks', 'id', 'text', stemmer = 'porter', stopwords = 'english', "
                   "strip_accents = 1, lower = 1, overwrite = 1)")
        if db.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'embeddings'").fetchone()[0]:
            deleted = db.execute("DELETE FROM embeddings WHERE text_hash NOT IN (SELECT DISTINCT text_hash FROM chunks)").fetchone()[0]
            if deleted:
                bump_generation(store)
    store.set_flag(STALE_FLAG, "0")


def ensure_keyword_index(store: MemoryStore) -> None:
    if store.get_flag(STALE_FLAG) != "0":
        rebuild_keyword_index(store)
