"""An in-memory copy of the chunks' vectors for unfiltered nearest-neighbour queries, one per store.

Below ``HNSW_MIN_VECTORS`` it is a NumPy matrix (exact: one matrix-vector product, far cheaper than
a DuckDB scan per query); above, an HNSW index (``vss``) over a temporary in-memory table (vss's
on-disk persistence is experimental and unsafe after a crash). Rows are chunks (a text shared by two
chunks has one vector but two rows), so a query answers with chunk ids directly, with no lookup in
the chunks table. Every change to vectors or chunks bumps the store's ``vectors_generation`` and
says in ``vector_changes`` which conversations changed (or that anything may have: a NULL); the
index then replaces just those conversations' rows (a chat turn synced to memory touches one), and
reloads everything only after a bulk change. Filtered queries do not come here: they scan in
DuckDB, where the filters are.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

import duckdb
import numpy as np

from backend.memory import search_settings
from backend.memory.store import MemoryStore

GENERATION_FLAG = "vectors_generation"
MAX_LOGGED_CHANGES = 10_000  # past this many logged rows the log restarts (and indexes reload once)
COMPACT_DEAD_SHARE = 0.25  # the NumPy copy drops replaced rows once they are a quarter of it


def bump_generation(store: MemoryStore, conversation_ids: Iterable[str] | None = None) -> None:
    """Record a change to vectors or chunks: of ``conversation_ids``' chunks only, or (None) of anything.
    Called by writers, which hold the store's write lock; the log is written before the generation."""
    db = store.cursor()
    generation = int(store.get_flag(GENERATION_FLAG) or 0) + 1
    ids = None if conversation_ids is None else sorted(set(conversation_ids))
    logged = db.execute("SELECT count(*) FROM vector_changes").fetchone()[0]
    if ids is None or logged + len(ids) > MAX_LOGGED_CHANGES:
        db.execute("DELETE FROM vector_changes")
        db.execute("INSERT INTO vector_changes VALUES (?, NULL)", [generation])
    elif ids:
        db.execute("INSERT INTO vector_changes SELECT ?, unnest(?::VARCHAR[])", [generation, ids])
    store.set_flag(GENERATION_FLAG, str(generation))


def changed_conversations(db: duckdb.DuckDBPyConnection, since: int, until: int) -> set[str] | None:
    """The conversations whose chunks changed in generations (since, until], or None to reload all."""
    rows = db.execute("SELECT conversation_id FROM vector_changes WHERE generation > ? AND generation <= ?", [since, until]).fetchall()
    # Every restart of the log writes a NULL at its generation, so a gap is always seen as a reload.
    if any(row[0] is None for row in rows):
        return None
    return {row[0] for row in rows}


def catch_up(db: duckdb.DuckDBPyConnection, since: int | None, until: int, reload: Callable[[duckdb.DuckDBPyConnection], None],
             update: Callable[[duckdb.DuckDBPyConnection, list[str]], None]) -> None:
    """Bring an in-memory copy made at generation ``since`` (None: never) to ``until``: ``update``
    with the conversations that changed in between, or ``reload`` everything when that is unknown."""
    changed = None if since is None else changed_conversations(db, since, until)
    if changed is None:
        reload(db)
    elif changed:
        update(db, sorted(changed))


