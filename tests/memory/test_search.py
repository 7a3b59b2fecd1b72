"""Search quality on a small labelled set, filters, and the search result contract."""

from datetime import datetime

import pytest

from backend.memory.ingest import import_path
from backend.memory.search import MemorySearch, SearchError, SearchFilters, make_snippet
from tests.export_factory import claude_conversation, simple_conversation, write_chatgpt_export, write_claude_export

TOPICS = {
    "sourdough": ("How do I keep my sourdough starter alive?", "Feed the starter flour and water daily and keep it warm."),
    "tax": ("When is the deadline for filing income tax?", "Personal income tax returns are due in April."),
    "guitar": ("Which chords should a beginner guitarist learn?", "Start with G, C, D and E minor open chords."),
    "python": ("Why does my Python list comprehension fail?", "Check the variable name inside the comprehension and its scope."),
    "marathon": ("How should I train for my first marathon?", "Build weekly mileage slowly and do one long run each week."),
    "cat": ("My cat stopped eating, what should I do?", "Take the cat to a vet if it refuses food for more than a day."),
    "lisbon": ("What to visit in Lisbon in three days?", "See Alfama, Belém tower and take tram 28."),
    "solar": ("Are solar panels worth it for my roof?", "Panels pay back in 7 to 10 years with good sun exposure."),
    "chess": ("How do I get better at chess openings?", "Learn the Italian game and the Queen's gambit principles."),
    "tomato": ("Why are my tomato leaves turning yellow?", "Yellow tomato leaves often mean overwatering or nitrogen deficiency."),
}
QUERIES = {
    "keeping bread yeast culture healthy": "sourdough",
    "tax return due date": "tax",
    "easy chords for beginners": "guitar",
    "bug in list comprehension": "python",
    "running 42 km preparation": "marathon",
    "pet refuses food": "cat",
    "Portugal capital sightseeing": "lisbon",
    "photovoltaic roof investment": "solar",
    "improve openings in chess": "chess",
    "plant leaves yellowing": "tomato",
}


@pytest.fixture
def searcher(store, embedder, tmp_path):
    conversations = [simple_conversation(f"About {key}", q, a, key, create_time=1_600_000_000 + i * 86_400 * 40)
                     for i, (key, (q, a)) in enumerate(TOPICS.items())]
    import_path(store, write_chatgpt_export(tmp_path / "export.zip", conversations), embedder)
    claude = write_claude_export(tmp_path / "conversations.json", [claude_conversation("Claude garden", [("human", "Tomato blight help"), ("assistant", "Remove infected tomato leaves")], "claude-1")])
    import_path(store, claude, embedder)
    return MemorySearch(store, embedder)


@pytest.mark.parametrize("mode", ["hybrid", "semantic"])
def test_right_conversation_in_top_5(searcher, mode):
    misses = []
    for query, expected in QUERIES.items():
        hits = searcher.search(query, k=5, mode=mode)
        if expected not in [hit.conversation_id for hit in hits]:
            misses.append((query, [h.conversation_id for h in hits]))
    assert not misses, misses


def test_keyword_search_finds_exact_terms_and_hybrid_ranks_them_first(searcher):
    hits = searcher.search("Alfama tram", k=3, mode="keyword")
    assert hits[0].conversation_id == "lisbon" and "tram" in hits[0].snippet
    hybrid = searcher.search("Alfama tram", k=3)
    assert hybrid[0].conversation_id == "lisbon" and set(hybrid[0].ranks) == {"semantic", "keyword"}


def test_hits_carry_their_source(searcher):
    hit = searcher.search("sourdough starter", k=1)[0]
    assert hit.title == "About sourdough" and hit.role in ("user", "assistant")
    assert datetime.fromisoformat(hit.created_at).year == 2020
    assert 0 < hit.score <= 1 and hit.text


