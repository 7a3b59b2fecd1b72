"""The one normalised shape every importer produces, and the errors they raise."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from backend.errors import NotFoundError, OrchMindError, ValidationError

# What an import stores from the same file changes when the importers' rules or the chunking change;
# it is part of every conversation's content hash, so a re-import after an upgrade rewrites them all.
STORED_FORMAT = 2  # 2: tool calls kept out of memory, canvases and artifacts as documents, markup cleaned, token chunks


class ImportFormatError(OrchMindError):
    """The input is not what it claims to be; the message names the problem and the file."""

    code = "bad_import"


class MissingInput(NotFoundError, ImportFormatError):
    pass


class BadImportOption(ValidationError, ImportFormatError):
    pass


@dataclass(frozen=True)
class ImportedMessage:
    external_id: str
    role: str  # user | assistant | system | tool | note
    text: str
    content_type: str
    created_at: datetime | None = None
    model: str | None = None
    searchable: bool = True  # becomes memory chunks
    trainable: bool = True  # may become training data (the user's or the assistant's own voice)
    on_active_branch: bool = True


@dataclass
class ImportedConversation:
    source_kind: str  # chatgpt | claude | notes
    external_id: str
    title: str
    created_at: datetime | None
    updated_at: datetime | None
    messages: list[ImportedMessage] = field(default_factory=list)
    skipped_messages: int = 0  # malformed nodes left out (counted in the import's result)

    def content_hash(self) -> str:
        """Stable hash of everything we store: unchanged conversations are skipped on re-import."""
        payload = {
            "format": STORED_FORMAT,
            "title": self.title,
            "messages": [
                {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(m).items()}
                for m in self.messages
            ],
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def timestamp(value: object) -> datetime | None:
    """Exports use epoch floats (ChatGPT) or ISO strings (Claude); stored as naive UTC. Junk -> None."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if parsed.tzinfo is not None:
                parsed = parsed.astimezone(UTC).replace(tzinfo=None)
            return parsed
        return datetime.fromtimestamp(float(value), tz=UTC).replace(tzinfo=None)  # type: ignore[arg-type]
    except (ValueError, OverflowError, OSError, TypeError):
        return None


def as_dict(value: object) -> dict:
    """``value`` if it is a JSON object, else an empty one: exports are read defensively."""
    return value if isinstance(value, dict) else {}


def as_list(value: object) -> list:
    return value if isinstance(value, list) else []


def as_text(value: object, default: str = "") -> str:
    """A string field, or ``default`` for anything else (numbers, objects, null)."""
    return value if isinstance(value, str) else default