class VectorIndex:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._generation: int | None = None
        self._ids = np.empty(0, dtype=object)  # chunk id per row
        self._conversations = np.empty(0, dtype=object)  # its conversation
        self._said = np.empty(0, dtype=np.float64)  # when it was said (POSIX seconds, naive UTC; NaN: unknown)
        self._matrix: np.ndarray | None = None  # rows [0, _size) in use; spare capacity after
        self._alive = np.empty(0, dtype=bool)  # False: replaced since, awaiting compaction
        self._size = 0
        self._rows: dict[str, list[int]] = {}  # conversation -> its rows
        self._hnsw_db: duckdb.DuckDBPyConnection | None = None  # temp tables live in one connection
        self.kind = "empty"
        self.reloads = 0  # full loads, for tests and benchmarks
        # (query vector, generation, rows, scores) of the last query: one search asks several times
        self._scored: tuple[bytes, int | None, int, np.ndarray] | None = None

    ROWS = "SELECT c.id, c.conversation_id, epoch(c.created_at) AS said, e.vector FROM chunks c JOIN embeddings e USING (text_hash)"

    def _refresh(self) -> None:
        generation = int(self.store.get_flag(GENERATION_FLAG) or 0)
        if generation == self._generation:
            return
        catch_up(self.store.cursor(), self._generation, generation, self._load, self._replace)
        self._generation = generation

    def _load(self, db: duckdb.DuckDBPyConnection) -> None:
        self.reloads += 1
        count = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        self._matrix = None
        if count >= search_settings.HNSW_MIN_VECTORS:
            self._hnsw_db = self._hnsw_db or self.store.cursor()
            self._hnsw_db.execute(f"CREATE OR REPLACE TEMP TABLE hnsw_vectors AS {self.ROWS}")
            self._hnsw_db.execute("CREATE INDEX hnsw_idx ON hnsw_vectors USING HNSW (vector) WITH (metric = 'cosine')")
            # vss's default search breadth found 81% of the true top 10 at 100k chunks; 128 finds 96%, no slower.
            self._hnsw_db.execute(f"SET hnsw_ef_search = {search_settings.HNSW_EF_SEARCH}")
            self.kind = "hnsw"
            return
        self._ids = np.empty(0, dtype=object)
        self._conversations = np.empty(0, dtype=object)
        self._said = np.empty(0, dtype=np.float64)
        self._alive = np.empty(0, dtype=bool)
        self._size = 0
        self._rows = {}
        self.kind = "numpy"
        self._append(db.execute(f"{self.ROWS} ORDER BY c.id").arrow())

    def _replace(self, db: duckdb.DuckDBPyConnection, conversations: list[str]) -> None:
        """Drop ``conversations``' rows and add their current chunks."""
        if self.kind == "hnsw":
            assert self._hnsw_db is not None
            self._hnsw_db.execute("DELETE FROM hnsw_vectors WHERE conversation_id IN (SELECT unnest(?::VARCHAR[]))", [conversations])
            self._hnsw_db.execute(f"INSERT INTO hnsw_vectors {self.ROWS} WHERE c.conversation_id IN (SELECT unnest(?::VARCHAR[]))",
                                  [conversations])
            return
        for conversation in conversations:
            for row in self._rows.pop(conversation, []):
                self._alive[row] = False
        self._append(db.execute(f"{self.ROWS} WHERE c.conversation_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY c.id",
                                [conversations]).arrow())
        if self._size and (self._size - int(self._alive[:self._size].sum())) > COMPACT_DEAD_SHARE * self._size:
            self._compact()

    def _append(self, table: object) -> None:
        table = table.read_all() if hasattr(table, "read_all") else table
        added = table.num_rows
        if not added:
            if self._matrix is None:
                self._matrix = np.empty((0, 0), dtype=np.float32)
            return
        vectors = table.column("vector").combine_chunks()
        dimension = vectors.type.list_size
        values = vectors.values.to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, dimension)
        needed = self._size + added
        if self._matrix is None or self._matrix.shape[1] != dimension or len(self._matrix) < needed:
            # Spare rows, so that the chat turns after a full load append without copying the matrix
            # (1.5 GB at 1M chunks); past them it grows by half.
            spare = max(1024, needed // 100)
            capacity = needed + spare if self._matrix is None or not self._size else max(needed + spare, int(len(self._matrix) * 1.5))
            grown = np.empty((capacity, dimension), dtype=np.float32)
            if self._matrix is not None and self._size:
                grown[:self._size] = self._matrix[:self._size]
            self._matrix = grown
            self._ids = np.resize(self._ids, capacity)
            self._conversations = np.resize(self._conversations, capacity)
            self._said = np.resize(self._said, capacity)
            self._alive = np.resize(self._alive, capacity)
        self._matrix[self._size:needed] = values
        self._ids[self._size:needed] = table.column("id").to_pylist()
        conversations = table.column("conversation_id").to_pylist()
        self._conversations[self._size:needed] = conversations
        self._said[self._size:needed] = table.column("said").to_numpy(zero_copy_only=False).astype(np.float64)
        self._alive[self._size:needed] = True
        for offset, conversation in enumerate(conversations):
            self._rows.setdefault(conversation, []).append(self._size + offset)
        self._size = needed

    def _compact(self) -> None:
        keep = np.flatnonzero(self._alive[:self._size])
        assert self._matrix is not None
        self._matrix = self._matrix[keep]
        self._ids, self._conversations, self._said = self._ids[keep], self._conversations[keep], self._said[keep]
        self._alive = np.ones(len(keep), dtype=bool)
        self._size = len(keep)
        self._rows = {}
        for row, conversation in enumerate(self._conversations):
            self._rows.setdefault(conversation, []).append(row)

    def top_chunks(self, vector: np.ndarray, k: int, said: tuple[float, float] | None = None) -> list[tuple[str, float]] | None:
        """(chunk id, cosine similarity) of the ``k`` nearest chunks, best first; ``said``: only those said
        in [start, end) (POSIX seconds), or None when this index cannot tell (HNSW: ask DuckDB)."""
        with self._lock:
            self._refresh()
            if self.kind == "hnsw" and said is not None:
                return None
            if self.kind == "hnsw":
                assert self._hnsw_db is not None
                # This exact shape (ORDER BY the distance alias, LIMIT) is what vss rewrites into an index scan.
                rows = self._hnsw_db.execute(
                    f"""SELECT id, array_cosine_distance(vector, ?::FLOAT[{len(vector)}]) AS d
                        FROM hnsw_vectors ORDER BY d LIMIT ?""", [vector.tolist(), k]).fetchall()
                return [(row[0], 1.0 - float(row[1])) for row in rows]
            if not self._size or self._matrix is None:
                return []
            key = (vector.astype(np.float32).tobytes(), self._generation, self._size)
            if self._scored is not None and self._scored[:3] == key:
                scores = self._scored[3].copy()
            else:
                scores = self._matrix[:self._size] @ vector.astype(np.float32)  # vectors are L2-normalised: dot = cosine
                self._scored = (*key, scores.copy())
            alive = self._alive[:self._size]
            if said is not None:
                dates = self._said[:self._size]
                alive = alive & (dates >= said[0]) & (dates < said[1])  # NaN (unknown) compares False
            if not alive.all():
                scores[~alive] = -np.inf
            k = min(k, int(alive.sum()))
            if k <= 0:
                return []
            top = np.argpartition(-scores, k - 1)[:k]
            top = top[np.lexsort((self._ids[top], -scores[top]))]  # best first; ties in id order, as the DuckDB scan orders them
            return [(str(self._ids[i]), float(scores[i])) for i in top]


def index_for(store: MemoryStore) -> VectorIndex:
    """The store's one vector index, shared by every search and chat turn in the process."""
    return store.companion(VectorIndex)
