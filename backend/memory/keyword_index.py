"""The BM25 keyword index over chunk text, rebuilt with the vector clean-up.

DuckDB's ``fts`` extension tokenises, stems and counts (its ``dict``, ``docs`` and ``terms`` tables);
its ``match_bm25`` scores every chunk of the table on every query, which grows with memory (about
70 ms at 50k chunks). So the rebuild also writes ``keyword_postings``: one row per (term, chunk) with
its BM25 weight precomputed, stored in term order, so a query reads only its own terms' rows (DuckDB
skips the other row groups by their min/max) and sums them. Scores equal ``match_bm25``'s.

The snapshot is rebuilt in full after a bulk change (an import, a deleted source): about 10 s at
100k chunks. A small change (a chat turn, a forgotten conversation) must not cost that, so it is
kept beside the snapshot: the changed conversations are listed in ``keyword_stale`` (their snapshot
postings no longer count) and their current chunks' postings go to ``keyword_delta``, weighted with
the snapshot's statistics (document frequencies, average length), which drift a little until the
next full rebuild. Past ``DELTA_LIMIT`` chunks in the delta, the next change rebuilds in full.
Every change marks the index stale first; if the app dies before it is done, the next search
rebuilds. The same step drops vectors no chunk uses any more (vectors of deleted text must not
linger, since an embedding leaks something of the text it came from) and tells the vector index
that chunks changed.
"""

from __future__ import annotations

import re
import threading

import duckdb
import snowballstemmer
from snowballstemmer.basestemmer import BaseStemmer

from backend.memory.migrations import transaction
from backend.memory.store import MemoryStore
from backend.memory.vector_index import bump_generation

STALE_FLAG = "keyword_index_stale"
BM25_K1, BM25_B = 1.2, 0.75
MAX_QUERY_TERMS = 64
DELTA_MIN_CHUNKS, DELTA_SHARE = 2000, 0.05  # the delta may hold max(2000, 5% of all chunks) chunks


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
            SELECT tf.termid, tf.docid, docs.name AS chunk_id, c.conversation_id,
                   (log((stats.num_docs - dict.df + 0.5) / (dict.df + 0.5) + 1) * tf.tf * ({BM25_K1} + 1)
                    / (tf.tf + {BM25_K1} * (1 - {BM25_B} + {BM25_B} * docs.len / stats.avgdl)))::FLOAT AS weight
            FROM tf JOIN fts_main_chunks.dict dict USING (termid) JOIN fts_main_chunks.docs docs USING (docid)
                 JOIN chunks c ON c.id = docs.name, stats
            ORDER BY tf.termid, tf.docid""")
        db.execute("CREATE OR REPLACE TABLE keyword_stale (conversation_id VARCHAR)")
        db.execute("CREATE OR REPLACE TABLE keyword_delta (term VARCHAR, chunk_id VARCHAR, conversation_id VARCHAR, weight FLOAT)")
        _drop_unused_vectors(db)
        bump_generation(store)  # chunks changed: the vector index holds chunk ids
    store.set_flag(STALE_FLAG, "0")


def refresh_keyword_index(store: MemoryStore, conversation_ids: set[str]) -> None:
    """After ``conversation_ids`` changed (chunks added, rewritten or deleted): update the delta, or
    rebuild in full when there is no snapshot yet or the delta has grown past its limit."""
    if not conversation_ids:
        return
    db = store.cursor()
    if store.get_flag(STALE_FLAG) != "0" or not _has_snapshot(db):
        rebuild_keyword_index(store)
        return
    mark_stale(store)
    with store.write_lock:
        ids = sorted(conversation_ids)
        marks = ", ".join("?" * len(ids))
        total = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        already = {row[0] for row in db.execute("SELECT conversation_id FROM keyword_stale").fetchall()}
        pending = db.execute(f"SELECT count(*) FROM chunks WHERE conversation_id IN (SELECT conversation_id FROM keyword_stale) "
                             f"OR conversation_id IN ({marks})", ids).fetchone()[0]
        too_big = pending > max(DELTA_MIN_CHUNKS, DELTA_SHARE * total)
        if not too_big:
            _update_delta(db, ids, already)
    if too_big:
        rebuild_keyword_index(store)
        return
    bump_generation(store, conversation_ids)  # the vector index replaces just their rows
    store.set_flag(STALE_FLAG, "0")


def _update_delta(db: duckdb.DuckDBPyConnection, ids: list[str], already: set[str]) -> None:
    """Mark ``ids`` stale in the snapshot and write their current chunks' postings into the delta."""
    marks = ", ".join("?" * len(ids))
    new = [i for i in ids if i not in already]
    with transaction(db):
        if new:
            db.execute(f"INSERT INTO keyword_stale SELECT unnest([{', '.join('?' * len(new))}])", new)
        db.execute(f"DELETE FROM keyword_delta WHERE conversation_id IN ({marks})", ids)
        db.execute(f"""INSERT INTO keyword_delta
            WITH words AS (SELECT c.id AS chunk_id, c.conversation_id, unnest(fts_main_chunks.tokenize(c.text)) AS w
                           FROM chunks c WHERE c.conversation_id IN ({marks})),
                 kept AS (SELECT chunk_id, conversation_id, stem(w, 'porter') AS term FROM words
                          WHERE w <> '' AND w NOT IN (SELECT sw FROM fts_main_chunks.stopwords)),
                 lens AS (SELECT chunk_id, count(*) AS len FROM kept GROUP BY chunk_id),
                 tf AS (SELECT chunk_id, conversation_id, term, count(*) AS tf FROM kept GROUP BY ALL),
                 stats AS (SELECT num_docs, avgdl FROM fts_main_chunks.stats)
            SELECT tf.term, tf.chunk_id, tf.conversation_id,
                   (log((stats.num_docs - coalesce(dict.df, 1) + 0.5) / (coalesce(dict.df, 1) + 0.5) + 1) * tf.tf * ({BM25_K1} + 1)
                    / (tf.tf + {BM25_K1} * (1 - {BM25_B} + {BM25_B} * lens.len / stats.avgdl)))::FLOAT
            FROM tf JOIN lens USING (chunk_id) LEFT JOIN fts_main_chunks.dict dict ON dict.term = tf.term, stats""", ids)
        _drop_unused_vectors(db)


