"""A late-2025 export imported for real: memory holds the conversation people saw, stats count what is
memory, hits say what kind of message they are, and tool payloads cannot crowd answers out of search."""

import pytest

from backend.memory.ingest import import_path
from backend.memory.search import MemorySearch
from backend.memory.stats import memory_stats
from tests.export_factory import simple_conversation, write_chatgpt_export
from tests.late_2025_export import agent_mode_conversation, late_2025_conversations
from tests.memory.test_search import QUERIES, TOPICS


@pytest.fixture
def imported(store, embedder, tmp_path):
    labelled = [simple_conversation(f"About {key}", q, a, key, create_time=1_600_000_000 + i * 86_400 * 40)
                for i, (key, (q, a)) in enumerate(TOPICS.items())]
    late = late_2025_conversations() + [agent_mode_conversation(i) for i in range(1, 6)]  # payload-heavy
    export = write_chatgpt_export(tmp_path / "export.zip", labelled + [c for c, _ in late])
    stats = import_path(store, export, embedder)
    return store, stats, late


def test_stats_count_conversations_memory_messages_and_chunks(imported):
    store, stats, late = imported
    summary = memory_stats(store)
    memory_nodes = sum(1 for _, expected in late for want in expected.values() if want.memory is not None)
    assert summary["conversations"] == len(TOPICS) + len(late) == stats.conversations
    assert summary["messages"] == 2 * len(TOPICS) + memory_nodes
    assert summary["kept_out"] > summary["messages"] // 2  # tool calls, reasoning and tool output are stored apart
    assert summary["chunks"] == stats.chunks
    (source,) = summary["sources"]
    assert source["label"] == "export.zip" and source["messages"] == summary["messages"]


def test_payload_heavy_conversations_do_not_crowd_out_the_right_answer(imported, embedder):
    store, _, _ = imported
    searcher = MemorySearch(store, embedder)
    misses = []
    for query, expected in QUERIES.items():
        hits = searcher.search(query, k=5)
        if expected not in [hit.conversation_id for hit in hits]:
            misses.append((query, [h.conversation_id for h in hits]))
    assert not misses, misses
    texts = [r[0] for r in store.cursor().execute("SELECT text FROM chunks").fetchall()]
    assert not any('"actions"' in t or "cat << 'EOF'" in t or "/mnt/data/run.sh" in t for t in texts)


def test_hits_carry_the_message_kind(imported, embedder):
    store, _, _ = imported
    hits = MemorySearch(store, embedder).search("cover letter for Greenleaf Labs mentioning bouldering", k=5)
    canvas = next(hit for hit in hits if hit.kind == "canvas")
    assert canvas.role == "assistant" and "Dear Ms. Rocha" in canvas.text
    assert {hit.kind for hit in hits} <= {"text", "canvas"}
