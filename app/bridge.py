"""The js_api bridge: the only Python the UI can call (Electron's preload, done right).

pywebview exposes every public attribute of the object it is given, so :class:`Api` keeps all its
state in underscore attributes and only methods decorated with :func:`bridge_method` are public.
Browser mode dispatches HTTP calls through :func:`app.validation.exposed_methods`, the same list.
"""

from __future__ import annotations

import logging
import platform
from typing import Any

from app.bridge_chat import ChatBridge
from app.bridge_memory import MemoryBridge
from app.bridge_models import ModelsBridge
from app.bridge_network import NetworkBridge
from app.bridge_training import TrainingBridge
from app.events import EventChannel
from app.validation import Identifier, ShortText, bridge_method
from backend import __version__
from backend.config import DataLayout, load_settings, update_settings
from backend.errors import SettingsError, ValidationError
from backend.jobs import JobRegistry
from backend.memory.embeddings import EmbeddingModelError, check_embedding_model, embedding_models

log = logging.getLogger("orch_mind.bridge")

MAX_POLL_SECONDS = 25.0


class Api(MemoryBridge, ChatBridge, ModelsBridge, TrainingBridge, NetworkBridge):
    """Methods the UI calls. Each validates its arguments and answers ``{ok, data | error}``."""

    def __init__(self, layout: DataLayout, jobs: JobRegistry, events: EventChannel, mode: str) -> None:
        self._layout = layout
        self._jobs = jobs
        self._events = events
        self._mode = mode
        self._window: Any = None
        jobs.subscribe(events.publish)

    def _attach_window(self, window: Any) -> None:
        self._window = window

    @bridge_method
    def ping(self, message: ShortText) -> dict[str, str]:
        """Round-trip check used by the UI at start-up and by the tests."""
        return {"reply": f"pong: {message}", "version": __version__}

    @bridge_method
    def app_info(self) -> dict[str, Any]:
        return {
            "version": __version__,
            "mode": self._mode,
            "data_dir": str(self._layout.root),
            "python": platform.python_version(),
        }

    @bridge_method
    def get_settings(self) -> dict[str, Any]:
        settings = load_settings(self._layout)
        return {"values": settings.model_dump(), "embedding_models": embedding_models(self._layout)}

    @bridge_method
    def save_settings(self, changes: dict[str, str | int | bool]) -> dict[str, Any]:
        if len(changes) > 50:
            raise ValidationError("Too many settings in one change.")
        current = load_settings(self._layout)
        if "embedding_model" in changes and changes["embedding_model"] != current.embedding_model:
            try:
                check_embedding_model(str(changes["embedding_model"]), self._layout)
            except EmbeddingModelError as exc:  # shown like every other invalid setting
                raise SettingsError(exc.message) from exc
        return update_settings(changes, self._layout).model_dump()

    @bridge_method
    def list_jobs(self) -> list[dict[str, Any]]:
        return [record.to_dict() for record in self._jobs.list()]

    @bridge_method
    def cancel_job(self, job_id: Identifier) -> dict[str, Any]:
        return self._jobs.cancel(job_id).to_dict()

    @bridge_method
    def poll_events(self, cursor: int, timeout: float = 0.0) -> dict[str, Any]:
        """Long poll: events after ``cursor``; waits up to ``timeout`` seconds for the first one."""
        events, new_cursor = self._events.since(max(cursor, 0), timeout=min(max(timeout, 0.0), MAX_POLL_SECONDS))
        return {"events": events, "cursor": new_cursor}
