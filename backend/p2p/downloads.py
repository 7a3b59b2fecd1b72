"""Downloads: active → done | failed, or paused; persisted so they resume after a restart.

A download names one signed entry (by id). Before the sidecar fetches a block it checks the core's
signed length, byte length and Merkle tree hash against the entry; the bytes land in a staging folder
under the data dir by file names from our allow-list, and are hash-, header-, shape- and value-checked
(backend/p2p/verify.py) before they move into the adapter store. A failure clears the staged files
and the core's blocks, and is not replayed at the next start.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backend.config import DataLayout
from backend.errors import AlreadyExists, Incompatible, NotFoundError, OrchMindError
from backend.p2p.catalog import CatalogEntry, verify_entry
from backend.p2p.local_bases import local_bases
from backend.p2p.state import DownloadRecord, SlowHolder, downloads_file, key_list_file
from backend.p2p.verify import MAX_FILE_BYTES, VerificationError, accept_adapter, safe_base
from backend.training.adapters import AdapterManifest, AdapterStore, validate_adapter_name

Call = Callable[..., Any]
Emit = Callable[[dict[str, Any]], None]
MAX_DOWNLOAD_BYTES = 1024 * 1024**2
MAX_DOWNLOAD_FILES = 3
log = logging.getLogger("orch_mind.p2p")


class DownloadError(OrchMindError):
    code = "p2p"


class DownloadNameTaken(AlreadyExists, DownloadError):
    pass


class MissingBase(Incompatible, DownloadError):
    pass


class TransferFailed(DownloadError):
    """The sidecar could not fetch the blocks; its reason travels as a code, of a known few."""

    REASONS = ("stalled", "mismatch")

    def __init__(self, message: str, reason: str | None) -> None:
        super().__init__(message)
        self.code = reason if reason in self.REASONS else "transfer"


class Downloads:
    def __init__(self, layout: DataLayout, call: Call, emit: Emit, *, stall_seconds: float = 60.0,
                 min_bytes_per_s: int = 256 * 1024, our_cores: Callable[[], set[str]] = set) -> None:
        self.layout = layout
        self._file = downloads_file(layout)
        self._kept = key_list_file(layout, "kept")
        self._adapters = AdapterStore(layout)
        self._call = call
        self._emit = emit
        self.min_bytes_per_s = min_bytes_per_s  # a holder slower than this makes way for another one
        self._our_cores = our_cores  # the cores of what we share: never cleared by a failed download
        self._lock = threading.RLock()
        self.stall_seconds = stall_seconds

    def records(self) -> dict[str, DownloadRecord]:
        return self._file.load()

    def get(self, download_id: str) -> DownloadRecord | None:
        return self.records().get(download_id)

    def list(self) -> list[dict[str, Any]]:
        return [record.public(i) for i, record in self.records().items()]

    def kept_cores(self) -> list[str]:
        return self._kept.load()

    def _save(self, download_id: str, record: DownloadRecord | None) -> None:
        with self._lock:
            records = self.records()
            if record is None:
                records.pop(download_id, None)
            else:
                records[download_id] = record
            self._file.save(records)

    def start(self, peer: str, entry: CatalogEntry, save_as: str | None, rooms: list[str] | None = None) -> str:
        name = validate_adapter_name(save_as or entry.manifest.name)
        if self._adapters.path(name).exists():
            raise DownloadNameTaken(f"You already have an adapter called {name!r}; pass another name to save it as.")
        total = entry.byte_length
        if total > MAX_DOWNLOAD_BYTES or len(entry.order) > MAX_DOWNLOAD_FILES:
            raise VerificationError(f"{entry.manifest.name} is {total / 1e6:.0f} MB in {len(entry.order)} files, over the limits.")
        if entry.manifest.base["sha256"] not in local_bases(self.layout):
            raise MissingBase(f"{entry.manifest.name} was trained on a base model you do not have "
                              f"({entry.manifest.base.get('reference') or entry.manifest.base['sha256'][:12]}).")
        download_id = entry.entry_id
        current = self.get(download_id)
        if current is not None and current.state == "active":
            return download_id
        record = DownloadRecord(peer=peer, name=name, state="active", entry=entry.to_wire(), rooms=rooms or [],
                                total=-(-total // entry.block_size),
                                started_at=time.time())
        self._save(download_id, record)
        self._fetch(download_id, record)
        return download_id

    def replay(self) -> None:
        """Restart the active downloads; one that cannot restart (say, its entry is from an older
        version) is marked failed with the reason, so the others and the network still start."""
        for download_id, record in self.records().items():
            if record.state != "active":
                continue
            try:
                self._fetch(download_id, record)
            except OrchMindError as exc:
                record.state, record.error, record.code = "failed", exc.message, exc.code
                self._save(download_id, record)

    def _fetch(self, download_id: str, record: DownloadRecord) -> None:
        entry = verify_entry(record.entry)
        staging = self.layout.staging_for(download_id)
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for name, size in entry.file_plan():
            if size > MAX_FILE_BYTES[name]:
                raise VerificationError(f"{name} is over its size limit.")
        files = [{"path": str(staging / name), "size": size, "sha256": entry.manifest.files[name]["sha256"]}
                 for name, size in entry.file_plan()]
        self._call("fetch", id=download_id, peer=record.peer, key=entry.core_key, files=files, blockSize=entry.block_size,
                   byteLength=entry.byte_length, treeHash=entry.tree_hash, encryptionKey=entry.access_key,
                   rooms=record.rooms, stallMs=int(self.stall_seconds * 1000), minBytesPerS=self.min_bytes_per_s)

    def pause(self, download_id: str) -> None:
        record = self._require(download_id)
        self._call("pause", id=download_id)
        record.state = "paused"
        self._save(download_id, record)
        self._emit({"event": "download-paused", "id": download_id})

    def resume(self, download_id: str) -> None:
        record = self._require(download_id)
        record.state, record.error, record.code = "active", None, None
        self._save(download_id, record)
        self._fetch(download_id, record)

    def cancel(self, download_id: str) -> None:
        self._require(download_id)
        try:
            self._call("pause", id=download_id)
        finally:
            shutil.rmtree(self.layout.staging_for(download_id), ignore_errors=True)
            self._save(download_id, None)

    def _require(self, download_id: str) -> DownloadRecord:
        record = self.get(download_id)
        if record is None:
            raise NotFoundError(f"No download {download_id!r}.")
        return record

    def progressed(self, download_id: str, blocks: int) -> None:
        with self._lock:
            record = self.get(download_id)
            if record is not None and record.state == "active":
                record.blocks = max(0, min(int(blocks), record.total))
                self._save(download_id, record)

    def slow_holder(self, download_id: str, peer: str, bytes_per_s: int) -> None:
        """Say which holder was too slow (the sidecar is asking another one)."""
        with self._lock:
            record = self.get(download_id)
            if record is None or record.state != "active":
                return
            record.slow_holder = SlowHolder(peer=peer, bytes_per_s=bytes_per_s)
            self._save(download_id, record)
        self._emit({"event": "download-slow", "id": download_id, "peer": peer, "bytes_per_s": bytes_per_s})

    def finish(self, download_id: str, failure: str | None, code: str | None = None, hashes: list[str] | None = None) -> None:
        """The sidecar's outcome. ``hashes``: what it computed of each file as it wrote it (in
        ``file_plan`` order), checked against the signed manifest instead of reading the files again."""
        record = self.get(download_id)
        if record is None or record.state != "active":
            return
        entry = verify_entry(record.entry)
        record.transferred_at = time.time()  # the bytes are here (or not); verification starts
        staging = self.layout.staging_for(download_id)
        try:
            if failure:
                raise TransferFailed(f"The transfer failed: {failure}", code)
            reference = local_bases(self.layout).get(entry.manifest.base["sha256"])
            if reference is None:
                raise MissingBase("The base model this adapter needs is no longer on this machine.")
            from backend.training.base_models import resolve_base

            base = resolve_base(reference, self.layout)
            original = entry.origin or entry
            provenance = {**entry.manifest.provenance, "downloaded_from": entry.author, "author": original.author,
                          "origin_entry": original.signed_wire()}
            manifest = AdapterManifest(**{**entry.manifest.to_dict(), "name": record.name,
                                          "base": {**safe_base(entry.manifest.base), "reference": reference}, "provenance": provenance})
            names = [name for name, _ in entry.file_plan()]
            written = dict(zip(names, hashes or [])) if hashes and len(hashes) == len(names) else None
            accept_adapter(self.layout, staging, manifest, base.hf_dir, base.sha256, written)
        except OrchMindError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            self._forget_core(entry.core_key)
            record.state, record.error, record.code = "failed", exc.message, exc.code
            self._save(download_id, record)
            self._emit({"event": "download-failed", "id": download_id, "error": exc.message, "code": exc.code})
            return
        kept = self._kept.load()
        if entry.core_key not in kept:  # keep serving what we downloaded, so others can fetch it from us
            self._kept.save(kept + [entry.core_key])
        record.state, record.blocks, record.finished_at = "done", record.total, time.time()
        self._save(download_id, record)
        self._hold(record)
        self._emit({"event": "download-done", "id": download_id, "adapter": record.name})

    def _forget_core(self, core_key: str) -> None:
        """A rejected transfer: its blocks leave the corestore and its core is closed (no longer served
        onwards), unless it is one we share or kept from an earlier download."""
        if core_key in self._our_cores() or core_key in self._kept.load():
            return
        try:
            self._call("unseed", key=core_key)
        except OrchMindError:
            log.warning("Could not clear the core of a rejected download.", exc_info=True)

    def hold_downloaded(self) -> None:
        """Offer the adapters we downloaded (and still have) on the direct channel: after a start."""
        for record in self.records().values():
            if record.state == "done":
                self._hold(record)

    def _hold(self, record: DownloadRecord) -> None:
        entry = verify_entry(record.entry)
        folder = self._adapters.path(record.name)
        files = [{"path": str(folder / name), "size": size} for name, size in entry.file_plan()]
        if not all(Path(f["path"]).is_file() and Path(f["path"]).stat().st_size == f["size"] for f in files):
            return  # deleted or changed since: there is nothing of it to offer
        try:
            self._call("hold", key=entry.core_key, files=files, blockSize=entry.block_size, encryptionKey=entry.access_key)
        except OrchMindError:  # the download is done either way; only offering it onwards failed
            log.warning("Could not offer %s to peers directly.", record.name, exc_info=True)
