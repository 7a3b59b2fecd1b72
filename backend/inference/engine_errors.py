"""Errors a model engine (a real Ollama daemon or our embedded one) answered with, as domain errors.

The official client raises ``ollama.ResponseError`` (an HTTP error with the engine's message) and
``ConnectionError`` (its own actionable "is Ollama running?" text); callers turn them into these so
the edges show the engine's words with a stable code.
"""

from __future__ import annotations

from typing import Any

from backend.errors import EngineUnreachable, NotFoundError, OrchMindError


class EngineError(OrchMindError):
    """The engine failed or refused a request (ours while loading or generating, or one answering
    over HTTP); the message says why."""

    code = "engine"


class EngineNotFound(NotFoundError, EngineError):
    pass


def engine_error(exc: Exception) -> OrchMindError:
    """The domain error for what the ollama client raised (a ResponseError or a ConnectionError)."""
    if isinstance(exc, ConnectionError):
        return EngineUnreachable(str(exc))
    status: Any = getattr(exc, "status_code", None)
    message = str(getattr(exc, "error", None) or exc)
    return EngineNotFound(message) if status == 404 else EngineError(message)
