"""A Gemini Takeout imported for real: searchable, counted, and unchanged on re-import."""

from backend.memory.ingest import import_path
from backend.memory.search import MemorySearch
from backend.memory.stats import memory_stats
from tests.export_factory import write_gemini_takeout
from tests.importers.test_gemini import ENTRIES


def test_gemini_memory_is_searchable_and_reimport_is_unchanged(store, embedder, tmp_path):
    export = write_gemini_takeout(tmp_path / "takeout.zip", ENTRIES)
    first = import_path(store, export, embedder)
    assert (first.conversations, first.added) == (2, 2)
    hits = MemorySearch(store, embedder).search("water the monstera when the top soil is dry", k=3)
    assert {h.source_id for h in hits} == {"gemini"} and any("7 to 10 days" in h.text and h.role == "assistant" for h in hits)
    assert memory_stats(store)["messages"] == 6
    again = import_path(store, export, embedder)
    assert again.unchanged == 2 and again.added == again.updated == 0
