"""Peers' catalogs are verified here, on one worker thread, never on the sidecar reader thread.

Checking a signature costs real CPU, and each peer may send catalogs within its own limits: twelve
identities sending shape-valid entries with bad signatures once took 10 s of CPU in 22 s on the reader
thread, and every sidecar reply waited behind them. So the reader only hands a catalog over; only the
latest catalog of each peer waits (a newer one replaces it); an entry already verified (same
signature) is not verified again; all peers together get at most ``VERIFY_PER_SECOND`` signature
checks (a burst of ``VERIFY_BURST``), after which the worker waits. A rejected catalog is one log
line, whatever number of entries it held.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from backend.p2p.catalog import CatalogEntry, verify_entry
from backend.p2p.sidecar import printable
from backend.p2p.verify import VerificationError

log = logging.getLogger("orch_mind.p2p")

VERIFY_PER_SECOND = 300    # signature checks, all peers together (one costs ~0.1-0.3 ms here)
VERIFY_BURST = 600
VERIFIED_CACHE = 4096      # entries remembered by signature: honest peers resend the same catalog


Verified = Callable[[str, list[str], dict[str, CatalogEntry], int], None]


class CatalogIntake:
    def __init__(self, on_verified: Verified, *, per_second: float = VERIFY_PER_SECOND, burst: int = VERIFY_BURST) -> None:
        self._on_verified = on_verified
        self._pending: OrderedDict[str, tuple[list[str], list[Any], int]] = OrderedDict()
        self._condition = threading.Condition()
        self._verified: OrderedDict[str, CatalogEntry] = OrderedDict()
        self._rate, self._burst = per_second, burst
        self._tokens, self._refilled = float(burst), time.monotonic()
        self._stopped = False
        self._busy = False  # a catalog is being verified right now
        self.checked = 0  # signature checks made, for tests
        self._thread = threading.Thread(target=self._run, name="catalog-verify", daemon=True)
        self._thread.start()

    def submit(self, peer: str, rooms: list[str], entries: list[Any], rejected: int) -> None:
        """Hand over a catalog (returns at once). A catalog of the same peer still waiting is replaced."""
        with self._condition:
            previous = self._pending.pop(peer, None)
            self._pending[peer] = (rooms, entries, rejected + (previous[2] if previous else 0))
            self._condition.notify()

    def forget(self, peer: str) -> None:
        with self._condition:
            self._pending.pop(peer, None)

    def idle(self, timeout: float) -> bool:
        """Wait until nothing is waiting to be verified (tests)."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while self._pending or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._condition.wait(min(left, 0.05))
        return True

    def stop(self) -> None:
        with self._condition:
            self._stopped = True
            self._condition.notify_all()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._pending and not self._stopped:
                    self._condition.wait()
                if self._stopped:
                    return
                peer, (rooms, raw_entries, rejected) = self._pending.popitem(last=False)
                self._busy = True
            try:
                entries, rejected = self._verify(peer, raw_entries, rejected)
                self._on_verified(peer, rooms, entries, rejected)
            except Exception:  # noqa: BLE001 - the worker must outlive any one catalog
                log.exception("Verifying a catalog from %s failed", peer[:12])
            finally:
                with self._condition:
                    self._busy = False
                    self._condition.notify_all()

    def _verify(self, peer: str, raw_entries: list[Any], rejected: int) -> tuple[dict[str, CatalogEntry], int]:
        entries: dict[str, CatalogEntry] = {}
        first_reason = None
        bad = 0
        for raw in raw_entries:
            signature = raw.get("signature") if isinstance(raw, dict) else None
            cached = self._verified.get(signature) if isinstance(signature, str) else None
            if cached is not None and cached.to_wire() == raw:
                self._verified.move_to_end(signature)
                entries[cached.entry_id] = cached
                continue
            self._take_token()
            try:
                entry = verify_entry(raw)
            except VerificationError as exc:
                bad += 1
                first_reason = first_reason or exc.message
                continue
            entries[entry.entry_id] = entry
            self._verified[entry.signature] = entry
            if len(self._verified) > VERIFIED_CACHE:
                self._verified.popitem(last=False)
        if bad:
            log.warning("Rejected %d of %d catalog entries from %s (first: %s)", bad, len(raw_entries), peer[:12],
                        printable(str(first_reason)[:200]))
        return entries, rejected + bad

    def _take_token(self) -> None:
        while True:
            now = time.monotonic()
            self._tokens = min(self._burst, self._tokens + (now - self._refilled) * self._rate)
            self._refilled = now
            if self._tokens >= 1:
                self._tokens -= 1
                self.checked += 1
                return
            time.sleep((1 - self._tokens) / self._rate)
