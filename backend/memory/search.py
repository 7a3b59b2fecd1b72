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

from backend.errors import OrchMindError
from backend.memory.embedding_space import current_space
from backend.memory.embeddings import Embedder
from backend.memory.keyword_index import ensure_keyword_index, keyword_top
from backend.memory import search_settings
from backend.memory.store import MemoryStore
from backend.memory.vector_index import index_for

SearchMode = Literal["hybrid", "semantic", "keyword"]
RRF_K = search_settings.RRF_K
_KEYWORD_WORKER = ThreadPoolExecutor(max_workers=2, thread_name_prefix="keyword-search")
SNIPPET_CHARS = search_settings.SNIPPET_CHARS


class SearchError(OrchMindError):
    code = "search"


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
            raise SearchError("Type something to search for.", code="invalid_argument")
        if not 1 <= k <= 200:
            raise SearchError("k must be between 1 and 200.", code="invalid_argument")
        filters = filters or SearchFilters()
        if mode == "semantic":
            return self._finish(self.semantic_ids(query, k, filters), "semantic", query)
        if mode == "keyword":
            return self._finish(self.keyword_ids(query, k, filters), "keyword", query)
        if mode != "hybrid":
            raise SearchError(f"Unknown search mode {mode!r}.", code="invalid_argument")
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
            raise SearchError(
                f"Memory was embedded with {space[0]}; re-import or re-embed to search with {self.embedder.name}.",
                code="embedding_mismatch",
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
        return keyword_top(self.store.cursor(), query, k, *filters.sql())

    def _finish(self, ranked: list[tuple[str, float]], mode: str, query: str) -> list[SearchHit]:
        if not ranked:
            return []
        ids = [chunk_id for chunk_id, _ in ranked]
        rows = self.store.cursor().execute(
            """SELECT c.id, v.external_id, v.id, c.source_id, v.title, c.role, c.created_at, c.text, m.content_type, c.message_id
               FROM chunks c JOIN conversations v ON v.id = c.conversation_id LEFT JOIN messages m ON m.id = c.message_id
               WHERE c.id IN (SELECT unnest(?))""",
            [ids],
        ).fetchall()
        by_id = {row[0]: row for row in rows}
        hits = []
        for chunk_id, score in ranked:
            row = by_id.get(chunk_id)
            if row is None:
                continue
            created = row[6].isoformat() if isinstance(row[6], datetime) else None
            hits.append(SearchHit(chunk_id, row[9], row[1], row[2], row[3], row[4], row[5], row[8] or "text", created, round(score, 6),
                                  row[7], make_snippet(row[7], query)))
        return hits

