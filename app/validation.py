"""Argument validation for everything that crosses from the UI into Python.

The UI is treated as untrusted input: in browser mode any local page could try to call us, and
imported or peer-supplied text is rendered in it. Every bridge method is validated in strict mode
(no silent coercion of "5" to 5), strings are size-capped, and paths are confined to a root.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, ConfigDict, StringConstraints, validate_call
from pydantic import ValidationError as PydanticValidationError

from backend.errors import OrchMindError, ValidationError, field_problems

log = logging.getLogger("orch_mind.bridge")

F = TypeVar("F", bound=Callable[..., Any])

ShortText = Annotated[str, StringConstraints(max_length=200)]
Query = Annotated[str, StringConstraints(min_length=1, max_length=2_000)]
LongText = Annotated[str, StringConstraints(max_length=100_000)]
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]
RelativePath = Annotated[str, StringConstraints(min_length=1, max_length=500)]


def _model_name(value: str) -> str:
    """A model name a chat may use (``config.CHAT_MODEL_NAME``), checked where it is stored."""
    from backend.config import CHAT_MODEL_NAME

    if not re.fullmatch(CHAT_MODEL_NAME, value) or ".." in value:
        raise ValueError(f"{value[:80]!r} is not a model name (letters, digits, '.', '_', '-', an optional namespace and :tag)")
    return value


ModelName = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(_model_name)]

EXPOSED_ATTRIBUTE = "__orch_bridge_exposed__"


def describe_validation_error(error: PydanticValidationError) -> str:
    return "Invalid argument: " + field_problems(error, "argument", skip=("args", "kwargs"), limit=20)


def bridge_method(function: F) -> F:
    """Mark ``function`` as callable from the UI, validate its arguments, and shape its answer.

    Every answer is ``{"ok": true, "data": ...}`` or ``{"ok": false, "error": {"code", "message"}}``:
    the UI never sees a Python traceback (it goes to the log instead).
    """
    # NaN and Infinity are refused as numbers: nothing the UI sends means them.
    validated = validate_call(function, config=ConfigDict(strict=True, arbitrary_types_allowed=True, allow_inf_nan=False))
    signature = inspect.signature(function)

    @functools.wraps(function)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            signature.bind(self, *args, **kwargs)  # the call's shape, before validate_call checks the values
        except TypeError as exc:
            return {"ok": False, "error": {"code": "invalid_argument", "message": f"Invalid call to {function.__name__}: {exc}"}}
        try:
            return {"ok": True, "data": validated(self, *args, **kwargs)}
        except PydanticValidationError as exc:
            return {"ok": False, "error": {"code": "invalid_argument", "message": describe_validation_error(exc)}}
        except OrchMindError as exc:
            return {"ok": False, "error": exc.to_dict()}
        except Exception:  # noqa: BLE001 - the UI edge: log the traceback, show a stable message
            log.exception("bridge method %s failed", function.__name__)
            return {
                "ok": False,
                "error": {"code": "internal_error", "message": "Something went wrong inside Orch-Mind; details are in the log."},
            }

    setattr(wrapper, EXPOSED_ATTRIBUTE, True)
    return wrapper  # type: ignore[return-value]


def exposed_methods(api: object) -> dict[str, Callable[..., dict[str, Any]]]:
    """The bridge methods of ``api`` by name: the only things the UI may call."""
    methods = {}
    for name in dir(type(api)):
        if name.startswith("_"):
            continue
        attribute = getattr(type(api), name)
        if callable(attribute) and getattr(attribute, EXPOSED_ATTRIBUTE, False):
            methods[name] = getattr(api, name)
    return methods


def confined_path(root: Path, user_path: str) -> Path:
    """Resolve ``user_path`` inside ``root`` or raise: no absolute paths, no ``..`` escapes, no links out."""
    if "\x00" in user_path:
        raise ValidationError("The path contains a NUL character.")
    candidate = Path(user_path)
    if candidate.is_absolute() or candidate.drive:
        raise ValidationError(f"Paths must be relative to {root.name}/; got an absolute path.")
    resolved_root = root.resolve()
    resolved = (resolved_root / candidate).resolve()
    if resolved != resolved_root and not resolved.is_relative_to(resolved_root):
        raise ValidationError(f"The path {user_path!r} points outside {root.name}/ and is refused.")
    return resolved


def safe_file_name(name: str, *, max_length: int = 120) -> str:
    """A single path component made only of safe characters, for files whose name comes from outside."""
    base = os.path.basename(name.replace("\\", "/"))
    cleaned = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in base).lstrip(".")
    if not cleaned:
        raise ValidationError("The file name is empty after removing unsafe characters.")
    return cleaned[:max_length]
