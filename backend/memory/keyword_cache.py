"""An in-memory copy of the BM25 postings for unfiltered keyword queries, one per store.

Summing a query's postings in DuckDB took 6–13 ms at 100k chunks (two queries, a GROUP BY on chunk
ids, contention with the query embedding on 2 cores): more than the whole semantic top-k. Here the
snapshot's postings sit in term order as three arrays (CSR: ``offsets[t]:offsets[t+1]`` are term t's
documents and weights), so a query adds up a few slices with ``np.bincount``. About 8 bytes per
posting: ~25 MB at 100k chunks of 40 words.

It follows the same change log as the vector index (``vectors_generation``, which every keyword index
change bumps): after a small change it re-reads only the delta rows and the stale list of the changed
conversations; after a rebuild it reloads everything. A load reads the flags and tables in one
transaction, and only from a finished index (the stale flag says ``0``); while an index is being
rebuilt the caller asks DuckDB instead. Filtered queries go to DuckDB too, where the filters are. Scores equal
``keyword_top``'s (and so ``match_bm25``'s).
"""

from __future__ import annotations

import threading

import duckdb
import numpy as np

from backend.memory.keyword_index import STALE_FLAG
from backend.memory.migrations import transaction
from backend.memory.store import MemoryStore
from backend.memory.vector_index import GENERATION_FLAG, catch_up


class KeywordCache:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._generation: int | None = None
        self._terms: dict[str, int] = {}  # stem -> term id
        self._offsets = np.zeros(1, dtype=np.int64)  # term id -> its postings' start (and the next one's)
        self._docs = np.empty(0, dtype=np.int32)  # the postings: document ids, in term order
        self._weights = np.empty(0, dtype=np.float32)  # and their BM25 weights
        self._chunk_ids = np.empty(0, dtype=object)  # document id -> chunk id
        self._conversation_of = np.empty(0, dtype=np.int32)  # document id -> conversation number
        self._conversation_numbers: dict[str, int] = {}
        self._stale = np.empty(0, dtype=bool)  # document id -> its conversation changed since the snapshot
        self._delta: dict[str, dict[str, float]] = {}  # stem -> {chunk id: weight}, of changed conversations
        self._delta_rows: dict[str, list[tuple[str, str]]] = {}  # conversation -> its (stem, chunk id) in the delta
        self.reloads = 0  # full loads, for tests and benchmarks

    def top(self, stems: list[str], k: int) -> list[tuple[str, float]] | None:
        """(chunk id, BM25 score) of the ``k`` best chunks for the query's stems, best first (ties in
        chunk id order); None while the index is being rebuilt."""
        with self._lock:
            if self.store.get_flag(STALE_FLAG) != "0":
                return None
            if int(self.store.get_flag(GENERATION_FLAG) or 0) != self._generation and not self._refresh():
                return None
            found = [self._terms[stem] for stem in stems if stem in self._terms]
            scored: list[tuple[str, float]] = []
            if found and len(self._chunk_ids):
                docs = np.concatenate([self._docs[self._offsets[t]:self._offsets[t + 1]] for t in found])
                weights = np.concatenate([self._weights[self._offsets[t]:self._offsets[t + 1]] for t in found])
                scores = np.bincount(docs, weights=weights.astype(np.float64), minlength=len(self._chunk_ids))
                scores[self._stale] = 0.0
                matched = np.flatnonzero(scores > 0)  # BM25 weights are positive: zero means no term matched
                if len(matched) > k:
                    threshold = np.partition(scores[matched], len(matched) - k)[len(matched) - k]
                    matched = matched[scores[matched] >= threshold]  # every tie at the edge, sorted below
                scored = [(self._chunk_ids[doc], float(scores[doc])) for doc in matched]
            delta: dict[str, float] = {}
            for stem in stems:
                for chunk_id, weight in self._delta.get(stem, {}).items():
                    delta[chunk_id] = delta.get(chunk_id, 0.0) + weight
            scored += delta.items()
            scored.sort(key=lambda item: (-item[1], item[0]))
            return scored[:k]

    def _refresh(self) -> bool:
        """Catch up with the database; False if its index is being rebuilt."""
        with transaction(self.store.cursor()) as db:  # the flags and every table read from one snapshot
            flags = dict(db.execute("SELECT name, value FROM store_flags WHERE name IN (?, ?)",
                                    [GENERATION_FLAG, STALE_FLAG]).fetchall())
            if flags.get(STALE_FLAG) != "0":
                return False
            generation = int(flags.get(GENERATION_FLAG) or 0)
            if generation != self._generation:
                catch_up(db, self._generation, generation, self._load, self._reload_delta)
                self._generation = generation
        return True

    def _load(self, db: duckdb.DuckDBPyConnection) -> None:
        self.reloads += 1
        self._terms = dict(db.execute("SELECT term, termid FROM fts_main_chunks.dict").fetchall())
        postings = db.execute("SELECT termid, docid, weight FROM keyword_postings ORDER BY termid, docid").arrow().read_all()
        terms = postings.column("termid").to_numpy()
        self._docs = postings.column("docid").to_numpy().astype(np.int32)
        self._weights = postings.column("weight").to_numpy().astype(np.float32)
        self._offsets = np.searchsorted(terms, np.arange(max(self._terms.values(), default=-1) + 2)).astype(np.int64)
        documents = db.execute("""SELECT docid, any_value(chunk_id) AS chunk_id, any_value(conversation_id) AS conversation_id
                                  FROM keyword_postings GROUP BY docid""").arrow().read_all()
        docids = documents.column("docid").to_numpy()
        size = int(docids.max()) + 1 if len(docids) else 0
        self._chunk_ids = np.empty(size, dtype=object)
        self._conversation_of = np.full(size, -1, dtype=np.int32)
        conversations = documents.column("conversation_id").to_pylist()
        self._conversation_numbers = {name: number for number, name in enumerate(dict.fromkeys(conversations))}
        self._chunk_ids[docids] = documents.column("chunk_id").to_pylist()
        self._conversation_of[docids] = [self._conversation_numbers[name] for name in conversations]
        self._delta, self._delta_rows = {}, {}
        self._reload_delta(db, None)

    def _reload_delta(self, db: duckdb.DuckDBPyConnection, conversations: list[str] | None) -> None:
        """Re-read the delta rows of ``conversations`` (None: all) and the stale list."""
        for conversation in conversations or []:
            for stem, chunk_id in self._delta_rows.pop(conversation, []):
                self._delta[stem].pop(chunk_id, None)
        where = "TRUE" if conversations is None else "conversation_id IN (SELECT unnest(?::VARCHAR[]))"
        for stem, chunk_id, conversation, weight in db.execute(
                f"SELECT term, chunk_id, conversation_id, weight FROM keyword_delta WHERE {where}",
                [] if conversations is None else [conversations]).fetchall():
            self._delta.setdefault(stem, {})[chunk_id] = float(weight)
            self._delta_rows.setdefault(conversation, []).append((stem, chunk_id))
        stale = [self._conversation_numbers[row[0]] for row in db.execute("SELECT conversation_id FROM keyword_stale").fetchall()
                 if row[0] in self._conversation_numbers]
        self._stale = np.isin(self._conversation_of, stale)


def cache_for(store: MemoryStore) -> KeywordCache:
    """The store's one keyword cache, shared by every search and chat turn in the process."""
    return store.companion(KeywordCache)
