"""Signed catalog entries: what a peer says about an adapter it shares.

An entry is the adapter's manifest (only allow-listed fields, at every depth), how to fetch it (the
Hypercore key, block size, file order, the core's byte length and Merkle tree hash, checked before a
single block is fetched) and the sharer's public key, signed with the sharer's ed25519 key over a
canonical JSON encoding. The file hashes inside are what a download is checked against, so a
relaying peer cannot alter them without breaking the signature.

A re-share carries the original author's signed entry as ``origin`` (same files, verified), so the
author stays named when the adapter travels on: rows say "by X, shared by Y". ``access`` (outside the
signature) is the block encryption key of a private room's adapter; it is only ever sent to peers
who proved membership of that room.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from backend.errors import OrchMindError
from backend.p2p.identity import Identity, verify_signature
from backend.p2p.verify import ADAPTER_FILES, BadSignature, VerificationError, parse_manifest
from backend.training.adapters import AdapterManifest
from backend.training.merge import METHODS as MERGE_METHODS

ENTRY_VERSION = 2
BLOCK_SIZE = 1024 * 1024
MAX_BLOCK_SIZE = 1024 * 1024  # the sidecar's frame limit (10 MiB) assumes blocks no larger than this
MAX_ENTRY_BYTES = 64 * 1024
_HEX64 = re.compile(r"^[0-9a-f]{64}\Z")
_HEX128 = re.compile(r"^[0-9a-f]{128}\Z")
MIN_ID_PREFIX = 16
_PROVENANCE_KINDS = {"trained", "merged", "downloaded"}


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _short(value: Any, limit: int = 200) -> str:
    return str(value)[:limit]


def public_manifest(manifest: AdapterManifest) -> dict[str, Any]:
    """The manifest as it may leave the machine, built from an allow-list at every depth.

    No local paths, no dataset titles, no system prompt or voice, and of a merge's sources only
    their weights' hashes (not their names or their own provenance).
    """
    data = manifest.to_dict()
    base = data["base"]
    provenance = data.get("provenance") or {}
    public_provenance: dict[str, Any] = {}
    if provenance.get("kind") in _PROVENANCE_KINDS:
        public_provenance["kind"] = provenance["kind"]
    if provenance.get("method") in MERGE_METHODS:
        public_provenance["method"] = provenance["method"]
    if isinstance(provenance.get("weights"), list) and all(_number(w) for w in provenance["weights"]):
        public_provenance["weights"] = provenance["weights"][:16]
    if _number(provenance.get("density")):
        public_provenance["density"] = provenance["density"]
    if provenance.get("synthetic") is True:
        public_provenance["synthetic"] = True
    if isinstance(provenance.get("sources"), list):
        public_provenance["sources"] = [{"adapter_sha256": s["adapter_sha256"]} for s in provenance["sources"][:16]
                                        if isinstance(s, dict) and _HEX64.match(str(s.get("adapter_sha256", "")))]
    return {
        "name": manifest.name,
        "base": {"reference": _short(PurePath(str(base.get("reference", "")).replace("\\", "/")).name),
                 "sha256": str(base["sha256"]), "gguf": _short(PurePath(str(base.get("gguf", "")).replace("\\", "/")).name)},
        "rank": manifest.rank, "alpha": manifest.alpha,
        "target_modules": [_short(m, 64) for m in manifest.target_modules][:32],
        "files": {name: {"sha256": str(f["sha256"]), "size": int(f["size"])} for name, f in manifest.files.items()},
        "description": _short(manifest.description, 500),
        "dataset": {k: v for k, v in (data.get("dataset") or {}).items() if _number(v)},
        "metrics": {k: v for k, v in (data.get("metrics") or {}).items() if _number(v)},
        "provenance": public_provenance,
        "created_at": manifest.created_at, "format_version": manifest.format_version,
    }


def entry_id_of(signature: str) -> str:
    """A signed entry's id: 32 hex digits derived from its signature (unique per signed entry)."""
    return hashlib.blake2b(bytes.fromhex(signature), digest_size=16, person=b"orch-mind-entry").hexdigest()


@dataclass(frozen=True)
class CatalogEntry:
    manifest: AdapterManifest
    core_key: str
    block_size: int
    order: list[str]
    author: str  # who signed this entry: the sharer
    signature: str
    byte_length: int
    tree_hash: str
    origin: CatalogEntry | None = None  # the original author's entry, when this is a re-share
    access_key: str | None = None  # a private room's block encryption key (never signed, never public)

    @property
    def entry_id(self) -> str:
        return entry_id_of(self.signature)

    @property
    def original_author(self) -> str:
        return self.origin.author if self.origin is not None else self.author

    def signed_wire(self) -> dict[str, Any]:
        """The entry without ``access``: what is kept as an origin or shown as a record."""
        wire = {**_signed_body(self.manifest.to_dict(), self._transfer(), self.author), "signature": self.signature}
        if self.origin is not None:
            wire["origin"] = self.origin.signed_wire()
        return wire

    def to_wire(self) -> dict[str, Any]:
        wire = self.signed_wire()
        if self.access_key:
            wire["access"] = {"key": self.access_key}
        return wire

    def _transfer(self) -> dict[str, Any]:
        return {"core": self.core_key, "block_size": self.block_size, "order": self.order,
                "byte_length": self.byte_length, "tree_hash": self.tree_hash}

    def file_plan(self) -> list[tuple[str, int]]:
        return [(name, int(self.manifest.files[name]["size"])) for name in self.order]