def test_filters_by_role_source_and_date(searcher):
    assert {h.role for h in searcher.search("tomato", k=10, filters=SearchFilters(roles=("assistant",)))} == {"assistant"}
    only_claude = searcher.search("tomato", k=10, filters=SearchFilters(source_ids=("claude",)))
    assert only_claude and {h.source_id for h in only_claude} == {"claude"}
    early = searcher.search("tomato leaves", k=20, mode="semantic", filters=SearchFilters(date_to=datetime(2020, 12, 31)))
    assert early and all(datetime.fromisoformat(h.created_at) <= datetime(2020, 12, 31) for h in early)
    assert "tomato" not in {h.conversation_id for h in early}


def test_cached_index_paths_agree_with_a_duckdb_scan(searcher, monkeypatch):
    vector = searcher.embedder.embed(["marathon training"])[0]
    everything = SearchFilters(date_from=datetime(1970, 1, 1))  # any filter forces the DuckDB scan
    scanned = searcher.nearest(vector, 3, everything)
    exact = searcher.nearest(vector, 3)
    assert searcher.index.kind == "numpy"
    assert [c for c, _ in exact] == [c for c, _ in scanned]
    assert [round(s, 4) for _, s in exact] == [round(s, 4) for _, s in scanned]
    monkeypatch.setattr("backend.memory.search_settings.HNSW_MIN_VECTORS", 1)
    from backend.memory.vector_index import bump_generation

    bump_generation(searcher.store)
    approx = searcher.nearest(vector, 3)
    assert searcher.index.kind == "hnsw" and approx[0][0] == exact[0][0]


@pytest.mark.parametrize("query", ["Alfama tram", "tomato leaves yellow", "chords for a beginner guitarist", "nothing-matches-this"])
def test_keyword_scores_equal_duckdbs_own_bm25(searcher, query):
    from backend.memory.keyword_index import rebuild_keyword_index

    rebuild_keyword_index(searcher.store)  # a full snapshot (the second import above went into the delta)
    db = searcher.store.cursor()
    reference = db.execute(
        """SELECT id, score FROM (SELECT c.id, fts_main_chunks.match_bm25(c.id, ?) AS score FROM chunks c)
           WHERE score IS NOT NULL ORDER BY score DESC, id LIMIT 10""", [query]).fetchall()
    ours = searcher.keyword_ids(query, 10, SearchFilters())
    assert [c for c, _ in ours] == [c for c, _ in reference]
    assert [round(s, 4) for _, s in ours] == [round(s, 4) for _, s in reference]
    filtered = searcher.keyword_ids(query, 10, SearchFilters(roles=("assistant",)))
    assert [c for c, _ in filtered] == [c for c, _ in reference if c in {h for h, _ in filtered}] and all(
        db.execute("SELECT role FROM chunks WHERE id = ?", [c]).fetchone()[0] == "assistant" for c, _ in filtered)


def test_new_vectors_are_seen_by_the_cached_index(searcher, store, embedder, tmp_path):
    assert searcher.search("origami cranes", k=1, mode="semantic")[0].conversation_id != "origami"
    import_path(store, write_chatgpt_export(tmp_path / "more.zip", [
        simple_conversation("Paper folding", "How do I fold origami cranes?", "Start with a square base.", "origami")]), embedder)
    assert searcher.search("origami cranes", k=1, mode="semantic")[0].conversation_id == "origami"


def test_empty_query_is_an_error(searcher):
    with pytest.raises(SearchError):
        searcher.search("   ")


def test_snippet_centres_on_the_match():
    text = "x " * 300 + "the herons nest here" + " y" * 300
    snippet = make_snippet(text, "herons")
    assert "herons" in snippet and snippet.startswith("…") and snippet.endswith("…")


