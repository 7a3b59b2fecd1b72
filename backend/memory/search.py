"""Memory search: exact cosine (default), HNSW when large, BM25 keywords, and hybrid (RRF).

Unfiltered semantic queries go to the store's cached :class:`VectorIndex` (exact NumPy product, or
HNSW past ``HNSW_MIN_VECTORS``); filtered ones scan in DuckDB with ``array_cosine_distance``, where
the filters are. Hybrid search fuses
the semantic and keyword rankings with reciprocal rank fusion, which needs no score calibration.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Literal

import numpy as np

from backend.errors import OrchMindError, ValidationError
from backend.memory import search_settings
from backend.memory.embedding_space import current_space
from backend.memory.embeddings import Embedder
from backend.memory.keyword_cache import cache_for
from backend.memory.keyword_index import ensure_keyword_index, keyword_top, query_stems
from backend.memory.store import MemoryStore
from backend.memory.vector_index import index_for

SearchMode = Literal["hybrid", "semantic", "keyword"]
RRF_K = search_settings.RRF_K
MAX_RESULTS = 200  # the one limit on k, for the CLI, the bridge and the chat
_KEYWORD_WORKER = ThreadPoolExecutor(max_workers=2, thread_name_prefix="keyword-search")
SNIPPET_CHARS = search_settings.SNIPPET_CHARS


class SearchError(OrchMindError):
    code = "search"


class BadSearch(ValidationError, SearchError):
    pass


class EmbeddingMismatch(SearchError):
    """Memory holds another embedding model's vectors: re-embed before searching with this one."""

    code = "embedding_mismatch"


@dataclass(frozen=True)
class SearchFilters:
    source_ids: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    date_from: datetime | None = None
    date_to: datetime | None = None

    @property
    def empty(self) -> bool:
        return not (self.source_ids or self.roles or self.date_from or self.date_to)

    def sql(self) -> tuple[str, list[object]]:
        clauses, params = [], []
        if self.source_ids:
            clauses.append(f"c.source_id IN ({', '.join('?' * len(self.source_ids))})")
            params += list(self.source_ids)
        if self.roles:
            clauses.append(f"c.role IN ({', '.join('?' * len(self.roles))})")
            params += list(self.roles)
        if self.date_from:
            clauses.append("c.created_at >= ?")
            params.append(self.date_from)
        if self.date_to:
            clauses.append("c.created_at <= ?")
            params.append(self.date_to)
        return (" AND ".join(clauses) or "TRUE"), params


