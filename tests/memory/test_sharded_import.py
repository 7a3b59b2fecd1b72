"""Today's sharded ChatGPT export into a real DuckDB file with the real embedder, in every layout."""

from backend.memory.ingest import import_path
from tests.export_factory import simple_conversation, write_chatgpt_export, write_sharded_chatgpt_export


def conversations():
    return [simple_conversation(f"Trip {i}", f"What should I pack for Lisbon day {i}?", f"For day {i}: walking shoes and a rain jacket.",
                                f"conv-{i}", create_time=1_760_000_000.0 + i * 86_400) for i in range(7)]


def test_sharded_zip_imports_and_no_other_layout_adds_anything(store, embedder, tmp_path):
    events = []
    zipped = write_sharded_chatgpt_export(tmp_path / "export.zip", conversations(), per_shard=3)
    first = import_path(store, zipped, embedder, progress=lambda status, done, total: events.append((status, done, total)))
    assert (first.source_kind, first.added, first.conversations) == ("chatgpt", 7, 7)
    reading = [e for e in events if e[0] == "reading and embedding"]
    assert reading[-1][1] == reading[-1][2] > 0  # progress counts the bytes of every shard
    folder = write_sharded_chatgpt_export(tmp_path / "unzipped", conversations(), per_shard=3)
    for again in (folder, folder / "conversations-001.json", write_chatgpt_export(tmp_path / "old.zip", conversations())):
        stats = import_path(store, again, embedder)
        assert (stats.added, stats.updated, stats.unchanged) == (0, 0, stats.conversations), again
    db = store.cursor()
    assert db.execute("SELECT count(*) FROM conversations").fetchone()[0] == 7
    texts = {r[0] for r in db.execute("SELECT text FROM messages").fetchall()}
    assert "For day 4: walking shoes and a rain jacket." in texts and not any("PNG" in t or "someone@example" in t for t in texts)
