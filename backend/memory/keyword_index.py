"""The BM25 keyword index over chunk text, rebuilt with the vector clean-up.

DuckDB's ``fts`` extension tokenises, stems and counts (its ``dict``, ``docs`` and ``terms`` tables);
its ``match_bm25`` scores every chunk of the table on every query, which grows with memory (about
70 ms at 50k chunks). So the rebuild also writes ``keyword_postings``: one row per (term, chunk) with
its BM25 weight precomputed, stored in term order, so a query reads only its own terms' rows (DuckDB
skips the other row groups by their min/max) and sums them. Scores equal ``match_bm25``'s.

The index is a snapshot, not maintained on insert, so it is rebuilt after every change to chunks. A
change marks it stale first; if the app dies before the rebuild, the next search rebuilds. The same
step drops vectors no chunk uses any more (vectors of deleted text must not linger, since an
embedding leaks something of the text it came from) and tells the vector index that chunks changed.
"""

from __future__ import annotations

import duckdb

from backend.memory.store import MemoryStore
from backend.memory.vector_index import bump_generation

STALE_FLAG = "keyword_index_stale"
BM25_K1, BM25_B = 1.2, 0.75
MAX_QUERY_TERMS = 64


def mark_stale(store: MemoryStore) -> None:
    store.set_flag(STALE_FLAG, "1")


def rebuild_keyword_index(store: MemoryStore) -> None:
    mark_stale(store)
    with store.write_lock:
        db = store.cursor()
        db.execute("PRAGMA create_fts_index('chunks', 'id', 'text', stemmer = 'porter', stopwords = 'english', "
                   "strip_accents = 1, lower = 1, overwrite = 1)")
        db.execute(f"""CREATE OR REPLACE TABLE keyword_postings AS
            WITH stats AS (SELECT num_docs, avgdl FROM fts_main_chunks.stats),
                 tf AS (SELECT termid, docid, count(*) AS tf FROM fts_main_chunks.terms GROUP BY ALL)
            SELECT tf.termid, tf.docid, docs.name AS chunk_id,
                   (log((stats.num_docs - dict.df + 0.5) / (dict.df + 0.5) + 1) * tf.tf * ({BM25_K1} + 1)
                    / (tf.tf + {BM25_K1} * (1 - {BM25_B} + {BM25_B} * docs.len / stats.avgdl)))::FLOAT AS weight
            FROM tf JOIN fts_main_chunks.dict dict USING (termid) JOIN fts_main_chunks.docs docs USING (docid), stats
            ORDER BY tf.termid, tf.docid""")
        if db.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'embeddings'").fetchone()[0]:
            db.execute("DELETE FROM embeddings WHERE text_hash NOT IN (SELECT DISTINCT text_hash FROM chunks)")
        bump_generation(store)  # chunks changed: the vector index holds chunk ids
    store.set_flag(STALE_FLAG, "0")


def keyword_top(db: duckdb.DuckDBPyConnection, query: str, k: int, where: str = "TRUE",
                params: list[object] | None = None) -> list[tuple[str, float]]:
    """(chunk id, BM25 score) of the ``k`` best chunks for ``query``; ``where`` filters chunks ``c``."""
    terms = [row[0] for row in db.execute(
        """SELECT termid FROM fts_main_chunks.dict
           WHERE term IN (SELECT DISTINCT stem(unnest(fts_main_chunks.tokenize(?)), 'porter'))""", [query]).fetchall()]
    if not terms:
        return []
    wanted = ", ".join(str(int(term)) for term in terms[:MAX_QUERY_TERMS])  # integers from our own table
    if where == "TRUE":
        rows = db.execute(
            f"""SELECT chunk_id, sum(weight) AS score FROM keyword_postings WHERE termid IN ({wanted})
                GROUP BY chunk_id ORDER BY score DESC, chunk_id LIMIT ?""", [k]).fetchall()
    else:
        rows = db.execute(
            f"""SELECT p.chunk_id, sum(p.weight) AS score FROM keyword_postings p JOIN chunks c ON c.id = p.chunk_id
                WHERE p.termid IN ({wanted}) AND {where} GROUP BY p.chunk_id ORDER BY score DESC, p.chunk_id LIMIT ?""",
            [*(params or []), k]).fetchall()
    return [(row[0], float(row[1])) for row in rows]


def ensure_keyword_index(store: MemoryStore) -> None:
    if store.get_flag(STALE_FLAG) != "0":
        rebuild_keyword_index(store)
