"""A chat turn: retrieve memories, build the prompt within the context budget, stream the answer,
persist both messages with their sources, and keep the chat itself searchable as memory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import ollama

from backend.chat.prompting import build_messages
from backend.chat.repetition import loop_start, looping_span
from backend.chat.sessions import ChatMessage, ChatSession, ChatSessions
from backend.config import DataLayout
from backend.errors import EngineUnreachable, OrchMindError, ValidationError
from backend.importers.model import ImportedConversation, ImportedMessage, timestamp
from backend.memory.embeddings import Embedder
from backend.memory.ingest import forget_conversation, import_conversations
from backend.memory.search import MemorySearch
from backend.memory.store import MemoryStore

CHAT_SOURCE = "orch-chat"
DEFAULT_CONTEXT_TOKENS = 2048
DEFAULT_MAX_TOKENS = 1024  # a reply's cap unless the chat or Settings raise it
GUARD_EVERY_CHARS = 40  # how often the repetition guard looks at the reply so far


class ChatError(OrchMindError):
    code = "chat"


class EmptyChatRequest(ValidationError, ChatError):
    pass


class ChatPromptTooLong(ChatError):
    code = "prompt_too_long"


class ModelAnswerError(ChatError):
    code = "model_error"


class ChatService:
    def __init__(self, store: MemoryStore, embedder: Embedder, client: ollama.Client, *, top_k: int = 5,
                 context_tokens: int = DEFAULT_CONTEXT_TOKENS, max_tokens: int = DEFAULT_MAX_TOKENS,
                 include_chats: bool = False) -> None:
        self.sessions = ChatSessions(store)
        self.store = store
        self.embedder = embedder
        self.client = client
        self.top_k = top_k
        self.context_tokens = context_tokens
        self.max_tokens = max_tokens
        self.include_chats = include_chats

    @classmethod
    def from_settings(cls, layout: DataLayout | None = None) -> ChatService:
        """The chat service as Settings configure it (the bridge and the CLI both start here)."""
        from backend.config import load_settings
        from backend.inference.engine import get_connection
        from backend.memory.embeddings import get_embedder
        from backend.memory.store import get_store

        settings = load_settings(layout)
        return cls(get_store(layout), get_embedder(settings.embedding_model), get_connection(layout).client,
                   top_k=settings.memory_top_k, max_tokens=settings.chat_max_tokens, include_chats=settings.memory_includes_chats)

    def send(self, session_id: str, text: str, *, on_token: Callable[[str], None] = lambda t: None,
             should_stop: Callable[[], bool] = lambda: False, options: dict[str, Any] | None = None,
             regenerate: bool = False) -> ChatMessage:
        session = self.sessions.get(session_id)
        if regenerate:
            if session.messages and session.messages[-1].role == "assistant":
                self.sessions.drop_last_assistant(session_id)
                session = self.sessions.get(session_id)
            if not session.messages or session.messages[-1].role != "user":
                raise EmptyChatRequest("There is no question to answer again in this chat.")
            text = session.messages[-1].content
            history = session.messages[:-1]
        else:
            text = text.strip()
            if not text:
                raise EmptyChatRequest("Type a message first.")
            history = session.messages
        hits = self._memories(session, text)
        try:
            messages, report = build_messages(session.system_prompt, [{"role": m.role, "content": m.content} for m in history],
                                              text, hits, self.context_tokens)
        except ValueError as exc:
            raise ChatPromptTooLong(str(exc)) from exc
        if not regenerate:
            self.sessions.append(session_id, "user", text)
            if session.title == "New chat":
                self.sessions.update(session_id, title=text[:60])
        chat_options = {"num_predict": session.max_tokens or self.max_tokens,
                        **({"temperature": session.temperature} if session.temperature is not None else {}), **(options or {})}
        answer, final, ended = self._stream(session.model, messages, chat_options, on_token, should_stop)
        used = {chunk_id: number for number, chunk_id in enumerate(report.used_memories, 1)}
        sources = [{"number": used[h.chunk_id], "chunk_id": h.chunk_id, "conversation_id": h.conversation_id,
                    "conversation_key": h.conversation_key, "title": h.title, "created_at": h.created_at,
                    "role": h.role, "snippet": h.snippet} for h in hits if h.chunk_id in used]
        stats = {**report.to_dict(), "stopped": final is None, "ended": ended, "max_tokens": chat_options["num_predict"],
                 **({k: getattr(final, k) for k in ("eval_count", "eval_duration", "total_duration")} if final else {})}
        return self.sessions.append(session_id, "assistant", answer, session.model, sources, stats)

    def _memories(self, session: ChatSession, text: str) -> list[Any]:
        if not session.memory_enabled:
            return []
        if self.store.cursor().execute("SELECT count(*) FROM chunks").fetchone()[0] == 0:
            return []
        # Over-fetch, then drop the app's own chats (unless Settings include them) and always this chat itself.
        hits = MemorySearch(self.store, self.embedder).search(text, min(200, self.top_k * 3 + 5))
        return [h for h in hits if h.source_id != CHAT_SOURCE
                or (self.include_chats and h.conversation_id != session.id)][: self.top_k]

    def _stream(self, model: str, messages: list[dict[str, str]], options: dict[str, Any],
                on_token: Callable[[str], None], should_stop: Callable[[], bool]) -> tuple[str, Any, str]:
        """The reply, the engine's final record (None when stopped early) and how it ended:
        ``stop`` (the model finished), ``length`` (it hit the cap), ``repetition`` (the guard stopped
        a loop, and the repeated tail is cut off), or ``cancelled``."""
        parts: list[str] = []
        final = None
        ended = "stop"
        checked = 0
        try:
            stream = self.client.chat(model=model, messages=messages, stream=True, options=options)
            for part in stream:
                if should_stop():
                    stream.close()  # type: ignore[attr-defined]
                    ended = "cancelled"
                    break
                if part.message.content:
                    parts.append(part.message.content)
                    on_token(part.message.content)
                    checked += len(part.message.content)
                    if checked >= GUARD_EVERY_CHARS:
                        checked = 0
                        text = "".join(parts)
                        if span := looping_span(text):
                            stream.close()  # type: ignore[attr-defined]  # frees the engine at once
                            return text[:loop_start(text, span)].rstrip(), None, "repetition"
                if part.done:
                    final = part
                    ended = "length" if part.done_reason == "length" else "stop"
        except ollama.ResponseError as exc:
            raise ModelAnswerError(f"The model answered with an error: {exc.error}") from exc
        except (httpx.HTTPError, ConnectionError) as exc:
            raise EngineUnreachable("The model engine is not reachable. Check Settings → Ollama address, or restart "
                                    "Orch-Mind to use the embedded engine.") from exc
        return "".join(parts), final, ended

    def sync_to_memory(self, session_id: str | None = None) -> None:
        """Make the app's own chats searchable memory too: one chat after a turn, or all of them.
        Unchanged chats cost nothing, and chats left out are kept (an incremental import)."""
        ids = [session_id] if session_id else [summary.id for summary in self.sessions.list()]

        def conversations(_with_progress: bool) -> Iterator[ImportedConversation]:
            for one_id in ids:
                session = self.sessions.get(one_id)
                yield ImportedConversation(CHAT_SOURCE, session.id, session.title, timestamp(session.created_at),
                                           timestamp(session.updated_at),
                                           [ImportedMessage(m.id, m.role, m.content, "text", timestamp(m.created_at), m.model)
                                            for m in session.messages if m.content])
        import_conversations(self.store, self.embedder, CHAT_SOURCE, CHAT_SOURCE, "Orch-Mind chats", "chat", conversations)

    def delete(self, session_id: str) -> None:
        delete_chat(self.store, session_id)


def delete_chat(store: MemoryStore, session_id: str) -> None:
    """Delete a chat and its copy in memory: a deleted chat must not live on as searchable text."""
    ChatSessions(store).delete(session_id)
    forget_conversation(store, CHAT_SOURCE, session_id)
