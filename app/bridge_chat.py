"""Bridge methods of the Chat screen."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from app.bridge_requests import ChatChanges
from app.validation import Identifier, LongText, ModelName, bridge_method
from backend.chat.service import ChatService, delete_chat
from backend.chat.sessions import ChatSessions
from backend.config import DataLayout, load_settings
from backend.errors import ValidationError
from backend.jobs import JobContext, JobRegistry
from backend.memory.store import get_store

log = logging.getLogger(__name__)
_warm_up_lock = threading.Lock()
_warmed: set[Path] = set()  # data dirs whose chat was prepared in this process


class ChatBridge:
    _layout: DataLayout
    _jobs: JobRegistry

    def _chat(self) -> ChatService:
        """Everything a turn needs (embedder, engine): loaded on the first message, not to list chats."""
        return ChatService.from_settings(self._layout)

    def _sessions(self) -> ChatSessions:
        return ChatSessions(get_store(self._layout))

    @bridge_method
    def chat_sessions(self) -> list[dict[str, Any]]:
        return [s.to_dict() for s in self._sessions().list()]

    @bridge_method
    def chat_new(self, model: ModelName | None = None, memory_enabled: bool | None = None) -> dict[str, Any]:
        settings = load_settings(self._layout)
        session = self._sessions().create(
            model or settings.chat_model, settings.system_prompt,
            settings.memory_enabled if memory_enabled is None else memory_enabled)
        return session.to_dict()

    @bridge_method
    def chat_get(self, session_id: Identifier) -> dict[str, Any]:
        return self._sessions().get(session_id).to_dict()

    @bridge_method
    def chat_update(self, session_id: Identifier, changes: ChatChanges) -> dict[str, Any]:
        if changes.title is not None and not changes.title.strip():
            raise ValidationError("A chat title cannot be empty.")
        return self._sessions().update(session_id, title=changes.title, model=changes.model, system_prompt=changes.system_prompt,
                                            memory_enabled=changes.memory_enabled).to_dict()

    @bridge_method
    def chat_set_options(self, session_id: Identifier, max_tokens: int | None = None,
                         temperature: float | int | None = None) -> dict[str, Any]:
        """This chat's reply cap and temperature; None puts back the default."""
        if max_tokens is not None and not 16 <= max_tokens <= 32768:
            raise ValidationError("The reply length must be between 16 and 32768 tokens.")
        if temperature is not None and not 0 <= temperature <= 2:
            raise ValidationError("The temperature must be between 0 and 2.")
        return self._sessions().update(session_id, max_tokens=max_tokens,
                                            temperature=None if temperature is None else float(temperature)).to_dict()

    @bridge_method
    def chat_prepare(self) -> dict[str, bool]:
        """Load what the first answer needs (embedding model, engine, the chat model) in the background.
        The Chat screen calls it when the person starts typing: drawing the screen never waits for it."""
        with _warm_up_lock:
            if self._layout.root in _warmed:
                return {"started": False}
            _warmed.add(self._layout.root)
        layout = self._layout

        def warm_up() -> None:
            try:
                ChatService.from_settings(layout).client.generate(model=load_settings(layout).chat_model, prompt="")
            except Exception:  # noqa: BLE001 - only a head start: the first answer reports any real problem
                log.warning("Preparing the chat in the background failed; the first answer will say why.", exc_info=True)
                with _warm_up_lock:
                    _warmed.discard(layout.root)

        threading.Thread(target=warm_up, name="chat-warm-up", daemon=True).start()
        return {"started": True}

    @bridge_method
    def chat_delete(self, session_id: Identifier) -> dict[str, bool]:
        delete_chat(get_store(self._layout), session_id)
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
