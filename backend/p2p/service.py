"""The network as the app sees it: rooms, shared adapters, peers' catalogs and downloads.

This module owns the sidecar's lifecycle and routes its events; the parts live beside it: what I
share (``shares.py``), what I download (``downloads.py``), whom I see (``peers.py``), the typed state
files (``state.py``). State that must survive restarts lives in the data dir; the sidecar holds none
of it and is replayed into after a restart. A download is only ever of an entry a peer sent in a
room we share, whose signature verified, named by its signed entry id.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from backend.config import DataLayout, load_settings
from backend.errors import OrchMindError, TimedOut, Unavailable
from backend.p2p.catalog_intake import CatalogIntake
from backend.p2p.downloads import Downloads
from backend.p2p.identity import Identity, load_identity
from backend.p2p.local_bases import local_bases
from backend.p2p.peers import PeerDirectory
from backend.p2p.rooms import PUBLIC_ROOM, Room, RoomBook, new_invite_code, room_from_invite
from backend.p2p.shares import Shares
from backend.p2p.sidecar import SidecarProcess, printable
from backend.p2p.sidecar_messages import (
    CatalogArrived,
    DownloadDone,
    DownloadFailed,
    DownloadProgress,
    DownloadSlow,
    PeerJoined,
    PeerLeft,
    PeerMisbehaved,
    PeerRooms,
    SidecarEvent,
)
from backend.p2p.state import DownloadRecord, key_list_file

log = logging.getLogger("orch_mind.p2p")
Event = dict[str, Any]


class P2PError(OrchMindError):
    code = "p2p"


class NotOnline(Unavailable, P2PError):
    code = "offline"


class DownloadTimedOut(TimedOut, P2PError):
    pass


class P2PService:
    def __init__(self, layout: DataLayout | None = None, *, bootstrap: list[str] | None = None,
                 host: str | None = None, stall_seconds: float = 60.0, peer_limits: dict[str, int] | None = None) -> None:
        self.layout = layout or DataLayout.current()
        settings = load_settings(self.layout)
        self.bootstrap = bootstrap if bootstrap is not None else list(settings.p2p_bootstrap)
        self.host = host if host is not None else settings.p2p_host
        self.identity: Identity = load_identity(self.layout)
        self.rooms = RoomBook(self.layout)
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._listeners: list[Callable[[Event], None]] = []
        self._sidecar: SidecarProcess | None = None
        self._intake: CatalogIntake | None = None  # verifies peers' catalogs off the sidecar reader thread
        self._blocked = key_list_file(self.layout, "blocked")
        self.peer_directory = PeerDirectory(self._lock)
        self.shares = Shares(self.layout, self.identity, self._call)
        self.downloads = Downloads(self.layout, self._call, self._emit, stall_seconds=stall_seconds,
                                   our_cores=lambda: {share["core"] for share in self.shares.list()})
        self.public_key = self.identity.public_key
        self._peer_limits = peer_limits  # the sidecar's per-peer limits; only tests change them

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._intake = CatalogIntake(self._on_catalog_verified)
        self._sidecar = SidecarProcess(self._on_event, on_restart=self._replay)
        self._sidecar.start()
        try:
            self._replay()
        except BaseException:
            self.stop()
            raise

    @property
    def sidecar_pid(self) -> int | None:
        return self._sidecar.pid if self._sidecar is not None else None

    @property
    def online(self) -> bool:
        return self._sidecar is not None

    def stop(self) -> None:
        if self._sidecar is not None:
            self._sidecar.close()
            self._sidecar = None
        if self._intake is not None:
            self._intake.stop()
            self._intake = None

    def __enter__(self) -> P2PService:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def subscribe(self, listener: Callable[[Event], None]) -> None:
        self._listeners.append(listener)

    def _call(self, cmd: str, timeout: float = 60.0, **args: Any) -> Any:
        if self._sidecar is None:
            raise P2PError("The network is not started.")
        return self._sidecar.call(cmd, timeout=timeout, **args)

    def _replay(self) -> None:
        """Bring a fresh sidecar to our state: identity, rooms, shares, kept cores, downloads."""
        self.peer_directory.clear()
        bootstrap = [{"host": h, "port": int(p)} for h, _, p in (b.rpartition(":") for b in self.bootstrap)] or None
        self._call("start", seed=self.identity.seed.hex(), storage=str(self.layout.corestore_dir),
                   bootstrap=bootstrap, host=self.host or None, blocked=self._blocked.load(), limits=self._peer_limits)
        for room in self.rooms.list():
            self._call("join", roomId=room.id, secret=room.secret, open=room.kind == "public")
        self.shares.replay()
        for key in self.downloads.kept_cores():
            self._call("open", key=key)
        self.downloads.hold_downloaded()
        self._publish_catalog()
        self.downloads.replay()
        self._emit({"event": "network-ready", "public_key": self.public_key})

    # ------------------------------------------------------------------ rooms

    def join_public(self) -> Room:
        return self._join(PUBLIC_ROOM)

    def create_room(self, name: str = "") -> tuple[Room, str]:
        code = new_invite_code()
        return self._join(room_from_invite(code, name)), code

    def join_room(self, code: str, name: str = "") -> Room:
        return self._join(room_from_invite(code, name))

    def _join(self, room: Room) -> Room:
        self.rooms.add(room)
        if self._sidecar is not None:
            self._call("join", roomId=room.id, secret=room.secret, open=room.kind == "public")
        return room

    def leave_room(self, room_id: str) -> None:
        self.rooms.remove(room_id)
        self.shares.leave_room(room_id)
        if self._sidecar is not None:
            self._call("leave", roomId=room_id)
            self._publish_catalog()

    def list_rooms(self) -> list[dict[str, Any]]:
        return [room.public_view() for room in self.rooms.list()]

    # ------------------------------------------------------------------ sharing

    def share(self, adapter: str, rooms: list[str] | None = None) -> dict[str, Any]:
        """Offer one of my adapters in some rooms (default: every room I am in)."""
        if self._sidecar is None:
            raise NotOnline("Go online first: sharing seeds the adapter to the network.")
        result = self.shares.share(adapter, rooms, {room.id: room for room in self.rooms.list()})
        self._publish_catalog()
        return result

    def unshare(self, adapter: str) -> None:
        share = self.shares.unshare(adapter)
        if self._sidecar is not None:
            self._publish_catalog()
            self._call("unseed", key=share.entry["transfer"]["core"])

    def my_shares(self) -> list[dict[str, Any]]:
        return self.shares.list()

    def _publish_catalog(self) -> None:
        self._call("set_catalog", items=self.shares.catalog_items())

    # ------------------------------------------------------------------ peers and browsing

    def block(self, peer: str) -> None:
        """The firewall hook: this peer can no longer connect, now or after restarts."""
        self._blocked.save(sorted(set(self._blocked.load()) | {peer}))
        if self._sidecar is not None:
            self._call("block", key=peer)

    def peers(self) -> list[dict[str, Any]]:
        return self.peer_directory.list()

    def browse(self, compatible_only: bool = False) -> list[dict[str, Any]]:
        return self.peer_directory.browse(local_bases(self.layout), compatible_only)

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 0.5))
        return True

    # ------------------------------------------------------------------ downloads

    def download(self, entry_id: str, save_as: str | None = None) -> str:
        """Start fetching the adapter a browse row names by ``id`` (or an unambiguous prefix); returns the download id."""
        peer, entry = self.peer_directory.find(entry_id)
        # Where it may be asked for: a private adapter only in the private rooms its offer came through.
        private = {room.id for room in self.rooms.list() if room.kind != "public"}
        rooms = [r for r in self.peer_directory.rooms_of(peer) if entry.access_key is None or r in private]
        return self.downloads.start(peer, entry, save_as, rooms=rooms)

    def list_downloads(self) -> list[dict[str, Any]]:
        return self.downloads.list()

    def pause(self, download_id: str) -> None:
        self.downloads.pause(download_id)

    def resume(self, download_id: str) -> None:
        self.downloads.resume(download_id)

    def cancel(self, download_id: str) -> None:
        self.downloads.cancel(download_id)

    def wait_download(self, download_id: str, timeout: float = 300.0) -> DownloadRecord:
        def settled() -> bool:
            record = self.downloads.get(download_id)
            return record is not None and record.state in ("done", "failed")

        if not self.wait_for(settled, timeout):
            raise DownloadTimedOut(f"Download {download_id} did not finish within {timeout:.0f} s.")
        record = self.downloads.get(download_id)
        assert record is not None
        return record

    # ------------------------------------------------------------------ sidecar events

    def _on_event(self, event: SidecarEvent) -> None:
        outgoing: Event = event.model_dump()
        with self._changed:
            match event:
                case PeerJoined():
                    self.peer_directory.joined(event.peer)
                case PeerLeft():
                    self.peer_directory.left(event.peer)
                    if self._intake is not None:
                        self._intake.forget(event.peer)
                case PeerRooms():
                    self.peer_directory.rooms_changed(event.peer, list(event.rooms))
                case CatalogArrived():  # verified on the intake's thread; the UI hears a summary, never raw entries
                    if self._intake is not None:
                        self._intake.submit(event.peer, list(event.rooms), event.entries, event.rejected)
                    return
                case PeerMisbehaved():
                    log.warning("Dropped peer %s: %s", event.peer[:12], printable(event.reason[:200]))
            self._changed.notify_all()
        match event:
            case DownloadProgress():
                self.downloads.progressed(event.id, event.blocks)
            case DownloadSlow():
                self.downloads.slow_holder(event.id, event.peer, event.bytesPerS)
                return
            case DownloadDone() | DownloadFailed():
                failure, code = (event.error, event.code) if isinstance(event, DownloadFailed) else (None, None)
                hashes = list(event.sha256) if isinstance(event, DownloadDone) else []
                threading.Thread(target=self._finish_and_notify, daemon=True, args=(event.id, failure, code, hashes)).start()
                return
        self._emit(outgoing)

    def _on_catalog_verified(self, peer: str, rooms: list[str], entries: dict[str, Any], rejected: int) -> None:
        with self._changed:
            summary = self.peer_directory.apply_catalog(peer, rooms, entries, rejected)
            self._changed.notify_all()
        if summary is not None:
            self._emit(summary)

    def _finish_and_notify(self, download_id: str, failure: str | None, code: str | None, hashes: list[str]) -> None:
        self.downloads.finish(download_id, failure, code, hashes)
        with self._changed:
            self._changed.notify_all()

    def _emit(self, event: Event) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("A P2P listener failed")
