"""Memory search: exact cosine (default), HNSW when large, BM25 keywords, and hybrid (RRF).

Unfiltered semantic queries go to the store's cached :class:`VectorIndex` (exact NumPy product, or
HNSW past ``HNSW_MIN_VECTORS``); filtered ones scan in DuckDB with ``array_cosine_distance``, where
the filters are. Hybrid search (the default, and what chat retrieves with) fuses several rankings with
weighted reciprocal rank fusion, which needs no score calibration: the query's meaning and its words;
when the query names a time (``time_hints``), the same two restricted to that window, and for a window
relative to an event ("the week before my trip") the event's own best match, whose date places the
window; then, over the fused candidates, the speaker (what the person said, for questions about
"I"/"my") and, for "now" questions, the newest first. Weights: ``search_settings.FUSION_WEIGHTS``.
"""

from __future__ import annotations

import functools
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

import numpy as np

from backend.errors import OrchMindError, ValidationError
from backend.memory import search_settings
from backend.memory.embedding_space import current_space
from backend.memory.embeddings import Embedder
from backend.memory.keyword_cache import cache_for
from backend.memory.keyword_index import ensure_keyword_index, keyword_top, porter_stemmer, query_stems
from backend.memory.store import MemoryStore
from backend.memory.time_hints import TimeHint, understand_time
from backend.memory.vector_index import index_for

SearchMode = Literal["hybrid", "semantic", "keyword"]
RRF_K = search_settings.RRF_K
MAX_RESULTS = 200  # the one limit on k, for the CLI, the bridge and the chat
_KEYWORD_WORKER = ThreadPoolExecutor(max_workers=2, thread_name_prefix="keyword-search")
SNIPPET_CHARS = search_settings.SNIPPET_CHARS
_FIRST_PERSON = re.compile(r"\b(i|me|my|mine|myself|we|our|us|eu|meu|minha|meus|minhas|mim|comigo|nós|nosso|nossa)\b"
                           r"|\bi'(?:m|ve|d|ll)\b", re.I)
_SENTENCE = re.compile(r"[^.!?…\n]+[.!?…]*")
_WORD = re.compile(r"\w{3,}")
_QUESTION_WORDS = frozenset(
    "what which where when who whom whose why how does did have has was were the and for are you your about that this with from "
    "into over years called name now currently still these days nowadays ever "
    "qual quais que onde quando quem como para com uma uns umas dos das nos nas ela ele isso esta este está foi era sou "
    "estou tenho agora atualmente ainda hoje".split())


@functools.lru_cache(maxsize=65_536)
def _stem(word: str) -> str:
    return porter_stemmer().stemWord(word)


def _stems(text: str) -> set[str]:
    return {_stem(word) for word in _WORD.findall(text.lower()) if word not in _QUESTION_WORDS}


def _tiers(query: str, candidates: list[tuple[str, float]], details: dict[str, tuple[str, datetime | None, str]]
           ) -> dict[str, int]:
    """0: the person speaks of themselves about what is asked (a sentence of theirs with "I/my/we" and
    one of the question's words); 1: anything else they said; 2: what others (the assistant) said."""
    words = _stems(query)

    def tier(chunk_id: str) -> int:
        role, _, text = details.get(chunk_id, ("", None, ""))
        if role != "user":
            return 2
        for sentence in _SENTENCE.findall(text):
            if _FIRST_PERSON.search(sentence) and words & _stems(sentence):
                return 0
        return 1

    return {chunk_id: tier(chunk_id) for chunk_id, _ in candidates}


def self_statements(query: str, candidates: list[tuple[str, float]], details: dict[str, tuple[str, datetime | None, str]]
                    ) -> list[tuple[str, float]]:
    """For a question about the person ("my dog", "did I"): what they said of themselves about it first,
    then the rest of what they said, each in fused order. Others' dogs and trips come after."""
    tiers = _tiers(query, candidates, details)
    return [c for c in sorted(candidates, key=lambda c: tiers[c[0]]) if tiers[c[0]] < 2]


