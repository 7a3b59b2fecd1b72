"""The peers we are connected to, the rooms we share with each, and their verified catalogs.

Only verified entries are kept (bounded: the sidecar caps a catalog message at 1 MiB and the number of
connections); the UI is told a short summary of each catalog, never the raw entries. Browse rows name
each adapter by its signed entry id, its original author and who shares it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from backend.errors import NotFoundError, ValidationError
from backend.p2p.catalog import MIN_ID_PREFIX, CatalogEntry
from backend.p2p.verify import safe_base

log = logging.getLogger("orch_mind.p2p")


@dataclass
class PeerView:
    key: str
    rooms: list[str] = field(default_factory=list)
    entries: dict[str, CatalogEntry] = field(default_factory=dict)
    rejected: int = 0
    joined_at: float = field(default_factory=time.time)


class PeerDirectory:
    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._peers: dict[str, PeerView] = {}

    def clear(self) -> None:
        with self._lock:
            self._peers.clear()

    def joined(self, key: str) -> None:
        with self._lock:
            self._peers.setdefault(key, PeerView(key))

    def left(self, key: str) -> None:
        with self._lock:
            self._peers.pop(key, None)

    def rooms_changed(self, key: str, rooms: list[str]) -> None:
        with self._lock:
            view = self._peers.setdefault(key, PeerView(key))
            view.rooms = rooms
            if not rooms:
                view.entries.clear()

    def apply_catalog(self, key: str, rooms: list[str], entries: dict[str, CatalogEntry], rejected: int) -> dict[str, Any] | None:
        """Keep a peer's verified entries (``catalog_intake``); the summary the UI is told, or None when
        the peer left while its catalog was being verified."""
        with self._lock:
            view = self._peers.get(key)
            if view is None:
                return None
            view.entries = entries
            view.rooms = rooms
            view.rejected += rejected
        return {"event": "catalog", "peer": key, "rooms": rooms, "adapters": len(entries), "rejected": rejected}

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{"peer": p.key, "rooms": p.rooms, "adapters": len(p.entries), "rejected": p.rejected}
                    for p in self._peers.values()]

    def keys(self) -> set[str]:
        with self._lock:
            return set(self._peers)

    def browse(self, bases: dict[str, str], compatible_only: bool = False) -> list[dict[str, Any]]:
        with self._lock:
            offers = [(peer, entry) for peer in self._peers.values() for entry in peer.entries.values()]
        # The same weights claimed first-hand by two authors: at least one of them is not the author.
        claims = Counter(sha for sha, _ in {(_weights(e), e.original_author) for _, e in offers})
        rows = []
        for peer, entry in offers:
            compatible = entry.manifest.base["sha256"] in bases
            if compatible_only and not compatible:
                continue
            rows.append(_row(peer, entry, compatible, claims[_weights(entry)] > 1))
        return sorted(rows, key=lambda row: (row["name"], row["peer"]))

    def rooms_of(self, key: str) -> list[str]:
        """The rooms a peer proved to share with us (where its offers came from)."""
        with self._lock:
            peer = self._peers.get(key)
            return list(peer.rooms) if peer else []

    def find(self, entry_id: str) -> tuple[str, CatalogEntry]:
        """The entry a download names, by its id or an unambiguous prefix of at least 16 hex digits."""
        prefix = entry_id.strip().lower()
        if len(prefix) < MIN_ID_PREFIX or any(c not in "0123456789abcdef" for c in prefix):
            raise ValidationError(f"Name an adapter by its id (at least {MIN_ID_PREFIX} hex digits, from `p2p browse`).")
        with self._lock:
            matches = {e.entry_id: (p.key, e) for p in self._peers.values() for e in p.entries.values()
                       if e.entry_id.startswith(prefix)}
        if not matches:
            raise NotFoundError(f"No peer offers an adapter with id {prefix} right now (try `p2p browse`).")
        if len(matches) > 1:
            raise ValidationError(f"The id {prefix} matches {len(matches)} adapters; give more of it.")
        return next(iter(matches.values()))


def _weights(entry: CatalogEntry) -> str:
    return str(entry.manifest.files["adapter_model.safetensors"]["sha256"])


def _row(peer: PeerView, entry: CatalogEntry, compatible: bool, disputed: bool) -> dict[str, Any]:
    m = entry.manifest
    return {"id": entry.entry_id, "peer": peer.key, "rooms": peer.rooms, "name": m.name, "description": m.description,
            "base": safe_base(m.base), "rank": m.rank, "target_modules": m.target_modules, "metrics": m.metrics,
            "created_at": m.created_at, "author": entry.original_author, "shared_by": entry.author,
            "first_hand": entry.origin is None and entry.author == peer.key, "disputed": disputed,
            "private": entry.access_key is not None,
            "bytes": sum(int(f["size"]) for f in m.files.values()), "compatible": compatible}
