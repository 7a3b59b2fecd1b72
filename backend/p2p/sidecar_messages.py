"""The sidecar's messages to Python, as types: every line is checked against one of these shapes.

The sidecar validates what peers send before it forwards anything, but this side does not rely on
that: a line that is not one of these messages (an unknown event, a field of the wrong type or size)
is logged and dropped by :class:`backend.p2p.sidecar.SidecarProcess`, never handed on half-read.
Catalog entries stay raw dicts here: :func:`backend.p2p.catalog.verify_entry` checks each one's
shape and signature, and a bad entry is left out on its own.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

from backend.p2p.state import HexKey

RoomId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
DownloadId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16,64}$")]
Count = Annotated[int, Field(ge=0, le=2**53)]
# Free text (an error, a reason) is cut, not refused: a long message must not make an event vanish.
Reason = Annotated[str, AfterValidator(lambda text: text[:2000])]


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)


class Hello(_Message):
    event: Literal["hello"]
    pid: int | None = None
    version: int | None = None


class PeerJoined(_Message):
    event: Literal["peer-join"]
    peer: HexKey


class PeerLeft(_Message):
    event: Literal["peer-leave"]
    peer: HexKey


class PeerRooms(_Message):
    """The rooms this peer proved it shares with us."""

    event: Literal["peer-rooms"]
    peer: HexKey
    rooms: Annotated[list[RoomId], Field(max_length=64)]


class CatalogArrived(_Message):
    """A peer's catalog for the rooms we share; entries the sidecar left out are counted in ``rejected``."""

    event: Literal["catalog"]
    peer: HexKey
    rooms: Annotated[list[RoomId], Field(max_length=64)]
    entries: Annotated[list[dict[str, Any]], Field(max_length=256)]
    rejected: Count = 0


class PeerMisbehaved(_Message):
    event: Literal["peer-misbehaved"]
    peer: HexKey
    reason: Reason = ""


class DownloadProgress(_Message):
    event: Literal["download-progress"]
    id: DownloadId
    blocks: Count
    total: Count = 0
    peers: Count = 0


class DownloadSlow(_Message):
    """A holder sent too little and another is being asked."""

    event: Literal["download-slow"]
    id: DownloadId
    peer: HexKey
    bytesPerS: Count = 0


class DownloadDone(_Message):
    """The files are in staging; ``sha256`` holds each one's hash, in the order of the fetch request."""

    event: Literal["download-done"]
    id: DownloadId
    sha256: Annotated[list[HexKey], Field(max_length=8)] = []


class DownloadFailed(_Message):
    event: Literal["download-error"]
    id: DownloadId
    error: Reason
    code: Annotated[str, StringConstraints(max_length=32)] | None = None


class SidecarRestarted(_Message):
    """Made by the client, not the sidecar: the child died and a new one runs (the owner replays its state)."""

    event: Literal["sidecar-restarted"]
    code: int | None = None
    restarts: Count = 0


class SidecarFailed(_Message):
    """Made by the client: the child keeps crashing and network features are off until the app restarts."""

    event: Literal["sidecar-failed"]
    code: int | None = None


SidecarEvent = Annotated[
    Hello | PeerJoined | PeerLeft | PeerRooms | CatalogArrived | PeerMisbehaved | DownloadProgress | DownloadSlow | DownloadDone
    | DownloadFailed | SidecarRestarted | SidecarFailed,
    Field(discriminator="event"),
]
EVENTS: TypeAdapter[SidecarEvent] = TypeAdapter(SidecarEvent)


class Reply(_Message):
    """The answer to one command, matched to it by ``id``."""

    id: int
    ok: bool
    result: Any = None
    error: Reason = "unknown sidecar error"


def parse_message(message: dict[str, Any]) -> SidecarEvent | Reply:
    """A parsed line as an event or a reply; pydantic's ValidationError (a ValueError) for anything else."""
    if "event" in message:
        return EVENTS.validate_python(message)
    return Reply.model_validate(message)