def _signed_body(manifest: dict[str, Any], transfer: dict[str, Any], author: str, origin: dict[str, Any] | None = None) -> dict[str, Any]:
    body = {"v": ENTRY_VERSION, "manifest": manifest, "transfer": transfer, "author": author}
    if origin is not None:
        body["origin"] = origin
    return body


def sign_entry(identity: Identity, manifest: AdapterManifest, seeded: dict[str, Any], block_size: int = BLOCK_SIZE,
               *, origin: CatalogEntry | None = None, access_key: str | None = None) -> CatalogEntry:
    """Sign ``manifest`` as shared by ``identity`` from the core ``seeded`` describes (the sidecar's answer)."""
    shared = AdapterManifest(**public_manifest(manifest))
    order = sorted(shared.files)
    transfer = {"core": seeded["key"], "block_size": block_size, "order": order,
                "byte_length": int(seeded["byteLength"]), "tree_hash": seeded["treeHash"]}
    if origin is not None and origin.origin is not None:
        origin = origin.origin
    if origin is not None and origin.author == identity.public_key:
        origin = None  # my own adapter coming back to me: I am its author
    body = _signed_body(shared.to_dict(), transfer, identity.public_key, origin.signed_wire() if origin else None)
    entry = CatalogEntry(shared, seeded["key"], block_size, order, identity.public_key, identity.sign(canonical(body)),
                         int(seeded["byteLength"]), seeded["treeHash"], origin, access_key)
    if origin is not None and _files(origin) != _files(entry):
        raise VerificationError("A re-share must carry exactly the files of its original entry.")
    return entry


def _files(entry: CatalogEntry) -> dict[str, tuple[str, int]]:
    return {name: (str(f["sha256"]), int(f["size"])) for name, f in entry.manifest.files.items()}


def verify_entry(raw: Any, *, nested: bool = False) -> CatalogEntry:
    """Parse a peer-supplied entry; raise VerificationError unless it is well-formed and correctly signed."""
    allowed = {"v", "manifest", "transfer", "author", "signature"} | (set() if nested else {"origin", "access"})
    if not isinstance(raw, dict) or not {"v", "manifest", "transfer", "author", "signature"} <= set(raw) <= allowed:
        raise VerificationError("A catalog entry has the wrong shape.")
    if len(canonical(raw)) > MAX_ENTRY_BYTES:
        raise VerificationError("A catalog entry is too large.")
    if raw["v"] != ENTRY_VERSION:
        raise VerificationError(f"Catalog entry version {str(raw['v'])[:10]!r} is not supported (an older or newer Orch-Mind).")
    author, signature, transfer = raw["author"], raw["signature"], raw["transfer"]
    if not (isinstance(author, str) and _HEX64.match(author) and isinstance(signature, str) and _HEX128.match(signature)):
        raise VerificationError("A catalog entry has a malformed author key or signature.")
    if not isinstance(transfer, dict) or set(transfer) != {"core", "block_size", "order", "byte_length", "tree_hash"}:
        raise VerificationError("A catalog entry has a malformed transfer section.")
    core, block_size, order = transfer["core"], transfer["block_size"], transfer["order"]
    if not (isinstance(core, str) and _HEX64.match(core) and isinstance(block_size, int) and 4096 <= block_size <= MAX_BLOCK_SIZE):
        raise VerificationError("A catalog entry has an invalid core key or block size.")
    if not (isinstance(transfer["tree_hash"], str) and _HEX64.match(transfer["tree_hash"])
            and isinstance(transfer["byte_length"], int) and transfer["byte_length"] > 0):
        raise VerificationError("A catalog entry has an invalid byte length or tree hash.")
    body = {k: raw[k] for k in ("v", "manifest", "transfer", "author", "origin") if k in raw}
    if not verify_signature(author, signature, canonical(body)):
        raise BadSignature("A catalog entry's signature does not match its author key (forged or altered).")
    try:
        manifest = parse_manifest(canonical(raw["manifest"]))
    except OrchMindError as exc:  # e.g. a badly named adapter: this entry is rejected, not the catalog
        raise VerificationError(f"A catalog entry's manifest is invalid: {exc.message}") from exc
    if not isinstance(order, list) or sorted(order) != sorted(manifest.files) or not set(order) <= ADAPTER_FILES:
        raise VerificationError("A catalog entry's file order does not match its manifest.")
    if sum(int(manifest.files[name]["size"]) for name in order) != transfer["byte_length"]:
        raise VerificationError("A catalog entry's byte length does not match its files.")
    origin = verify_entry(raw["origin"], nested=True) if "origin" in raw else None
    access = raw.get("access")
    if access is not None and not (isinstance(access, dict) and set(access) == {"key"} and _HEX64.match(str(access["key"]))):
        raise VerificationError("A catalog entry has a malformed access key.")
    entry = CatalogEntry(manifest, core, block_size, list(order), author, signature, transfer["byte_length"],
                         transfer["tree_hash"], origin, access["key"] if access else None)
    if origin is not None and (_files(origin) != _files(entry) or origin.author == author):
        raise VerificationError("A re-shared entry does not carry the same files as its original.")
    return entry
