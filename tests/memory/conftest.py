import pytest

from backend.memory.embeddings import get_embedder
from backend.memory.store import MemoryStore


@pytest.fixture(scope="session")
def embedder():
    return get_embedder()


@pytest.fixture
def store(layout):
    store = MemoryStore(layout.memory_db)
    yield store
    store.close()


def snapshot(store):
    """Everything a failed import must leave untouched."""
    db = store.cursor()
    return {
        table: db.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
        for table in ("sources", "conversations", "messages", "chunks")
    }
