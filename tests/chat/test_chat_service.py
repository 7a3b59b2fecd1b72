"""Chat turns against the real embedded engine, the real memory store and embedding model."""

import ollama
import pytest

from backend.chat.prompting import build_messages, estimate_tokens
from backend.chat.service import CHAT_SOURCE, ChatError, ChatService
from backend.memory.embeddings import get_embedder
from backend.memory.ingest import import_path
from backend.memory.search import MemorySearch
from backend.memory.store import MemoryStore
from tests.export_factory import simple_conversation, write_chatgpt_export


@pytest.fixture
def service(layout, engine, tmp_path):
    store = MemoryStore(layout.memory_db)
    embedder = get_embedder()
    export = write_chatgpt_export(tmp_path / "export.zip", [
        simple_conversation("My dog", "My dog is called Biscuit and he loves the beach.", "Biscuit sounds lovely!", "dog"),
        simple_conversation("Taxes", "When are taxes due?", "In April.", "taxes"),
        simple_conversation("Guitar", "Which chords first?", "G, C and D.", "guitar"),
    ])
    import_path(store, export, embedder)
    yield ChatService(store, embedder, ollama.Client(host=engine.host))
    store.close()


GREEDY = {"temperature": 0, "seed": 3, "num_predict": 24}


def test_memory_augmented_answer_cites_the_planted_fact(service):
    session = service.sessions.create("smollm2", "You are helpful.", memory_enabled=True)
    tokens = []
    answer = service.send(session.id, "What is my dog called?", on_token=tokens.append, options=GREEDY)
    assert answer.role == "assistant" and answer.content == "".join(tokens) and answer.content
    assert answer.sources and answer.sources[0]["conversation_id"] == "dog" and answer.sources[0]["number"] == 1
    assert "Biscuit" in answer.sources[0]["snippet"]
    stored = service.sessions.get(session.id)
    assert [m.role for m in stored.messages] == ["user", "assistant"] and stored.title == "What is my dog called?"


def test_memory_off_uses_no_memories(service):
    session = service.sessions.create("smollm2", "You are helpful.", memory_enabled=False)
    answer = service.send(session.id, "What is my dog called?", options=GREEDY)
    assert answer.sources == [] and answer.stats["used_memories"] == []


def test_regenerate_replaces_the_last_answer(service):
    session = service.sessions.create("smollm2", "You are helpful.", memory_enabled=False)
    service.send(session.id, "Say hello.", options=GREEDY)
    again = service.send(session.id, "", regenerate=True, options={**GREEDY, "seed": 99, "temperature": 0.9})
    messages = service.sessions.get(session.id).messages
    assert [m.role for m in messages] == ["user", "assistant"] and messages[-1].id == again.id


def test_stop_keeps_the_partial_answer(service):
    session = service.sessions.create("smollm2", "You are helpful.", memory_enabled=False)
    tokens = []
    answer = service.send(session.id, "Tell me a long story about the sea.", on_token=tokens.append,
                          should_stop=lambda: len(tokens) >= 3, options={"num_predict": 200, "temperature": 0})
    assert answer.stats["stopped"] is True and len(tokens) == 3 and answer.content == "".join(tokens)


def test_unknown_model_is_a_clear_error(service):
    session = service.sessions.create("no-such-model", "You are helpful.", memory_enabled=False)
    with pytest.raises(ChatError) as info:
        service.send(session.id, "hi")
    assert "not found" in info.value.message


def test_chats_become_searchable_memory(service):
    session = service.sessions.create("smollm2", "You are helpful.", memory_enabled=False)
    service.send(session.id, "I am planning a trip to Patagonia in March.", options=GREEDY)
    other = service.sessions.create("smollm2", "You are helpful.", memory_enabled=False)
    service.send(other.id, "My favourite cheese is Roquefort.", options=GREEDY)
    service.sync_to_memory(session.id)
    service.sync_to_memory(other.id)
    hits = MemorySearch(service.store, service.embedder).search("Patagonia trip", 3)
    assert any(h.source_id == CHAT_SOURCE and h.conversation_id == session.id for h in hits)
    assert service.store.cursor().execute("SELECT count(*) FROM conversations WHERE source_id = ?", [CHAT_SOURCE]).fetchone()[0] == 2

    service.delete(session.id)
    hits = MemorySearch(service.store, service.embedder).search("Patagonia trip", 10)
    assert not any(h.conversation_id == session.id for h in hits), "a deleted chat is gone from memory too"
    assert any(h.conversation_id == other.id for h in hits)


def test_earlier_app_chats_are_left_out_of_answers_unless_settings_include_them(service):
    earlier = service.sessions.create("smollm2", "You are helpful.", memory_enabled=False)
    service.send(earlier.id, "My favourite cheese is Roquefort from the south of France.", options=GREEDY)
    service.sync_to_memory(earlier.id)
    question = "Which cheese is my favourite, Roquefort?"

    asking = service.sessions.create("smollm2", "You are helpful.", memory_enabled=True)
    default = service.send(asking.id, question, options=GREEDY)
    assert default.sources and all(s["conversation_id"] != earlier.id for s in default.sources)

    service.include_chats = True
    service.sync_to_memory(asking.id)  # this chat is memory now too, and mentions Roquefort
    included = service.send(asking.id, question, options=GREEDY)
    cited = [s["conversation_id"] for s in included.sources]
    assert earlier.id in cited and asking.id not in cited  # earlier chats count; a chat never cites itself


def test_long_history_drops_oldest_turns_and_says_so():
    history = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i} " + "words " * 80} for i in range(40)]
    messages, report = build_messages("sys", history, "latest question", [], context_tokens=2048)
    assert report.dropped_turns > 0 and messages[-1]["content"] == "latest question"
    assert messages[1]["content"].startswith(f"turn {report.dropped_turns} ")
    assert report.estimated_tokens <= 2048
    assert estimate_tokens("x" * 32) == 16


def test_the_prompt_lists_memories_best_first_with_their_date_and_speaker():
    from types import SimpleNamespace

    from backend.chat.prompting import memory_block

    hits = [SimpleNamespace(chunk_id="a", title="Trip", role="user", created_at="2024-02-13T18:00:00", text="We fly to Osaka."),
            SimpleNamespace(chunk_id="b", title="Dinner", role="assistant", created_at=None, text="Try a risotto.")]
    lines = memory_block(hits).splitlines()
    assert lines[1] == "[1] Trip (2024-02-13, the user said): We fly to Osaka."
    assert lines[2] == "[2] Dinner (the assistant said): Try a risotto."