def own_statements(query: str, candidates: list[tuple[str, float]], details: dict[str, tuple[str, datetime | None, str]]
                   ) -> list[tuple[str, float]]:
    """Only what the person said of themselves about it, in fused order."""
    tiers = _tiers(query, candidates, details)
    return [c for c in candidates if tiers[c[0]] == 0]


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

    def epoch_window(self) -> tuple[float, float]:
        """The date filters as [start, end) in POSIX seconds of naive UTC (as DuckDB's ``epoch``)."""
        def seconds(moment: datetime | None, default: float) -> float:
            if moment is None:
                return default
            return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
        return seconds(self.date_from, -np.inf), np.nextafter(seconds(self.date_to, np.inf), np.inf)

    def within(self, start: datetime, end: datetime) -> SearchFilters:
        """These filters narrowed to [start, end)."""
        date_from = max(start, self.date_from) if self.date_from else start
        date_to = min(end - timedelta(microseconds=1), self.date_to) if self.date_to else end - timedelta(microseconds=1)
        return SearchFilters(self.source_ids, self.roles, date_from, date_to)

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
        self._embedded: dict[str, np.ndarray] = {}  # this search's texts, embedded once however many rankings use them

    def search(self, query: str, k: int = 10, mode: SearchMode = "hybrid", filters: SearchFilters | None = None) -> list[SearchHit]:
        query = query.strip()
        if not query:
            raise BadSearch("Type something to search for.")
        if not 1 <= k <= MAX_RESULTS:
            raise BadSearch(f"k must be between 1 and {MAX_RESULTS}.")
        filters = filters or SearchFilters()
        self._embedded = {}
        if mode == "semantic":
            return self._finish(self.semantic_ids(query, k, filters), "semantic", query)
        if mode == "keyword":
            return self._finish(self.keyword_ids(query, k, filters), "keyword", query)
        if mode != "hybrid":
            raise BadSearch(f"Unknown search mode {mode!r}.")
        hint = understand_time(query) if search_settings.TIME_HINTS else TimeHint(rest=query)
        pool = max(k * 4, search_settings.CANDIDATES)
        if hint.anchor:  # both texts in one pass of the model
            texts = [hint.rest, hint.anchor]
            self._embedded = dict(zip(texts, self.embedder.embed(texts), strict=True))
        rankings = self._meaning_and_words(hint.rest, pool, filters)
        window = hint.window
        if hint.anchor:  # the event's own best match places the window, and is evidence itself
            around = self._fuse(self._meaning_and_words(hint.anchor, pool, filters))[:pool]
            dated = self._details([chunk_id for chunk_id, _ in around])
            # "my trip": the person speaking of their own trip, not someone else's, when they ever did
            own = own_statements(hint.anchor, around, dated) if _FIRST_PERSON.search(hint.anchor) else []
            anchor = (own or around)[:3]
            rankings["anchor"] = anchor
            anchor_date = dated[anchor[0][0]][1] if anchor and anchor[0][0] in dated else None
            window = hint.around(anchor_date) if anchor_date else None
        if window:
            inside = self._meaning_and_words(hint.rest, pool, filters.within(*window))
            rankings |= {"window_semantic": inside["semantic"], "window_keyword": inside["keyword"]}
        self._second_stage(rankings, hint.rest, pool, latest=hint.latest, window=window, state_until=hint.window[1] if hint.window else None)
        fused = self._fuse(rankings)
        hits = self._finish(fused[:k], "hybrid", query)
        ranks = {name: {chunk_id: rank for rank, (chunk_id, _) in enumerate(ranking, start=1)} for name, ranking in rankings.items()}
        for hit in hits:
            hit.ranks = {name: found[hit.chunk_id] for name, found in ranks.items() if hit.chunk_id in found}
        return hits

    def _second_stage(self, rankings: dict[str, list[tuple[str, float]]], text: str, depth: int, *, latest: bool,
                      window: tuple[datetime, datetime] | None = None, state_until: datetime | None = None) -> None:
        """Rankings over the fused candidates: the person's own statements (for a question about them);
        the newest first (for a "now" question); for a question about a time, the candidates said in
        that window, in fused order, and what was said up to its end, latest first (a state, such as a
        job, is said when it starts, before the month asked about). Added to ``rankings`` in place."""
        about_self = bool(_FIRST_PERSON.search(text))
        if not (about_self or latest or window):
            return
        candidates = self._fuse(rankings)[:depth]
        details = self._details([chunk_id for chunk_id, _ in candidates])

        def said(candidate: tuple[str, float]) -> datetime:
            return details.get(candidate[0], ("", None, ""))[1] or datetime.min

        if about_self:
            rankings["speaker"] = self_statements(text, candidates, details)
        if latest:
            rankings["recency"] = sorted(candidates, key=said, reverse=True)
        if window:
            rankings["in_window"] = [c for c in candidates if window[0] <= said(c) < window[1]]
        if state_until:
            rankings["as_of"] = sorted((c for c in candidates if datetime.min < said(c) < state_until), key=said, reverse=True)

    def _meaning_and_words(self, text: str, depth: int, filters: SearchFilters) -> dict[str, list[tuple[str, float]]]:
        # The keyword query (DuckDB) runs while the query is embedded (torch): both release the GIL.
        keyword_future = _KEYWORD_WORKER.submit(self.keyword_ids, text, depth, filters)
        semantic = self.semantic_ids(text, depth, filters)
        return {"semantic": semantic, "keyword": keyword_future.result()}

    @staticmethod
    def _fuse(rankings: dict[str, list[tuple[str, float]]]) -> list[tuple[str, float]]:
        """Weighted reciprocal rank fusion, best first (ties in chunk id order)."""
        fused: dict[str, float] = {}
        for name, ranking in rankings.items():
            weight = search_settings.FUSION_WEIGHTS.get(name, 1.0)
            for rank, (chunk_id, _score) in enumerate(ranking, start=1):
                fused[chunk_id] = fused.get(chunk_id, 0.0) + weight / (RRF_K + rank)
        return sorted(fused.items(), key=lambda item: (-item[1], item[0]))

    def _details(self, ids: list[str]) -> dict[str, tuple[str, datetime | None, str]]:
        """Each chunk's speaker, date and text."""
        if not ids:
            return {}
        rows = self.store.cursor().execute(f"SELECT id, role, created_at, text FROM chunks WHERE id IN ({_literals(ids)})").fetchall()
        return {row[0]: (row[1], row[2], row[3]) for row in rows}

    def semantic_ids(self, query: str, k: int, filters: SearchFilters) -> list[tuple[str, float]]:
        space = current_space(self.store.cursor())
        if space is None:
            return []
        if space != (self.embedder.name, self.embedder.dimension):
            raise EmbeddingMismatch(
                f"Memory was embedded with {space[0]}; re-import or re-embed to search with {self.embedder.name}.",
            )
        vector = self._embedded.get(query)
        if vector is None:
            vector = self._embedded[query] = self.embedder.embed([query])[0]
        return self.nearest(vector, k, filters)

    def nearest(self, query_vector: np.ndarray, k: int, filters: SearchFilters | None = None) -> list[tuple[str, float]]:
        """(chunk id, cosine similarity) of the ``k`` chunks nearest to an already-embedded query."""
        filters = filters or SearchFilters()
        db = self.store.cursor()
        vector = np.asarray(query_vector, dtype=np.float32)
        if filters.empty:
            return self.index.top_chunks(vector, k) or []
        if not (filters.source_ids or filters.roles):  # a date window alone: the in-memory index can tell
            found = self.index.top_chunks(vector, k, said=filters.epoch_window())
            if found is not None:
                return found
        if not np.isfinite(vector).all():
            raise SearchError("The query's embedding is not a finite vector; the embedding model is damaged.")
        # The vector goes in as a literal, not a parameter: for a list parameter DuckDB tries
        # `import pandas` once per value (384 failed imports a query without pandas, ~25 ms at 100k).
        literal = "[" + ",".join(f"{x:.9g}" for x in vector.tolist()) + f"]::FLOAT[{len(vector)}]"
        where, params = filters.sql()
        rows = db.execute(
            f"""SELECT c.id, 1 - array_cosine_distance(e.vector, {literal}) AS score
                FROM chunks c JOIN embeddings e USING (text_hash) WHERE {where}
                ORDER BY score DESC, c.id LIMIT ?""",
            [*params, k],
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
