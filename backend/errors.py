"""Domain errors: every subsystem raises an OrchMindError subclass with a stable code.

Only the edges (the js_api bridge, the CLI, HTTP servers) turn these into messages; code in
between never catches a broad Exception and carries on.
"""

from __future__ import annotations


class OrchMindError(Exception):
    """An error whose message is meant for the user: it says what went wrong and what to do."""

    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class ValidationError(OrchMindError):
    code = "invalid_argument"


class SettingsError(OrchMindError):
    code = "invalid_settings"


class NotFoundError(OrchMindError):
    code = "not_found"


class JobError(OrchMindError):
    code = "job_failed"


class CancelledError(OrchMindError):
    code = "cancelled"
