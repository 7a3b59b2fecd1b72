"""Bridge methods of the Chat and Models screens."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import ollama

from app.validation import Identifier, LongText, ShortText, bridge_method
from backend.chat.service import ChatService
from backend.config import DataLayout, load_settings
from backend.errors import NotFoundError, ValidationError
from backend.inference.engine import get_connection
from backend.inference.llama_runner import EngineError
from backend.inference.model_store import validate_name
from backend.jobs import JobContext, JobRegistry
from backend.memory.embeddings import get_embedder
from backend.memory.store import get_store


@contextlib.contextmanager
def engine_errors() -> Iterator[None]:
    """The engine's own errors (unknown model, bad name) reach the UI as messages, not internals."""
    try:
        yield
    except ollama.ResponseError as exc:
        raise EngineError(exc.error, code="not_found" if exc.status_code == 404 else "engine") from exc


class ChatBridge:
    _layout: DataLayout
    _jobs: JobRegistry

    def _chat(self) -> ChatService:
        settings = load_settings(self._layout)
        return ChatService(get_store(self._layout), get_embedder(settings.embedding_model),
                           get_connection(self._layout).client, top_k=settings.memory_top_k)

    @bridge_method
    def chat_sessions(self) -> list[dict[str, Any]]:
        return [s.to_dict() for s in self._chat().sessions.list()]

    @bridge_method
    def chat_new(self, model: ShortText | None = None, memory_enabled: bool | None = None) -> dict[str, Any]:
        settings = load_settings(self._layout)
        session = self._chat().sessions.create(
            model or settings.chat_model, settings.system_prompt,
            settings.memory_enabled if memory_enabled is None else memory_enabled)
        return session.to_dict()

    @bridge_method
    def chat_get(self, session_id: Identifier) -> dict[str, Any]:
        return self._chat().sessions.get(session_id).to_dict()

    @bridge_method
    def chat_update(self, session_id: Identifier, title: ShortText | None = None, model: ShortText | None = None,
                    system_prompt: LongText | None = None, memory_enabled: bool | None = None) -> dict[str, Any]:
        if title is not None and not title.strip():
            raise ValidationError("A chat title cannot be empty.")
        return self._chat().sessions.update(session_id, title=title, model=model, system_prompt=system_prompt,
                                            memory_enabled=memory_enabled).to_dict()

    @bridge_method
    def chat_delete(self, session_id: Identifier) -> dict[str, bool]:
        self._chat().delete(session_id)
        return {"deleted": True}

    def _start_turn(self, session_id: str, text: str, regenerate: bool) -> dict[str, str]:
        service = self._chat()
        service.sessions.get(session_id)  # fail now, not inside the job, for an unknown chat

        def run(context: JobContext) -> dict[str, Any]:
            message = service.send(session_id, text, regenerate=regenerate, should_stop=lambda: context.cancelled,
                                   on_token=lambda token: context.emit("chat_token", session_id=session_id, token=token))
            service.sync_to_memory(session_id)
            return {"session_id": session_id, "message": message.__dict__}

        return {"job_id": self._jobs.start("chat", "Chat answer", run)}

    @bridge_method
    def chat_send(self, session_id: Identifier, text: LongText) -> dict[str, str]:
        if not text.strip():
            raise ValidationError("Type a message first.")
        return self._start_turn(session_id, text, regenerate=False)

    @bridge_method
    def chat_regenerate(self, session_id: Identifier) -> dict[str, str]:
        return self._start_turn(session_id, "", regenerate=True)

    @bridge_method
    def memory_conversation(self, conversation_key: Identifier) -> dict[str, Any]:
        """A remembered conversation, opened from a chat answer's sources."""
        db = get_store(self._layout).cursor()
        row = db.execute("SELECT title, created_at, source_id FROM conversations WHERE id = ?", [conversation_key]).fetchone()
        if row is None:
            raise NotFoundError("That conversation is no longer in memory.")
        messages = db.execute("SELECT role, text, created_at FROM messages WHERE conversation_id = ? AND searchable "
                              "ORDER BY position", [conversation_key]).fetchall()
        return {"title": row[0], "created_at": row[1].isoformat() if row[1] else None, "source_id": row[2],
                "messages": [{"role": m[0], "text": m[1], "created_at": m[2].isoformat() if m[2] else None} for m in messages]}

    @bridge_method
    def models_overview(self) -> dict[str, Any]:
        connection = get_connection(self._layout)
        models = []
        for model in connection.client.list().models:
            details = model.details
            models.append({"name": model.model, "size": model.size, "modified_at": str(model.modified_at),
                           "parent": details.parent_model if details else "", "format": details.format if details else ""})
        running = [m.model for m in connection.client.ps().models]
        return {"engine": connection.kind, "host": connection.host, "models": models, "running": running}

    @bridge_method
    def models_create(self, name: ShortText, base: ShortText, system_prompt: LongText | None = None) -> dict[str, Any]:
        validate_name(name)
        validate_name(base)
        with engine_errors():
            get_connection(self._layout).client.create(model=name, from_=base, system=system_prompt or None)
        return {"created": name}

    @bridge_method
    def models_delete(self, name: ShortText) -> dict[str, bool]:
        validate_name(name)
        with engine_errors():
            get_connection(self._layout).client.delete(name)
        return {"deleted": True}
