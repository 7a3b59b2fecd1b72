from backend.memory.migrations import MIGRATIONS
from backend.memory.store import MemoryStore


def columns(store, table):
    return [(r[0], r[1]) for r in store.cursor().execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position", [table]).fetchall()]


def test_blank_database_gets_exact_schema(layout):
    store = MemoryStore(layout.memory_db)
    applied = [r[0] for r in store.cursor().execute("SELECT name FROM migrations ORDER BY name").fetchall()]
    assert applied == [m.__name__ for m in MIGRATIONS]
    assert columns(store, "chunks") == [
        ("id", "VARCHAR"), ("conversation_id", "VARCHAR"), ("message_id", "VARCHAR"), ("source_id", "VARCHAR"),
        ("position", "INTEGER"), ("role", "VARCHAR"), ("created_at", "TIMESTAMP"), ("text", "VARCHAR"), ("text_hash", "VARCHAR")]
    assert ("content_hash", "VARCHAR") in columns(store, "conversations")
    store.close()


def test_reopening_applies_nothing_twice(layout):
    MemoryStore(layout.memory_db).close()
    store = MemoryStore(layout.memory_db)
    assert store.cursor().execute("SELECT count(*) FROM migrations").fetchone()[0] == len(MIGRATIONS)
    store.close()
