"""Hybrid search finds the evidence a question about the person needs: by its date, by an event's date,
the newest of two answers, and what they said over what others said (real DuckDB, real embedder)."""

from datetime import UTC, datetime

import pytest

from backend.memory.ingest import import_path
from backend.memory.search import MemorySearch
from tests.dialogue_factory import background, generate_history
from tests.export_factory import ChatGPTConversation, write_chatgpt_export

RECALL_FLOOR = 0.65  # measured 0.71 (2026-12-06): a guard against regressions, not the goal (0.9)
BOOKS = [("2023-05-12", "I'm halfway through Dune and can't put it down."),
         ("2024-11-03", "Started reading Piranesi on the train this morning."),
         ("2023-09-20", "I'm reading The Overstory, slowly.")]
COOKING = [("2024-02-08", "Made lasagne for dinner tonight, it took forever but was worth it."),
           ("2024-06-30", "Made shakshuka for dinner tonight, quick and good."),
           ("2023-10-02", "Made feijoada for dinner tonight, the whole family came.")]
SAID = BOOKS + COOKING + [
    ("2024-02-13", "Flights are booked, we're off to Osaka next weekend!"),
    ("2023-04-02", "Everyone at work is talking about trips to Osaka this year."),
    ("2023-03-01", "I started working as a data analyst at Bluefin Analytics this week."),
    ("2024-08-19", "I changed jobs: I work as a product designer at Atlas Robotics now."),
    ("2024-03-03", "My neighbour's dog Olive barked half the night."),
    ("2023-01-29", "We adopted a rescue dog last weekend and named him Pepper."),
    ("2024-05-05", "Paula's dog Nacho got into the bins again."),
]


def _conversation(index: int, day: str, text: str) -> ChatGPTConversation:
    when = datetime.fromisoformat(day).replace(hour=18, tzinfo=UTC).timestamp()
    conversation = ChatGPTConversation(f"Chat {index}", f"said-{index}", when)
    conversation.add("user", f"{text} Anyway, can you help me plan the week?", node_id=f"said-{index}-u")
    conversation.add("assistant", "Sure. Start with what matters most, then block time for it.", node_id=f"said-{index}-a")
    return conversation


@pytest.fixture(scope="module")
def searcher(tmp_path_factory, embedder):
    from backend.memory.store import MemoryStore

    folder = tmp_path_factory.mktemp("evidence")
    conversations = [_conversation(i, day, text) for i, (day, text) in enumerate(SAID)] + background(40)
    store = MemoryStore(folder / "memory.duckdb")
    import_path(store, write_chatgpt_export(folder / "export.json", conversations), embedder)
    yield MemorySearch(store, embedder)
    store.close()


def _top(searcher, query, k=3):
    return [hit.text.split(" Anyway")[0] for hit in searcher.search(query, k=k) if hit.conversation_id.startswith("said-")]


def test_a_month_in_the_question_finds_what_was_said_that_month(searcher):
    assert _top(searcher, "Which book was I reading in May 2023?")[0] == BOOKS[0][1]
    assert _top(searcher, "Que livro eu estava lendo em novembro de 2024?")[0] == BOOKS[1][1]


def test_the_week_before_an_event_is_dated_by_the_event_itself(searcher):
    top = _top(searcher, "What did I cook the week before my trip to Osaka?", k=5)
    assert COOKING[0][1] in top[:2], top
    assert "Flights are booked, we're off to Osaka next weekend!" in top, "the event that dates the window is evidence too"
    assert top.index(COOKING[0][1]) < min((top.index(t) for _, t in COOKING[1:] if t in top), default=99)


def test_now_prefers_the_newest_answer(searcher):
    top = _top(searcher, "Where do I work now?", k=5)
    newer, older = "I changed jobs: I work as a product designer at Atlas Robotics now.", SAID[-5][1]
    assert newer in top and (older not in top or top.index(newer) < top.index(older)), top


def test_a_question_about_me_prefers_what_i_said_about_myself(searcher):
    top = _top(searcher, "What is my dog called?")
    assert top[0] == "We adopted a rescue dog last weekend and named him Pepper.", top


def test_a_small_generated_history_has_its_evidence_found(tmp_path, embedder):
    """The benchmark's generator at a tiny size: one history, its questions, evidence among the top 10."""
    from backend.memory.store import MemoryStore

    history = generate_history(3, sessions=20)
    store = MemoryStore(tmp_path / "memory.duckdb")
    import_path(store, write_chatgpt_export(tmp_path / "export.json", history.conversations() + background(20, seed=3)), embedder)
    searcher = MemorySearch(store, embedder)
    external = dict(store.cursor().execute("SELECT id, external_id FROM messages").fetchall())
    found = 0
    for question in history.questions:
        top = {external[hit.message_id] for hit in searcher.search(question.text, k=10)}
        found += sum(turn in top for turn in question.evidence) / len(question.evidence)
    store.close()
    assert found / len(history.questions) >= RECALL_FLOOR