@dataclass
class SearchHit:
    chunk_id: str
    message_id: str
    conversation_id: str  # the export's own id
    conversation_key: str  # our internal id
    source_id: str
    title: str
    role: str
    kind: str  # the message kind (text, code, canvas, artifact, tether_quote, attachment, note…)
    created_at: str | None
    score: float
    text: str
    snippet: str
    ranks: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def make_snippet(text: str, query: str, width: int = SNIPPET_CHARS) -> str:
    """A window of ``text`` around the first query word it contains (or its start)."""
    words = [w for w in re.findall(r"\w{3,}", query.lower())]
    lower = text.lower()
    positions = [lower.find(w) for w in words if lower.find(w) >= 0]
    start = max(0, min(positions) - width // 3) if positions else 0
    snippet = " ".join(text[start:start + width].split())  # one line: paragraphs and code collapse
    return ("…" if start > 0 else "") + snippet + ("…" if start + width < len(text) else "")


class MemorySearch:
    def __init__(self, store: MemoryStore, embedder: Embedder) -> None:
        self.store = store
        self.embedder = embedder
        self.index = index_for(store)

    def search(self, query: str, k: int = 10, mode: SearchMode = "hybrid", filters: SearchFilters | None = None) -> list[SearchHit]:
        query = query.strip()
        if not query:
            raise BadSearch("Type something to search for.")
        if not 1 <= k <= MAX_RESULTS:
            raise BadSearch(f"k must be between 1 and {MAX_RESULTS}.")
        filters = filters or SearchFilters()
        if mode == "semantic":
            return self._finish(self.semantic_ids(query, k, filters), "semantic", query)
        if mode == "keyword":
            return self._finish(self.keyword_ids(query, k, filters), "keyword", query)
        if mode != "hybrid":
            raise BadSearch(f"Unknown search mode {mode!r}.")
        pool = max(k * 4, 20)
        # The keyword query (DuckDB) runs while the query is embedded (torch): both release the GIL.
        keyword_future = _KEYWORD_WORKER.submit(self.keyword_ids, query, pool, filters)
        semantic = self.semantic_ids(query, pool, filters)
        keyword = keyword_future.result()
        fused: dict[str, float] = {}
        ranks: dict[str, dict[str, int]] = {}
        for name, ranking in (("semantic", semantic), ("keyword", keyword)):
            for rank, (chunk_id, _score) in enumerate(ranking, start=1):
                fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank)
                ranks.setdefault(chunk_id, {})[name] = rank
        best = sorted(fused.items(), key=lambda item: item[1], reverse=True)[:k]
        hits = self._finish(best, "hybrid", query)
        for hit in hits:
            hit.ranks = ranks[hit.chunk_id]
        return hits

    def semantic_ids(self, query: str, k: int, filters: SearchFilters) -> list[tuple[str, float]]:
        space = current_space(self.store.cursor())
        if space is None:
            return []
        if space != (self.embedder.name, self.embedder.dimension):
            raise EmbeddingMismatch(
                f"Memory was embedded with {space[0]}; re-import or re-embed to search with {self.embedder.name}.",
            )
        return self.nearest(self.embedder.embed([query])[0], k, filters)

    def nearest(self, query_vector: np.ndarray, k: int, filters: SearchFilters | None = None) -> list[tuple[str, float]]:
        """(chunk id, cosine similarity) of the ``k`` chunks nearest to an already-embedded query."""
        filters = filters or SearchFilters()
        db = self.store.cursor()
        vector = np.asarray(query_vector, dtype=np.float32).tolist()
        dimension = len(vector)
        if filters.empty:
            return self.index.top_chunks(np.asarray(query_vector, dtype=np.float32), k)
        where, params = filters.sql()
        rows = db.execute(
            f"""SELECT c.id, 1 - array_cosine_distance(e.vector, ?::FLOAT[{dimension}]) AS score
                FROM chunks c JOIN embeddings e USING (text_hash) WHERE {where}
                ORDER BY score DESC, c.id LIMIT ?""",
            [vector, *params, k],
        ).fetchall()
        return [(row[0], float(row[1])) for row in rows]

    def keyword_ids(self, query: str, k: int, filters: SearchFilters) -> list[tuple[str, float]]:
        """BM25 (k1 1.2, b 0.75, as DuckDB's ``match_bm25``) from the postings of the query's terms only."""
        ensure_keyword_index(self.store)
        db = self.store.cursor()
        if filters.empty:  # from the in-memory postings, unless the index is being rebuilt right now
            found = cache_for(self.store).top(query_stems(db, query), k)
            if found is not None:
                return found
        return keyword_top(db, query, k, *filters.sql())

    def _finish(self, ranked: list[tuple[str, float]], mode: str, query: str) -> list[SearchHit]:
        if not ranked:
            return []
        db = self.store.cursor()
        ids = [chunk_id for chunk_id, _ in ranked]
        # Three small reads by key (one joined query scanned every chunk). The keys are written into
        # the SQL as quoted literals: DuckDB plans a literal IN list better than a list of parameters
        # (2 ms against 4 at 100k chunks).
        chunks = {row[0]: row for row in db.execute(
            f"SELECT id, conversation_id, message_id, source_id, role, created_at, text FROM chunks WHERE id IN ({_literals(ids)})"
        ).fetchall()}
        if not chunks:
            return []
        conversation_ids = sorted({row[1] for row in chunks.values()})
        message_ids = sorted({row[2] for row in chunks.values()})
        conversations, kinds = {}, {}
        for table, key, first, second in db.execute(
                f"""SELECT 'c', id, external_id, title FROM conversations WHERE id IN ({_literals(conversation_ids)})
                    UNION ALL SELECT 'm', id, content_type, NULL FROM messages WHERE id IN ({_literals(message_ids)})""").fetchall():
            if table == "c":
                conversations[key] = (key, first, second)
            else:
                kinds[key] = first
        hits = []
        for chunk_id, score in ranked:
            row = chunks.get(chunk_id)
            conversation = conversations.get(row[1]) if row else None
            if row is None or conversation is None:
                continue
            _, conversation_key, message_id, source_id, role, created_at, text = row
            created = created_at.isoformat() if isinstance(created_at, datetime) else None
            hits.append(SearchHit(chunk_id, message_id, conversation[1], conversation_key, source_id, conversation[2], role,
                                  kinds.get(message_id) or "text", created, round(score, 6), text, make_snippet(text, query)))
        return hits


def _literals(values: list[str]) -> str:
    """SQL string literals for ids read from the store (quotes doubled; a NUL, which would end the
    statement text early in C, is refused)."""
    if any("\x00" in value for value in values):
        raise SearchError("A stored id holds a NUL character; the memory database is damaged.")
    return ", ".join("'" + value.replace("'", "''") + "'" for value in values)
