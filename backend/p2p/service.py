"""The network as the app sees it: rooms, shared adapters, peers' catalogs and downloads.

State that must survive restarts lives in the data dir (``p2p/shares.json``, ``p2p/downloads.json``,
``p2p/rooms.json``, the identity seed, the sidecar's corestore); the sidecar holds none of it and is
replayed into after a restart. A download is only ever of an entry a peer sent in a room we share,
whose signature verified; its bytes are Merkle-checked by Hypercore against the signed core key,
written into a staging folder by file names from our allow-list, then hash-, header-, shape- and
value-checked (backend/p2p/verify.py) before it is moved into the adapter store.
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from backend.config import DataLayout, atomic_write_text, load_settings
from backend.errors import NotFoundError, OrchMindError, ValidationError
from backend.p2p.catalog import BLOCK_SIZE, CatalogEntry, sign_entry, verify_entry
from backend.p2p.identity import Identity, load_identity
from backend.p2p.local_bases import local_bases
from backend.p2p.rooms import PUBLIC_ROOM, Room, RoomBook, new_invite_code, room_from_invite
from backend.p2p.sidecar import SidecarProcess
from backend.p2p.verify import MAX_FILE_BYTES, VerificationError, accept_adapter
from backend.training.adapters import AdapterManifest, AdapterStore, validate_adapter_name

log = logging.getLogger("orch_mind.p2p")
Event = dict[str, Any]
MAX_DOWNLOAD_BYTES = 1024 * 1024**2
MAX_DOWNLOAD_FILES = 3


class P2PError(OrchMindError):
    code = "p2p"


@dataclass
class PeerView:
    key: str
    rooms: list[str] = field(default_factory=list)
    entries: dict[str, CatalogEntry] = field(default_factory=dict)
    rejected: int = 0
    joined_at: float = field(default_factory=time.time)


def _load_json(path: Any, default: Any) -> Any:
    try:
        return json.loads(path.read_text()) if path.exists() else default
    except json.JSONDecodeError:
        log.error("%s is damaged; starting it afresh.", path)
        return default


class P2PService:
    def __init__(self, layout: DataLayout | None = None, *, bootstrap: list[str] | None = None,
                 host: str | None = None) -> None:
        self.layout = layout or DataLayout.current()
        settings = load_settings(self.layout)
        self.bootstrap = bootstrap if bootstrap is not None else list(settings.p2p_bootstrap)
        self.host = host if host is not None else settings.p2p_host
        self.identity: Identity = load_identity(self.layout)
        self.rooms = RoomBook(self.layout)
        self.adapters = AdapterStore(self.layout)
        self._state = self.layout.p2p_dir
        self._lock = threading.RLock()
        self._peers: dict[str, PeerView] = {}
        self._listeners: list[Callable[[Event], None]] = []
        self._changed = threading.Condition(self._lock)
        self._sidecar: SidecarProcess | None = None
        self.public_key = self.identity.public_key

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._sidecar = SidecarProcess(self._on_event, on_restart=self._replay)
        self._sidecar.start()
        try:
            self._replay()
        except BaseException:
            self.stop()
            raise

    @property
    def online(self) -> bool:
        return self._sidecar is not None

    def stop(self) -> None:
        if self._sidecar is not None:
            self._sidecar.close()
            self._sidecar = None

    def __enter__(self) -> "P2PService":
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
        with self._lock:
            self._peers.clear()
        blocked = list(self._blocked())
        bootstrap = [{"host": h, "port": int(p)} for h, _, p in (b.rpartition(":") for b in self.bootstrap)] or None
        self._call("start", seed=self.identity.seed.hex(), storage=str(self._state / "corestore"),
                   bootstrap=bootstrap, host=self.host or None, blocked=blocked)
        for room in self.rooms.list():
            self._call("join", roomId=room.id, secret=room.secret)
        for name, share in self._shares().items():
            self._call("seed", name=share["core_name"], files=self._share_files(name, share), blockSize=BLOCK_SIZE)
        for key in _load_json(self._state / "kept.json", []):
            self._call("open", key=key)
        self._publish_catalog()
        for download_id, record in self._downloads().items():
            if record["state"] == "active":
                self._start_fetch(download_id, record)
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
            self._call("join", roomId=room.id, secret=room.secret)
        return room

    def leave_room(self, room_id: str) -> None:
        self.rooms.remove(room_id)
        shares = self._shares()
        for share in shares.values():
            share["rooms"] = [r for r in share["rooms"] if r != room_id]
        self._save_shares(shares)
        if self._sidecar is not None:
            self._call("leave", roomId=room_id)
            self._publish_catalog()

    def list_rooms(self) -> list[dict[str, Any]]:
        return [room.public_view() for room in self.rooms.list()]

    # ------------------------------------------------------------------ sharing

    def _shares(self) -> dict[str, dict[str, Any]]:
        return _load_json(self._state / "shares.json", {})

    def _save_shares(self, shares: dict[str, dict[str, Any]]) -> None:
        atomic_write_text(self._state / "shares.json", json.dumps(shares, indent=2))

    def _share_files(self, name: str, share: dict[str, Any]) -> list[str]:
        folder = self.adapters.path(name)
        return [str(folder / file_name) for file_name in share["entry"]["transfer"]["order"]]

    def share(self, adapter: str, rooms: list[str] | None = None) -> dict[str, Any]:
        """Offer one of my adapters in some rooms (default: every room I am in)."""
        manifest = self.adapters.get(adapter)
        joined = {room.id for room in self.rooms.list()}
        chosen = list(rooms) if rooms else sorted(joined)
        if not chosen:
            raise P2PError("Join a room first: `orch-mind p2p rooms join public` or an invite code.", code="no_room")
        if set(chosen) - joined:
            raise ValidationError(f"You are not in room(s) {sorted(set(chosen) - joined)}.")
        folder = self.adapters.path(adapter)
        for name, record in manifest.files.items():
            path = folder / name
            if not path.is_file() or path.stat().st_size != record["size"]:
                raise P2PError(f"{adapter}/{name} does not match its manifest; export the adapter again.")
        shares = self._shares()
        previous = shares.get(adapter)
        core_name = previous["core_name"] if previous else f"adapter/{adapter}/{secrets.token_hex(8)}"
        order = sorted(manifest.files)
        seeded = self._call("seed", name=core_name, files=[str(folder / n) for n in order], blockSize=BLOCK_SIZE, timeout=600)
        entry = sign_entry(self.identity, manifest, seeded["key"], BLOCK_SIZE)
        shares[adapter] = {"core_name": core_name, "rooms": chosen, "entry": entry.to_wire()}
        self._save_shares(shares)
        self._publish_catalog()
        return {"adapter": adapter, "rooms": chosen, "core": seeded["key"], "bytes": seeded["byteLength"]}

    def unshare(self, adapter: str) -> None:
        shares = self._shares()
        share = shares.pop(adapter, None)
        if share is None:
            raise NotFoundError(f"{adapter!r} is not shared.")
        self._save_shares(shares)
        if self._sidecar is not None:
            self._publish_catalog()
            self._call("unseed", key=share["entry"]["transfer"]["core"])

    def my_shares(self) -> list[dict[str, Any]]:
        return [{"adapter": name, "rooms": share["rooms"], "core": share["entry"]["transfer"]["core"]}
                for name, share in self._shares().items()]

    def _publish_catalog(self) -> None:
        items = [{"rooms": share["rooms"], "entry": share["entry"]} for share in self._shares().values()]
        self._call("set_catalog", items=items)

    # ------------------------------------------------------------------ peers and browsing

    def _blocked(self) -> set[str]:
        return set(_load_json(self._state / "blocked.json", []))

    def block(self, peer: str) -> None:
        """The firewall hook: this peer can no longer connect, now or after restarts."""
        blocked = self._blocked() | {peer}
        atomic_write_text(self._state / "blocked.json", json.dumps(sorted(blocked)))
        if self._sidecar is not None:
            self._call("block", key=peer)

    def peers(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{"peer": p.key, "rooms": p.rooms, "adapters": len(p.entries), "rejected": p.rejected}
                    for p in self._peers.values()]

    def browse(self, compatible_only: bool = False) -> list[dict[str, Any]]:
        bases = local_bases(self.layout)
        rows = []
        with self._lock:
            for peer in self._peers.values():
                for entry in peer.entries.values():
                    compatible = entry.manifest.base["sha256"] in bases
                    if compatible_only and not compatible:
                        continue
                    rows.append(self._entry_row(peer, entry, compatible))
        return sorted(rows, key=lambda row: (row["name"], row["peer"]))

    @staticmethod
    def _entry_row(peer: PeerView, entry: CatalogEntry, compatible: bool) -> dict[str, Any]:
        m = entry.manifest
        return {"peer": peer.key, "rooms": peer.rooms, "name": m.name, "description": m.description,
                "base": m.base, "rank": m.rank, "target_modules": m.target_modules, "metrics": m.metrics,
                "created_at": m.created_at, "author": entry.author, "first_hand": entry.author == peer.key,
                "bytes": sum(int(f["size"]) for f in m.files.values()), "compatible": compatible,
                "id": entry.entry_id}

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

    def _downloads(self) -> dict[str, dict[str, Any]]:
        return _load_json(self._state / "downloads.json", {})

    def _save_download(self, download_id: str, record: dict[str, Any] | None) -> None:
        with self._lock:
            downloads = self._downloads()
            if record is None:
                downloads.pop(download_id, None)
            else:
                downloads[download_id] = record
            atomic_write_text(self._state / "downloads.json", json.dumps(downloads, indent=2))

    def list_downloads(self) -> list[dict[str, Any]]:
        return [{"id": i, **{k: v for k, v in r.items() if k != "entry"}} for i, r in self._downloads().items()]

    def download(self, peer: str, adapter: str, save_as: str | None = None) -> str:
        """Start fetching ``adapter`` from ``peer``'s catalog; returns the download id."""
        with self._lock:
            view = self._peers.get(peer) or next((p for p in self._peers.values() if p.key.startswith(peer) and len(peer) >= 8), None)
            entry = next((e for e in view.entries.values() if e.manifest.name == adapter), None) if view else None
        if entry is None:
            raise NotFoundError(f"Peer {peer[:16]} does not offer an adapter called {adapter!r} (try `p2p browse`).")
        name = validate_adapter_name(save_as or entry.manifest.name)
        if self.adapters.path(name).exists():
            raise P2PError(f"You already have an adapter called {name!r}; pass another name to save it as.", code="exists")
        total = sum(size for _, size in entry.file_plan())
        if total > MAX_DOWNLOAD_BYTES or len(entry.order) > MAX_DOWNLOAD_FILES:
            raise VerificationError(f"{adapter} is {total / 1e6:.0f} MB in {len(entry.order)} files, over the limits.")
        if entry.manifest.base["sha256"] not in local_bases(self.layout):
            raise P2PError(f"{adapter} was trained on a base model you do not have "
                           f"({entry.manifest.base.get('reference') or entry.manifest.base['sha256'][:12]}).",
                           code="incompatible")
        download_id = entry.entry_id
        record = {"peer": view.key, "name": name, "state": "active", "entry": entry.to_wire(),
                  "blocks": 0, "total": -(-total // entry.block_size), "error": None, "started_at": time.time()}
        self._save_download(download_id, record)
        self._start_fetch(download_id, record)
        return download_id

    def _staging(self, download_id: str) -> Any:
        return self.layout.staging_dir / download_id

    def _start_fetch(self, download_id: str, record: dict[str, Any]) -> None:
        entry = verify_entry(record["entry"])
        staging = self._staging(download_id)
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        files = [{"path": str(staging / name), "size": size} for name, size in entry.file_plan()]
        for name, size in entry.file_plan():
            if size > MAX_FILE_BYTES[name]:
                raise VerificationError(f"{name} is over its size limit.")
        self._call("fetch", id=download_id, key=entry.core_key, files=files, blockSize=entry.block_size)

    def pause(self, download_id: str) -> None:
        record = self._require_download(download_id)
        self._call("pause", id=download_id)
        record["state"] = "paused"
        self._save_download(download_id, record)
        self._emit({"event": "download-paused", "id": download_id})

    def resume(self, download_id: str) -> None:
        record = self._require_download(download_id)
        record["state"], record["error"] = "active", None
        self._save_download(download_id, record)
        self._start_fetch(download_id, record)

    def cancel(self, download_id: str) -> None:
        self._require_download(download_id)
        try:
            self._call("pause", id=download_id)
        finally:
            shutil.rmtree(self._staging(download_id), ignore_errors=True)
            self._save_download(download_id, None)

    def _require_download(self, download_id: str) -> dict[str, Any]:
        record = self._downloads().get(download_id)
        if record is None:
            raise NotFoundError(f"No download {download_id!r}.")
        return record

    def wait_download(self, download_id: str, timeout: float = 300.0) -> dict[str, Any]:
        done = self.wait_for(lambda: self._downloads().get(download_id, {}).get("state") in ("done", "failed"), timeout)
        record = self._downloads().get(download_id, {})
        if not done:
            raise P2PError(f"Download {download_id} did not finish within {timeout:.0f} s.", code="timeout")
        return record

    def _finish_download(self, download_id: str, failure: str | None) -> None:
        record = self._downloads().get(download_id)
        if record is None or record["state"] != "active":
            return
        entry = verify_entry(record["entry"])
        record["transferred_at"] = time.time()  # the bytes are here; verification starts
        try:
            if failure:
                raise P2PError(f"The transfer failed: {failure}")
            bases = local_bases(self.layout)
            reference = bases.get(entry.manifest.base["sha256"])
            if reference is None:
                raise P2PError("The base model this adapter needs is no longer on this machine.", code="incompatible")
            from backend.training.base_models import resolve_base

            base = resolve_base(reference, self.layout)
            manifest = AdapterManifest(**{**entry.manifest.to_dict(), "name": record["name"],
                                          "base": {**entry.manifest.base, "reference": reference},
                                          "provenance": {**entry.manifest.provenance, "downloaded_from": entry.author}})
            accept_adapter(self.layout, self._staging(download_id), manifest, base.hf_dir, base.sha256)
        except OrchMindError as exc:
            shutil.rmtree(self._staging(download_id), ignore_errors=True)
            record.update(state="failed", error=exc.message, code=exc.code)
            self._save_download(download_id, record)
            self._emit({"event": "download-failed", "id": download_id, "error": exc.message, "code": exc.code})
            return
        kept = _load_json(self._state / "kept.json", [])
        if entry.core_key not in kept:  # keep serving what we downloaded, so others can fetch it from us
            atomic_write_text(self._state / "kept.json", json.dumps(kept + [entry.core_key]))
        record.update(state="done", blocks=record["total"], finished_at=time.time())
        self._save_download(download_id, record)
        self._emit({"event": "download-done", "id": download_id, "adapter": record["name"]})

    # ------------------------------------------------------------------ sidecar events

    def _on_event(self, event: Event) -> None:
        kind = event.get("event")
        peer_key = str(event.get("peer", ""))
        with self._changed:
            if kind == "peer-join":
                self._peers.setdefault(peer_key, PeerView(peer_key))
            elif kind == "peer-leave":
                self._peers.pop(peer_key, None)
            elif kind == "peer-rooms":
                view = self._peers.setdefault(peer_key, PeerView(peer_key))
                view.rooms = [str(r) for r in event.get("rooms", [])]
                if not view.rooms:
                    view.entries.clear()
            elif kind == "catalog":
                self._accept_catalog(peer_key, event)
            self._changed.notify_all()
        if kind == "download-progress":
            record = self._downloads().get(str(event.get("id")))
            if record and record["state"] == "active":
                record["blocks"] = int(event.get("blocks", 0))
                self._save_download(str(event["id"]), record)
        if kind in ("download-done", "download-error"):
            threading.Thread(target=self._finish_and_notify, args=(str(event["id"]), event.get("error")),
                             daemon=True).start()
            return
        self._emit(event)

    def _finish_and_notify(self, download_id: str, failure: str | None) -> None:
        self._finish_download(download_id, failure)
        with self._changed:
            self._changed.notify_all()

    def _accept_catalog(self, peer_key: str, event: Event) -> None:
        view = self._peers.setdefault(peer_key, PeerView(peer_key))
        entries: dict[str, CatalogEntry] = {}
        for raw in event.get("entries", []):
            try:
                entry = verify_entry(raw)
            except VerificationError as exc:
                view.rejected += 1
                log.warning("Rejected a catalog entry from %s: %s", peer_key[:12], exc.message)
                continue
            entries[entry.entry_id] = entry
        view.entries = entries
        view.rooms = [str(r) for r in event.get("rooms", [])]

    def _emit(self, event: Event) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("A P2P listener failed")
