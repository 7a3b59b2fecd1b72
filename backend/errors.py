"""Domain errors: subsystem classes say *where*, category classes say *what*.

Each subsystem has its own ``OrchMindError`` subclass (``MergeError``, ``RoomError`` …). What went
wrong is a small set of categories (``ValidationError``, ``NotFoundError``, ``AlreadyExists``,
``Incompatible``, ``NoData``, ``Unavailable``, ``TimedOut``, ``CancelledError``); a raise site that is
both uses a class deriving from the category first and the subsystem second, so its ``code`` is the
category's and ``isinstance`` answers both questions::

    class IncompatibleAdapters(Incompatible, MergeError): ...

The code is a class attribute, never a constructor argument: the edges (bridge, CLI, job runner,
engine) map classes to HTTP statuses and translated messages, and one raise cannot contradict its class.
Only the edges turn these into messages; code in between never catches a broad Exception and carries on.
"""

from __future__ import annotations

from typing import Any


class OrchMindError(Exception):
    """An error whose message is meant for the user: it says what went wrong and what to do."""

    code: str = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def field_problems(error: Any, whole: str = "value", skip: tuple[str, ...] = (), limit: int = 5) -> str:
    """A pydantic ``ValidationError`` as one line a person can act on: which field, what is wrong with it
    (``whole`` names the thing when the problem is not in one field; ``skip`` drops wrapper locations)."""
    parts = []
    for item in error.errors()[:limit]:
        where = ".".join(str(p) for p in item["loc"] if p not in skip) or whole
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


# ----------------------------------------------------------------- categories: what went wrong

class ValidationError(OrchMindError):
    """The request itself is wrong (a bad name, value or option): fix the input and try again."""

    code = "invalid_argument"


class NotFoundError(OrchMindError):
    """The thing asked for does not exist (here, or any more)."""

    code = "not_found"


class AlreadyExists(OrchMindError):
    """A name is taken: pick another or remove the existing one."""

    code = "exists"


class Incompatible(OrchMindError):
    """Two things that must match do not (e.g. an adapter and a base model)."""

    code = "incompatible"


class NoData(OrchMindError):
    """There is nothing to work on yet (e.g. no conversations to train on)."""

    code = "no_data"


class Unavailable(OrchMindError):
    """Something the request needs is not running or not reachable right now."""

    code = "unavailable"


class TimedOut(OrchMindError):
    code = "timeout"


class CancelledError(OrchMindError):
    code = "cancelled"


CATEGORIES: tuple[type[OrchMindError], ...] = (
    ValidationError, NotFoundError, AlreadyExists, Incompatible, NoData, Unavailable, TimedOut, CancelledError)


class EngineUnreachable(Unavailable):
    """The model engine (Ollama or the embedded one) does not answer."""

    code = "engine_unreachable"


class MissingPackage(NotFoundError):
    """A file or package the app ships with is missing: reinstall (make does)."""

    code = "missing_package"


# ----------------------------------------------------------------- subsystems without a module of their own

class SettingsError(OrchMindError):
    code = "invalid_settings"


class JobError(OrchMindError):
    code = "job_failed"


class ReportedError(JobError):
    """An error a helper process (the trainer) raised and reported as an event: its class stayed in
    that process, so its code crosses the process boundary as data."""

    def __init__(self, message: str, reported_code: str) -> None:
        super().__init__(message)
        self.code = reported_code