def test_query_terms_split_and_stem_as_duckdbs_index_does(searcher):
    """ASCII queries are tokenised and stemmed in Python: the terms must be exactly DuckDB's."""
    import random
    import string

    from backend.memory.keyword_index import query_stems

    db = searcher.store.cursor()
    rng = random.Random(5)
    words = ["running", "generalizations", "caresses", "ponies", "GUITARIST", "don't", "e-mail", "x86_64", "C++",
             "sandbox:/mnt/data", "a\vb", "tab\tsep", "naïve", "Ærø", "straße", "ﬁle"]
    alphabet = string.printable + "\x00\x0b\x1c"
    queries = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 6))) for _ in range(200)]
    queries += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))) for _ in range(300)]
    for query in queries:
        reference = db.execute("SELECT DISTINCT stem(unnest(fts_main_chunks.tokenize(?)), 'porter') AS t", [query]).fetchall()
        assert query_stems(db, query) == sorted(row[0] for row in reference if row[0]), repr(query)


def test_a_small_change_updates_the_keyword_delta_without_a_full_rebuild(searcher, store, embedder, tmp_path):
    from backend.importers.model import ImportedConversation, ImportedMessage
    from backend.memory.ingest import forget_conversation, import_conversations
    from backend.memory.keyword_index import rebuild_keyword_index

    db = store.cursor()
    rebuild_keyword_index(store)
    snapshot_docs = db.execute("SELECT count(*) FROM fts_main_chunks.docs").fetchone()[0]

    def chat(text):  # what a chat turn does: re-import the one chat conversation
        messages = [ImportedMessage("u1", "user", "Tell me about my plant", "text"), ImportedMessage("a1", "assistant", text, "text")]
        import_conversations(store, embedder, "orch-chat", "orch-chat", "Orch-Mind chats", "chat",
                             lambda _progress: iter([ImportedConversation("orch-chat", "chat-1", "Plants", None, None, messages)]))

    def found(word):
        return {hit.conversation_id for hit in searcher.search(word, k=5, mode="keyword")}

    chat("Your zanzibarite fern likes shade and the tomato needs sun.")
    assert "chat-1" in found("zanzibarite")
    assert db.execute("SELECT count(*) FROM fts_main_chunks.docs").fetchone()[0] == snapshot_docs, "no full rebuild"
    chat("Your quokkaberry fern likes shade and the tomato needs sun.")  # the chat changed: its old words go
    assert "chat-1" not in found("zanzibarite") and "chat-1" in found("quokkaberry")
    with_delta = [c for c, _ in searcher.keyword_ids("tomato sun shade", 50, SearchFilters())]
    rebuild_keyword_index(store)
    rebuilt = [c for c, _ in searcher.keyword_ids("tomato sun shade", 50, SearchFilters())]
    # The same chunks match and the best stays the best; scores drift a little until a full rebuild.
    assert set(with_delta) == set(rebuilt) and with_delta[0] == rebuilt[0], (with_delta, rebuilt)
    assert forget_conversation(store, "orch-chat", "chat-1")
    assert not found("quokkaberry") and db.execute("SELECT count(*) FROM keyword_delta").fetchone()[0] == 0


