"""The network's state files, typed: what is shared, what is being downloaded, what we keep serving.

Each file is one pydantic shape, written atomically. One damage policy for all of them: a file that
does not parse raises ``P2PStateError`` naming the file and what to do (the app shows it; nothing is
silently reset, because a reset would forget downloads in flight or stop serving shares).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from backend.config import DataLayout, atomic_write_text
from backend.errors import OrchMindError, field_problems

T = TypeVar("T")
HexKey = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class P2PStateError(OrchMindError):
    code = "p2p_state"


class ShareRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    core_name: str = Field(max_length=200)
    rooms: list[str]
    entry: dict[str, Any]  # the signed entry as sent (verified again whenever it is used)
    encryption_key: HexKey | None = None  # private rooms only


DownloadState = Literal["active", "paused", "done", "failed"]


class SlowHolder(BaseModel):
    model_config = ConfigDict(extra="forbid")

    peer: str
    bytes_per_s: int


class DownloadRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    peer: str
    name: str
    state: DownloadState
    entry: dict[str, Any]
    rooms: list[str] = Field(default_factory=list)  # where the offer came from: a private one is asked only there
    blocks: int = 0
    total: int
    error: str | None = None
    code: str | None = None
    slow_holder: SlowHolder | None = None  # the last holder that was too slow and was replaced (shown while it runs)
    started_at: float
    transferred_at: float | None = None
    finished_at: float | None = None

    def public(self, download_id: str) -> dict[str, Any]:
        return {"id": download_id, **self.model_dump(exclude={"entry"})}


class StateFile(Generic[T]):
    """``p2p/<name>.json`` holding a ``T``; ``what_to_do`` finishes the damage message."""

    def __init__(self, layout: DataLayout, name: str, shape: Any, default: Callable[[], T], what_to_do: str) -> None:
        self.path = layout.p2p_file(name)
        self._adapter: TypeAdapter[T] = TypeAdapter(shape)
        self._default = default
        self._what_to_do = what_to_do

    def load(self) -> T:
        if not self.path.exists():
            return self._default()
        try:
            return self._adapter.validate_json(self.path.read_bytes())
        except PydanticValidationError as exc:
            problem = field_problems(exc, "the file", limit=1)
            raise P2PStateError(f"{self.path} is damaged ({problem}); {self._what_to_do}") from exc

    def save(self, value: T) -> None:
        atomic_write_text(self.path, self._adapter.dump_json(value, indent=2).decode())


def shares_file(layout: DataLayout) -> StateFile[dict[str, ShareRecord]]:
    return StateFile(layout, "shares", dict[str, ShareRecord], dict,
                     "move it aside and share your adapters again (`orch-mind p2p share NAME`).")


def downloads_file(layout: DataLayout) -> StateFile[dict[str, DownloadRecord]]:
    return StateFile(layout, "downloads", dict[str, DownloadRecord], dict,
                     "move it aside; downloads in progress will have to be started again.")


def key_list_file(layout: DataLayout, name: Literal["kept", "blocked"]) -> StateFile[list[str]]:
    what = {"kept": "move it aside; adapters you downloaded are then no longer served to others until re-shared.",
            "blocked": "move it aside and block those peers again."}[name]
    return StateFile(layout, name, list[HexKey], list, what)