def _has_snapshot(db: duckdb.DuckDBPyConnection) -> bool:
    names = {row[0] for row in db.execute(
        "SELECT table_name FROM duckdb_tables() WHERE table_name IN ('keyword_postings', 'keyword_stale', 'keyword_delta')").fetchall()}
    return len(names) == 3 and bool(db.execute(
        "SELECT count(*) FROM duckdb_columns() WHERE table_name = 'keyword_postings' AND column_name = 'conversation_id'").fetchone()[0])


def _drop_unused_vectors(db: duckdb.DuckDBPyConnection) -> None:
    if db.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'embeddings'").fetchone()[0]:
        db.execute("DELETE FROM embeddings WHERE text_hash NOT IN (SELECT DISTINCT text_hash FROM chunks)")


def query_stems(db: duckdb.DuckDBPyConnection, query: str) -> list[str]:
    """The query's distinct terms as the index stores them (tokenised, lower-cased, stemmed).

    An ASCII query is split and stemmed here as the index's ``tokenize`` macro and DuckDB's
    ``stem(…, 'porter')`` do (the same Snowball Porter stemmer): a DuckDB round trip costs about
    1.2 ms a query. Other text goes to DuckDB, whose accent stripping and case folding we do not copy.
    """
    if query.isascii():
        words = {word for word in _SPACES.split(_SEPARATORS.sub(" ", query.lower())) if word}
        stems = {porter_stemmer().stemWord(word) for word in words}
    else:
        rows = db.execute("SELECT DISTINCT stem(unnest(fts_main_chunks.tokenize(?)), 'porter') AS t", [query]).fetchall()
        stems = {row[0] for row in rows}
    return sorted(stem for stem in stems if stem)[:MAX_QUERY_TERMS]


_SEPARATORS = re.compile(r"""[0-9!@#$%^&*()_+={}\[\]:;<>,.?~\\/|'"`-]+""")  # the tokenize macro's, for ASCII
_SPACES = re.compile(r"[\t\n\f\r ]+")  # RE2's \s, which string_split_regex splits on
_stemmers = threading.local()  # a Snowball stemmer keeps state between calls: one per thread


def porter_stemmer() -> BaseStemmer:
    """This thread's Snowball Porter stemmer (the one the index stems with)."""
    if not hasattr(_stemmers, "porter"):
        _stemmers.porter = snowballstemmer.stemmer("porter")
    return _stemmers.porter


def keyword_top(db: duckdb.DuckDBPyConnection, query: str, k: int, where: str = "TRUE",
                params: list[object] | None = None) -> list[tuple[str, float]]:
    """(chunk id, BM25 score) of the ``k`` best chunks for ``query``; ``where`` filters chunks ``c``."""
    stems = query_stems(db, query)
    if not stems:
        return []
    found = db.execute("SELECT termid FROM fts_main_chunks.dict WHERE term IN (SELECT unnest(?::VARCHAR[]))", [stems]).fetchall()
    wanted = ", ".join(str(int(row[0])) for row in found) or "NULL"  # our own integers
    term_marks = ", ".join("?" * len(stems))
    # Snapshot scores per chunk, minus the conversations changed since (they score from the delta).
    snapshot = f"""SELECT chunk_id, score FROM (
                       SELECT chunk_id, any_value(conversation_id) AS conversation_id, sum(weight) AS score
                       FROM keyword_postings WHERE termid IN ({wanted}) GROUP BY chunk_id)
                   WHERE conversation_id NOT IN (SELECT conversation_id FROM keyword_stale)"""
    delta = f"SELECT chunk_id, sum(weight) AS score FROM keyword_delta WHERE term IN ({term_marks}) GROUP BY chunk_id"
    if where == "TRUE":
        rows = db.execute(f"{snapshot} UNION ALL {delta} ORDER BY score DESC, chunk_id LIMIT ?", [*stems, k]).fetchall()
    else:
        rows = db.execute(
            f"""SELECT s.chunk_id, s.score FROM ({snapshot} UNION ALL {delta}) s JOIN chunks c ON c.id = s.chunk_id
                WHERE {where} ORDER BY s.score DESC, s.chunk_id LIMIT ?""", [*stems, *(params or []), k]).fetchall()
    return [(row[0], float(row[1])) for row in rows]


def ensure_keyword_index(store: MemoryStore) -> None:
    if store.get_flag(STALE_FLAG) != "0":  # migration m006 set it for snapshots made before the delta existed
        rebuild_keyword_index(store)
