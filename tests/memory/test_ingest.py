"""Import into a real DuckDB file with the real embedding model: idempotence, updates, bad input."""

import json
import zipfile
from pathlib import Path

import pytest

from backend.importers.model import ImportFormatError
from backend.memory.ingest import delete_source, import_path
from backend.memory.stats import memory_stats
from tests.export_factory import (
    claude_conversation,
    every_content_type_conversation,
    simple_conversation,
    write_chatgpt_export,
    write_claude_export,
)
from tests.memory.conftest import snapshot


def export(tmp_path, n=5, name="export.zip", extra=()):
    conversations = [simple_conversation(f"Topic {i}", f"Question {i} about bread baking", f"Answer {i}: proof the dough {i} hours", f"id-{i}") for i in range(n)]
    return write_chatgpt_export(tmp_path / name, [*conversations, *extra])


def test_first_import_then_reimport_is_skipped(store, embedder, tmp_path):
    path = export(tmp_path, extra=[every_content_type_conversation()])
    first = import_path(store, path, embedder)
    assert (first.added, first.unchanged) == (6, 0) and first.vectors_embedded == first.chunks > 0
    again = import_path(store, path, embedder)
    assert (again.added, again.updated, again.unchanged, again.vectors_embedded) == (0, 0, 6, 0)
    stats = memory_stats(store)
    assert stats["conversations"] == 6 and stats["chunks"] == first.chunks
    searchable_texts = [r[0] for r in store.cursor().execute("SELECT text FROM chunks").fetchall()]
    assert not any("SECRET-REASONING" in t or "TOOL-NOISE" in t or "BROWSING-RESIDUE" in t for t in searchable_texts)


def test_changed_conversation_is_updated_not_duplicated(store, embedder, tmp_path):
    import_path(store, export(tmp_path), embedder)
    changed = simple_conversation("Topic 2", "Question 2 about bread baking", "Answer 2 revised: use rye flour", "id-2")
    others = [simple_conversation(f"Topic {i}", f"Question {i} about bread baking", f"Answer {i}: proof the dough {i} hours", f"id-{i}") for i in (0, 1, 3, 4)]
    stats = import_path(store, write_chatgpt_export(tmp_path / "v2.zip", [*others, changed]), embedder)
    assert (stats.added, stats.updated, stats.unchanged) == (0, 1, 4)
    db = store.cursor()
    assert db.execute("SELECT count(*) FROM conversations").fetchone()[0] == 5
    texts = [r[0] for r in db.execute("SELECT text FROM messages WHERE conversation_id = (SELECT id FROM conversations WHERE external_id = 'id-2')").fetchall()]
    assert "Answer 2 revised: use rye flour" in texts and not any("proof the dough 2" in t for t in texts)
    assert db.execute("SELECT count(*) FROM embeddings").fetchone()[0] == db.execute("SELECT count(DISTINCT text_hash) FROM chunks").fetchone()[0]


def test_overwrite_mode_replaces_the_source(store, embedder, tmp_path):
    import_path(store, export(tmp_path, n=5), embedder)
    stats = import_path(store, export(tmp_path, n=2, name="small.zip"), embedder, mode="overwrite")
    assert stats.added == 2 and memory_stats(store)["conversations"] == 2


def test_sources_are_kept_apart_and_deletable(store, embedder, tmp_path):
    import_path(store, export(tmp_path), embedder)
    claude_path = write_claude_export(tmp_path / "conversations.json", [claude_conversation("Claude chat", [("human", "hi"), ("assistant", "hello")], "c1")])
    import_path(store, claude_path, embedder)
    assert {s["id"] for s in memory_stats(store)["sources"]} == {"chatgpt", "claude"}
    assert delete_source(store, "chatgpt") == 5
    stats = memory_stats(store)
    assert stats["conversations"] == 1 and [s["id"] for s in stats["sources"]] == ["claude"]
    assert store.cursor().execute("SELECT count(*) FROM embeddings").fetchone()[0] == stats["chunks"], "deleted text leaves no vectors"


