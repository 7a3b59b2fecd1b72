"""What I share: each adapter's core, rooms and signed entry, replayed into the sidecar at start.

An adapter shared only in private rooms is seeded as an encrypted core (Hypercore block encryption)
whose key travels in the catalog, which the sidecar sends only to peers who proved membership of one
of those rooms: someone who learns the core key alone downloads ciphertext. Shared in any public room,
the core is plain. Changing between the two seeds a new core and stops serving the old one.
A downloaded adapter carries its original signed entry; sharing it again keeps that author named.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any

from backend.config import DataLayout
from backend.errors import NotFoundError, OrchMindError, ValidationError
from backend.p2p.catalog import BLOCK_SIZE, CatalogEntry, sign_entry, verify_entry
from backend.p2p.identity import Identity
from backend.p2p.rooms import Room
from backend.p2p.state import ShareRecord, shares_file
from backend.p2p.verify import VerificationError
from backend.training.adapters import AdapterStore

Call = Callable[..., Any]
log = logging.getLogger("orch_mind.p2p")


class ShareError(OrchMindError):
    code = "p2p"


class NoRoomJoined(ShareError):
    code = "no_room"


class Shares:
    def __init__(self, layout: DataLayout, identity: Identity, call: Call) -> None:
        self._file = shares_file(layout)
        self._identity = identity
        self._adapters = AdapterStore(layout)
        self._call = call

    def records(self) -> dict[str, ShareRecord]:
        return self._file.load()

    def list(self) -> list[dict[str, Any]]:
        return [{"adapter": name, "rooms": share.rooms, "core": share.entry["transfer"]["core"],
                 "private": share.encryption_key is not None} for name, share in self.records().items()]

    def replay(self) -> None:
        """Seed every share into a fresh sidecar; entries are signed again (deterministic signatures,
        and an entry from an older version is brought up to date). A share whose adapter was deleted
        or no longer matches its manifest is dropped with a warning instead of keeping the network off."""
        shares = self.records()
        for name, share in list(shares.items()):
            try:
                shares[name] = self._seed_and_sign(name, share.core_name, share.rooms, share.encryption_key)
            except (NotFoundError, ShareError) as exc:  # the adapter is gone or changed; not a sidecar hiccup
                log.warning("No longer sharing %s: %s", name, exc.message)
                del shares[name]
        self._file.save(shares)

    def share(self, adapter: str, rooms: list[str] | None, joined: dict[str, Room]) -> dict[str, Any]:
        self._adapters.get(adapter)
        chosen = list(dict.fromkeys(rooms)) if rooms else sorted(joined)
        if not chosen:
            raise NoRoomJoined("Join a room first: `orch-mind p2p rooms join public` or an invite code.")
        if set(chosen) - set(joined):
            raise ValidationError(f"You are not in room(s) {sorted(set(chosen) - set(joined))}.")
        private = all(joined[room].kind == "private" for room in chosen)
        shares = self.records()
        previous = shares.get(adapter)
        if previous is not None and (previous.encryption_key is not None) == private:
            core_name, key = previous.core_name, previous.encryption_key
        else:
            core_name, key = f"adapter/{adapter}/{secrets.token_hex(8)}", secrets.token_hex(32) if private else None
        record = self._seed_and_sign(adapter, core_name, chosen, key)
        shares[adapter] = record
        self._file.save(shares)
        if previous is not None and previous.core_name != core_name:
            self._call("unseed", key=previous.entry["transfer"]["core"])
        return {"adapter": adapter, "rooms": chosen, "core": record.entry["transfer"]["core"],
                "bytes": record.entry["transfer"]["byte_length"], "private": private}

    def unshare(self, adapter: str) -> ShareRecord:
        shares = self.records()
        share = shares.pop(adapter, None)
        if share is None:
            raise NotFoundError(f"{adapter!r} is not shared.")
        self._file.save(shares)
        return share

    def leave_room(self, room_id: str) -> None:
        shares = self.records()
        for share in shares.values():
            share.rooms = [r for r in share.rooms if r != room_id]
        self._file.save(shares)

    def catalog_items(self) -> list[dict[str, Any]]:
        return [{"rooms": share.rooms, "entry": share.entry} for share in self.records().values() if share.rooms]

    def _seed_and_sign(self, adapter: str, core_name: str, rooms: list[str], key: str | None) -> ShareRecord:
        manifest = self._adapters.get(adapter)
        folder = self._adapters.path(adapter)
        for name, record in manifest.files.items():
            path = folder / name
            if not path.is_file() or path.stat().st_size != record["size"]:
                raise ShareError(f"{adapter}/{name} does not match its manifest; export the adapter again.")
        order = sorted(manifest.files)
        seeded = self._call("seed", name=core_name, files=[str(folder / n) for n in order], blockSize=BLOCK_SIZE,
                            encryptionKey=key, timeout=600)
        entry = sign_entry(self._identity, manifest, seeded, BLOCK_SIZE, origin=_origin_of(manifest.provenance), access_key=key)
        return ShareRecord(core_name=core_name, rooms=rooms, entry=entry.to_wire(), encryption_key=key)


def _origin_of(provenance: dict[str, Any]) -> CatalogEntry | None:
    """The original author's signed entry of an adapter we downloaded, if it still verifies."""
    raw = provenance.get("origin_entry")
    if raw is None:
        return None
    try:
        return verify_entry(raw, nested=True)
    except VerificationError:
        return None
