"""Rooms: the public community room and private rooms joined by invite code.

An invite code carries 128 random bits and a 32-bit checksum (base32, grouped for reading aloud),
so a mistyped or made-up code is refused instead of silently opening a new, empty room (codes
without a checksum, ``om1-``, are refused for the same reason). The code is the room secret: the sidecar derives the swarm topic from it with a keyed hash and proves membership to each
peer with a MAC bound to both connection keys, so neither the code nor anything replayable goes on
the wire. Rooms are saved with 0600 permissions because a private room's code is a secret.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from backend.config import DataLayout
from backend.errors import NotFoundError, OrchMindError, ValidationError
from backend.p2p.state import StateFile

PUBLIC_ROOM_ID = "public"
PUBLIC_ROOM_SECRET = hashlib.blake2b(b"orch-mind/public-room/v1", digest_size=32).hexdigest()
INVITE_PREFIX = "om2"
INVITE_BYTES = 16
CHECKSUM_BYTES = 4
_INVITE = re.compile(r"^[A-Z2-7]{32}\Z")


class RoomError(OrchMindError):
    code = "room"


class BadInvite(ValidationError, RoomError):
    code = "bad_invite"


class UnknownRoom(NotFoundError, RoomError):
    pass


@dataclass(frozen=True)
class Room:
    id: str
    name: str
    kind: str  # "public" | "private"
    secret: str  # 32 bytes hex, the key the sidecar derives topic and proofs from

    def public_view(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "kind": self.kind}


def _checksum(raw: bytes) -> bytes:
    return hashlib.blake2b(raw, digest_size=CHECKSUM_BYTES, person=b"orch-mind-invite").digest()


def new_invite_code() -> str:
    raw = secrets.token_bytes(INVITE_BYTES)
    text = base64.b32encode(raw + _checksum(raw)).decode()
    return INVITE_PREFIX + "-" + "-".join(text[i : i + 4] for i in range(0, len(text), 4))


def room_from_invite(code: str, name: str = "") -> Room:
    """The room an invite code opens; dashes, spaces and case do not matter (codes get retyped)."""
    text = re.sub(r"[\s-]", "", code.strip().upper())
    if text.startswith("OM1"):
        raise BadInvite("This invite code is from an older Orch-Mind and cannot be checked for typos; "
                        "ask the room's creator for a new code (it starts with om2-).")
    letters = text[3:] if text.startswith(INVITE_PREFIX.upper()) else text
    if not _INVITE.match(letters):
        raise BadInvite("That is not an Orch-Mind invite code (it looks like om2- followed by 8 groups of 4 letters "
                        "and digits).")
    decoded = base64.b32decode(letters)
    raw, checksum = decoded[:INVITE_BYTES], decoded[INVITE_BYTES:]
    if not secrets.compare_digest(checksum, _checksum(raw)):
        raise BadInvite("That invite code has a typo (its check letters do not match); copy it again from the "
                        "person who invited you.")
    secret = hashlib.blake2b(raw, digest_size=32, person=b"orch-mind-room").hexdigest()
    room_id = hashlib.blake2b(bytes.fromhex(secret), digest_size=8, person=b"orch-mind-rid").hexdigest()
    return Room(id=room_id, name=(name.strip() or f"Private {room_id[:6]}")[:60], kind="private", secret=secret)


PUBLIC_ROOM = Room(id=PUBLIC_ROOM_ID, name="Community", kind="public", secret=PUBLIC_ROOM_SECRET)


class RoomBook:
    """The rooms this user has joined, persisted in ``p2p/rooms.json`` (0600: it holds the room secrets)."""

    def __init__(self, layout: DataLayout | None = None) -> None:
        self._file: StateFile[list[Room]] = StateFile(
            layout or DataLayout.current(), "rooms", list[Room], list,
            "move it aside and join your rooms again (ask their creators for new invite codes).")
        self.path: Path = self._file.path

    def list(self) -> list[Room]:
        return self._file.load()

    def get(self, room_id: str) -> Room:
        for room in self.list():
            if room.id == room_id:
                return room
        raise UnknownRoom(f"You are not in a room with id {room_id!r}.")

    def add(self, room: Room) -> Room:
        rooms = [r for r in self.list() if r.id != room.id] + [room]
        self._file.save(rooms)
        return room

    def remove(self, room_id: str) -> None:
        self.get(room_id)
        self._file.save([r for r in self.list() if r.id != room_id])