def _bad_inputs(tmp_path: Path):
    (tmp_path / "not-json.json").write_text("this is not json at all")
    good = json.dumps([simple_conversation(f"T{i}", "q", "a", f"bad-{i}").to_dict() for i in range(40)])
    (tmp_path / "truncated.json").write_text(good[: len(good) // 2])
    (tmp_path / "wrong-shape.json").write_text(json.dumps([{"mapping": {}}, {"title": "no mapping", "mapping": None, "chat": 1}]))
    with zipfile.ZipFile(tmp_path / "no-conversations.zip", "w") as z:
        z.writestr("chat.html", "<html>")
    with zipfile.ZipFile(tmp_path / "zip-slip.zip", "w") as z:
        z.writestr("conversations.json", good)
        z.writestr("../../evil.sh", "rm -rf /")
    with zipfile.ZipFile(tmp_path / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("conversations.json", b"[" + b" " * 50_000_000 + b"]")
    return {
        "not-json.json": "not a ChatGPT export",
        "truncated.json": "truncated",
        "wrong-shape.json": "no 'mapping'",
        "no-conversations.zip": "has no conversations.json",
        "zip-slip.zip": "unsafe entry name",
        "bomb.zip": "zip bomb",
    }


def test_bad_input_gives_clear_errors_and_changes_nothing(store, embedder, tmp_path):
    import_path(store, export(tmp_path), embedder)
    before = snapshot(store)
    for name, fragment in _bad_inputs(tmp_path).items():
        with pytest.raises(ImportFormatError) as info:
            import_path(store, tmp_path / name, embedder)
        assert fragment in info.value.message, (name, info.value.message)
        assert snapshot(store) == before, f"{name} changed the store"
    states = [r[0] for r in store.cursor().execute("SELECT state FROM imports ORDER BY started_at").fetchall()]
    assert states[0] == "completed" and states.count("failed") == 2, "parse failures are recorded; detection failures start no import"


def test_switching_the_embedding_model_re_embeds_instead_of_mixing(store, embedder, tmp_path):
    from backend.memory.embedding_space import current_space
    from backend.memory.embeddings import Embedder, default_embedding_model_path

    import_path(store, export(tmp_path), embedder)
    chunks = store.cursor().execute("SELECT count(DISTINCT text_hash) FROM chunks").fetchone()[0]
    other = Embedder(str(default_embedding_model_path()))  # same weights, another name: a different space
    stats = import_path(store, export(tmp_path), other)
    assert stats.unchanged == 5
    assert current_space(store.cursor()) == (other.name, 384)
    assert store.cursor().execute("SELECT count(*) FROM embeddings").fetchone()[0] == chunks
    from backend.memory.search import MemorySearch, SearchError

    with pytest.raises(SearchError) as mismatch:
        MemorySearch(store, embedder).search("bread")
    assert mismatch.value.code == "embedding_mismatch"
    assert MemorySearch(store, other).search("bread dough", 1)


def test_a_repeated_conversation_id_is_imported_once_and_counted(store, embedder, tmp_path):
    """Two conversations with one id (merged exports) used to fail on DuckDB's primary key."""
    first = simple_conversation("First copy", "Where do herons nest?", "In colonies called heronries.", "same-id")
    second = simple_conversation("Second copy", "Where do owls nest?", "In tree hollows.", "same-id")
    damaged = simple_conversation("Damaged", "What is a kestrel?", "A small falcon.", "damaged").to_dict()
    damaged["mapping"]["damaged-n2"]["message"]["content"] = "not an object"
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps([first.to_dict(), second.to_dict(), damaged]))
    stats = import_path(store, path, embedder)
    assert (stats.conversations, stats.added, stats.duplicates, stats.skipped_messages) == (2, 2, 1, 1)
    titles = [r[0] for r in store.cursor().execute("SELECT title FROM conversations ORDER BY title").fetchall()]
    assert titles == ["Damaged", "First copy"]
    again = import_path(store, path, embedder)
    assert (again.unchanged, again.duplicates) == (2, 1)


def test_a_cancelled_import_is_recorded_as_cancelled_and_changes_nothing(store, embedder, tmp_path):
    from backend.errors import CancelledError
    from backend.jobs import JobRegistry

    export = write_chatgpt_export(tmp_path / "export.zip", [simple_conversation("T", "hello there", "hi", "c1")])
    before = snapshot(store)
    with pytest.raises(CancelledError):
        import_path(store, export, embedder, should_stop=lambda: True)
    assert snapshot(store) == before
    assert store.cursor().execute("SELECT state FROM imports").fetchall() == [("cancelled",)]
    jobs = JobRegistry()
    record = jobs.wait(jobs.start("import", "Import", lambda ctx: import_path(store, export, embedder, should_stop=lambda: True)), 60)
    assert record.state == "cancelled" and record.error["code"] == "cancelled"


def test_chunks_kept_from_the_embed_pass_are_the_chunks_a_second_cut_gives(embedder, tmp_path, monkeypatch):
    """The write pass reuses the embed pass's chunks up to a memory bound and cuts the rest again:
    both ways store the same rows, and every chunk has its vector."""
    from backend.memory import ingest
    from backend.memory.store import MemoryStore

    long_answer = " ".join(f"Sentence {i} explains how the starter rises overnight in a warm kitchen." for i in range(120))
    path = export(tmp_path, n=6, extra=[simple_conversation("Long", "Tell me everything about sourdough", long_answer, "long"),
                                        every_content_type_conversation()])
    rows = []
    for name, bound in (("kept.duckdb", ingest.KEPT_CHUNKS_BYTES), ("partly.duckdb", 3000), ("recut.duckdb", 0)):
        monkeypatch.setattr(ingest, "KEPT_CHUNKS_BYTES", bound)
        store = MemoryStore(tmp_path / name)
        stats = import_path(store, path, embedder)
        db = store.cursor()
        rows.append(db.execute("SELECT id, message_id, position, role, text, text_hash FROM chunks ORDER BY id").fetchall())
        assert db.execute("SELECT count(*) FROM chunks c LEFT JOIN embeddings e USING (text_hash) WHERE e.vector IS NULL").fetchone()[0] == 0
        assert stats.chunks == len(rows[-1]) > 8
        store.close()
    assert rows[0] == rows[1] == rows[2]