def test_the_keyword_cache_follows_chat_turns_and_agrees_with_duckdb(searcher, store, embedder):
    """Unfiltered keyword queries are summed from in-memory postings: after each chat turn (delta rows
    only, no reload) and after a rebuild they rank and score exactly as the DuckDB query does."""
    from backend.importers.model import ImportedConversation, ImportedMessage
    from backend.memory.ingest import forget_conversation, import_conversations
    from backend.memory.keyword_cache import cache_for
    from backend.memory.keyword_index import keyword_top, mark_stale, query_stems, rebuild_keyword_index

    rebuild_keyword_index(store)
    cache, db = cache_for(store), store.cursor()
    queries = ["tomato fern shade", "Alfama tram", "guitar chords", "zorblat turn", "sun"]

    def agrees() -> None:
        for query in queries:
            ours, theirs = cache.top(query_stems(db, query), 20), keyword_top(db, query, 20)
            assert [c for c, _ in ours] == [c for c, _ in theirs], query
            assert [round(s, 4) for _, s in ours] == [round(s, 4) for _, s in theirs], query

    def chat(turn: int) -> None:
        messages = [ImportedMessage("u1", "user", "Tell me about my plant", "text"),
                    ImportedMessage("a1", "assistant", f"Turn {turn}: your zorblat fern likes shade; the tomato needs sun.", "text")]
        import_conversations(store, embedder, "orch-chat", "orch-chat", "Orch-Mind chats", "chat",
                             lambda _progress: iter([ImportedConversation("orch-chat", "chat-1", "Plants", None, None, messages)]))

    agrees()
    loads = cache.reloads
    for turn in range(4):
        chat(turn)
        agrees()
        assert cache.top(["zorblat"], 5), "the chat's words are found"
    assert cache.reloads == loads, "no full reload for a chat turn"
    assert forget_conversation(store, "orch-chat", "chat-1")
    agrees()
    assert not cache.top(["zorblat"], 5)
    rebuild_keyword_index(store)
    agrees()
    assert cache.reloads == loads + 1
    mark_stale(store)  # as while a rebuild runs: the cache does not read a half-built index
    assert cache.top(["tomato"], 5) is None
    assert searcher.search("tomato", k=3, mode="keyword"), "the search still answers (it rebuilds first)"


def test_a_chat_turn_updates_the_vector_index_in_place_and_it_agrees_with_a_fresh_one(searcher, store, embedder):
    """A chat synced to memory changes one conversation: the cached vector index replaces that
    conversation's rows instead of reloading every vector, and answers exactly as a fresh load."""
    import numpy as np

    from backend.importers.model import ImportedConversation, ImportedMessage
    from backend.memory.ingest import forget_conversation, import_conversations
    from backend.memory.keyword_index import rebuild_keyword_index
    from backend.memory.vector_index import VectorIndex, index_for

    rebuild_keyword_index(store)
    cached = index_for(store)
    queries = [embedder.embed([q])[0] for q in ("my fern and the tomato plant", "vacation in Portugal", "python code")]

    def agrees() -> None:
        fresh = VectorIndex(store)
        for query in queries:
            ours, theirs = cached.top_chunks(np.asarray(query), 10), fresh.top_chunks(np.asarray(query), 10)
            assert [c for c, _ in ours] == [c for c, _ in theirs]
            assert np.allclose([s for _, s in ours], [s for _, s in theirs], atol=1e-5)

    def chat(turn: int) -> None:
        messages = [ImportedMessage("u1", "user", "Tell me about my plant", "text"),
                    ImportedMessage("a1", "assistant", f"Turn {turn}: your fern likes shade; the tomato needs sun.", "text")]
        import_conversations(store, embedder, "orch-chat", "orch-chat", "Orch-Mind chats", "chat",
                             lambda _progress: iter([ImportedConversation("orch-chat", "chat-1", "Plants", None, None, messages)]))

    cached.top_chunks(np.asarray(queries[0]), 5)
    chat(0)
    agrees()
    loads = cached.reloads
    for turn in range(1, 12):  # enough replaced rows to compact the copy at least once
        chat(turn)
        agrees()
    assert cached.reloads == loads, "no full reload for a chat turn"
    ids = {chunk for chunk, _ in cached.top_chunks(np.asarray(queries[0]), 50)}
    current = {row[0] for row in store.cursor().execute(
        "SELECT c.id FROM chunks c JOIN conversations v ON v.id = c.conversation_id WHERE v.external_id = 'chat-1'").fetchall()}
    assert current and current <= ids, "the latest turn's chunks are found"
    assert forget_conversation(store, "orch-chat", "chat-1")
    agrees()
    assert not current & {chunk for chunk, _ in cached.top_chunks(np.asarray(queries[0]), 50)}
    assert cached.reloads == loads
