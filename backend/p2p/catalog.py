"""Signed catalog entries: what a peer says about an adapter it shares.

An entry is the adapter's manifest (minus anything local), how to fetch it (the Hypercore key, the
block size and the file order) and the author's public key, signed with the author's ed25519 key
over a canonical JSON encoding. The file hashes inside are what a download is checked against, so a
relaying peer cannot alter them without breaking the signature.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from backend.p2p.identity import Identity, verify_signature
from backend.p2p.verify import ADAPTER_FILES, VerificationError, parse_manifest
from backend.training.adapters import AdapterManifest

ENTRY_VERSION = 1
BLOCK_SIZE = 256 * 1024
MAX_ENTRY_BYTES = 64 * 1024
_HEX64 = re.compile(r"^[0-9a-f]{64}\Z")
_HEX128 = re.compile(r"^[0-9a-f]{128}\Z")


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def public_manifest(manifest: AdapterManifest) -> dict[str, Any]:
    """The manifest as it may leave the machine: no local paths, no dataset titles."""
    data = manifest.to_dict()
    base = dict(data["base"])
    base["reference"] = PurePath(str(base.get("reference", "")).replace("\\", "/")).name
    data["base"] = {k: str(v) for k, v in base.items() if k in ("reference", "sha256", "gguf")}
    data["dataset"] = {k: v for k, v in (data.get("dataset") or {}).items() if isinstance(v, (int, float))}
    data["provenance"] = {k: v for k, v in (data.get("provenance") or {}).items() if k in ("method", "sources", "weights", "synthetic")}
    return data


@dataclass(frozen=True)
class CatalogEntry:
    manifest: AdapterManifest
    core_key: str
    block_size: int
    order: list[str]
    author: str
    signature: str

    @property
    def entry_id(self) -> str:
        """Stable id of this exact signed entry (author and signature)."""
        return f"{self.author[:16]}-{self.signature[:16]}"

    def to_wire(self) -> dict[str, Any]:
        return {**_signed_body(self.manifest.to_dict(), self.core_key, self.block_size, self.order, self.author),
                "signature": self.signature}

    def file_plan(self) -> list[tuple[str, int]]:
        return [(name, int(self.manifest.files[name]["size"])) for name in self.order]


def _signed_body(manifest: dict[str, Any], core_key: str, block_size: int, order: list[str], author: str) -> dict[str, Any]:
    return {"v": ENTRY_VERSION, "manifest": manifest,
            "transfer": {"core": core_key, "block_size": block_size, "order": order}, "author": author}


def sign_entry(identity: Identity, manifest: AdapterManifest, core_key: str, block_size: int = BLOCK_SIZE) -> CatalogEntry:
    shared = AdapterManifest(**public_manifest(manifest))
    order = sorted(shared.files)
    body = _signed_body(shared.to_dict(), core_key, block_size, order, identity.public_key)
    return CatalogEntry(shared, core_key, block_size, order, identity.public_key, identity.sign(canonical(body)))


def verify_entry(raw: Any) -> CatalogEntry:
    """Parse a peer-supplied entry; raise VerificationError unless it is well-formed and correctly signed."""
    if not isinstance(raw, dict) or set(raw) != {"v", "manifest", "transfer", "author", "signature"}:
        raise VerificationError("A catalog entry has the wrong shape.")
    if len(canonical(raw)) > MAX_ENTRY_BYTES:
        raise VerificationError("A catalog entry is too large.")
    if raw["v"] != ENTRY_VERSION:
        raise VerificationError(f"Catalog entry version {raw['v']!r} is not supported.")
    author, signature, transfer = raw["author"], raw["signature"], raw["transfer"]
    if not (isinstance(author, str) and _HEX64.match(author) and isinstance(signature, str) and _HEX128.match(signature)):
        raise VerificationError("A catalog entry has a malformed author key or signature.")
    if not isinstance(transfer, dict) or set(transfer) != {"core", "block_size", "order"}:
        raise VerificationError("A catalog entry has a malformed transfer section.")
    core, block_size, order = transfer["core"], transfer["block_size"], transfer["order"]
    if not (isinstance(core, str) and _HEX64.match(core) and isinstance(block_size, int) and 4096 <= block_size <= 4 << 20):
        raise VerificationError("A catalog entry has an invalid core key or block size.")
    body = {k: raw[k] for k in ("v", "manifest", "transfer", "author")}
    if not verify_signature(author, signature, canonical(body)):
        raise VerificationError("A catalog entry's signature does not match its author key (forged or altered).",
                                code="bad_signature")
    manifest = parse_manifest(canonical(raw["manifest"]))
    if not isinstance(order, list) or sorted(order) != sorted(manifest.files) or not set(order) <= ADAPTER_FILES:
        raise VerificationError("A catalog entry's file order does not match its manifest.")
    return CatalogEntry(manifest, core, block_size, list(order), author, signature)
