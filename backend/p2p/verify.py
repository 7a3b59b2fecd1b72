"""Checks an adapter received from a peer must pass before it enters the adapter store.

Nothing a peer sends is trusted: the file list comes from an allow-list (never a peer-chosen path),
every file is size-capped and hash-checked against the manifest, safetensors headers are parsed by
hand and bounds-checked before any tensor is read, tensor names and shapes must fit the local base
model, values must be finite, and no pickle (.bin/.pt) is ever accepted. Files are verified in a
staging folder inside the data dir and moved into place only when everything passed.
(The manifest's author signature is checked by the transport layer, not here.)
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import struct
from pathlib import Path
from typing import Any

import numpy as np

from backend.config import DataLayout
from backend.errors import AlreadyExists, Incompatible, OrchMindError
from backend.training.adapters import AdapterManifest, AdapterStore, validate_adapter_name

MAX_FILE_BYTES = {"adapter_model.safetensors": 512 * 1024**2, "adapter.gguf": 512 * 1024**2,
                  "adapter_config.json": 64 * 1024, "manifest.json": 256 * 1024}
ADAPTER_FILES = frozenset({"adapter_model.safetensors", "adapter.gguf", "adapter_config.json"})
MAX_HEADER_BYTES = 4 * 1024 * 1024
DTYPE_BYTES = {"F16": 2, "BF16": 2, "F32": 4}
LORA_NAME = re.compile(r"^base_model\.model\.(?P<module>[A-Za-z0-9_.]+)\.lora_(?P<part>[AB])\.weight\Z")
MANIFEST_FIELDS = {"name", "base", "rank", "alpha", "target_modules", "files", "description", "dataset", "metrics",
                   "provenance", "created_at", "format_version"}


class VerificationError(OrchMindError):
    code = "rejected"


class IncompatibleAdapter(Incompatible, VerificationError):
    pass


class AdapterNameTaken(AlreadyExists, VerificationError):
    pass


class BadSignature(VerificationError):
    """Signed data whose signature does not match its author key: forged or altered."""

    code = "bad_signature"


_BASE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}\Z")


def safe_base(base: dict[str, Any]) -> dict[str, str]:
    """A peer's description of its base as we show and keep it: the hash, and its model reference and
    GGUF file name only when they are plain names (no folders, no '..', no device names)."""
    from backend.training.adapters import RESERVED_NAMES

    def plain(value: object) -> str:
        text = str(value or "")
        return text if _BASE_NAME.match(text) and ".." not in text and not RESERVED_NAMES.match(text) else ""

    return {"reference": plain(base.get("reference")), "sha256": str(base.get("sha256", "")), "gguf": plain(base.get("gguf"))}


def parse_manifest(raw: bytes) -> AdapterManifest:
    """A peer's manifest: size-capped, strictly shaped, listing only allowed files."""
    if len(raw) > MAX_FILE_BYTES["manifest.json"]:
        raise VerificationError("The manifest is too large.")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise VerificationError(f"The manifest is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or not {"name", "base", "rank", "alpha", "target_modules", "files"} <= set(data):
        raise VerificationError("The manifest lacks required fields.")
    if set(data) - MANIFEST_FIELDS:
        raise VerificationError(f"The manifest has unknown fields: {sorted(set(data) - MANIFEST_FIELDS)}.")
    validate_adapter_name(str(data["name"]))
    files = data["files"]
    if not isinstance(files, dict) or not files or not set(files) <= ADAPTER_FILES or "adapter_model.safetensors" not in files:
        raise VerificationError(f"The manifest lists files outside the allow-list {sorted(ADAPTER_FILES)}.")
    for name, record in files.items():
        if not isinstance(record, dict) or not re.fullmatch(r"[0-9a-f]{64}", str(record.get("sha256", ""))) \
                or not isinstance(record.get("size"), int) or not 0 < record["size"] <= MAX_FILE_BYTES[name]:
            raise VerificationError(f"The manifest's entry for {name} is invalid or over its size limit.")
    if not isinstance(data["rank"], int) or not 1 <= data["rank"] <= 256:
        raise VerificationError("The manifest's rank is invalid.")
    if not isinstance(data["base"], dict) or not re.fullmatch(r"[0-9a-f]{64}", str(data["base"].get("sha256", ""))):
        raise VerificationError("The manifest does not identify its base model by hash.")
    return AdapterManifest(**data)


def read_safetensors_header(path: Path) -> dict[str, Any]:
    """Parse and bounds-check a safetensors header without reading any tensor."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        prefix = handle.read(8)
        if len(prefix) != 8:
            raise VerificationError(f"{path.name} is too short to be safetensors.")
        (length,) = struct.unpack("<Q", prefix)
        if length > MAX_HEADER_BYTES or 8 + length > size:
            raise VerificationError(f"{path.name} has an implausible header length.")
        try:
            header = json.loads(handle.read(length))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise VerificationError(f"{path.name} has a malformed header.") from exc
    if not isinstance(header, dict):
        raise VerificationError(f"{path.name} has a malformed header.")
    data_size = size - 8 - length
    spans = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict) or info.get("dtype") not in DTYPE_BYTES:
            raise VerificationError(f"{path.name}: tensor {name!r} has an unsupported dtype.")
        shape, offsets = info.get("shape"), info.get("data_offsets")
        if not (isinstance(shape, list) and all(isinstance(d, int) and 0 < d < 1 << 20 for d in shape)
                and isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            raise VerificationError(f"{path.name}: tensor {name!r} has an invalid shape or offsets.")
        start, end = offsets
        if not 0 <= start <= end <= data_size or end - start != int(np.prod(shape)) * DTYPE_BYTES[info["dtype"]]:
            raise VerificationError(f"{path.name}: tensor {name!r} points outside the file or has the wrong size.")
        spans.append((start, end))
    spans.sort()
    if any(a_end > b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:])):
        raise VerificationError(f"{path.name}: tensors overlap.")
    return header


# A float is NaN or infinite exactly when all its exponent bits are set.
_EXPONENT_BITS = {"F16": (np.uint16, 0x7C00), "BF16": (np.uint16, 0x7F80), "F32": (np.uint32, 0x7F800000)}


def first_non_finite(path: Path, header: dict[str, Any]) -> str | None:
    """The first tensor holding a NaN or an infinity, read in place (memory-mapped, no copy of the
    weights); ``header`` is what read_safetensors_header checked."""
    with path.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + length)
    try:
        for name, info in header.items():
            if name == "__metadata__":
                continue
            start, end = info["data_offsets"]
            bits, mask = _EXPONENT_BITS[info["dtype"]]
            words = data[start:end].view(bits)
            if info["dtype"] == "F32":  # min and max carry a NaN or an infinity along, without a temporary
                values = words.view(np.float32)
                if values.size and not (np.isfinite(values.min()) and np.isfinite(values.max())):
                    return name
            elif ((words & mask) == mask).any():
                return name
        return None
    finally:
        del data


def base_shapes(base_hf_dir: Path) -> dict[str, list[int]]:
    """Weight shapes of the local base, read from its safetensors headers (no weights loaded)."""
    shapes: dict[str, list[int]] = {}
    for weights in sorted(base_hf_dir.glob("*.safetensors")):
        for name, info in read_safetensors_header(weights).items():
            if name != "__metadata__" and name.endswith(".weight"):
                shapes[name[: -len(".weight")]] = info["shape"]
    return shapes


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_staged_adapter(staging: Path, manifest: AdapterManifest, base_hf_dir: Path, base_sha256: str,
                          written: dict[str, str] | None = None) -> None:
    """Raise VerificationError unless ``staging`` holds exactly a sane adapter for our base.
    ``written``: file name -> the sha256 our own sidecar computed while writing that file (it saves
    reading the file again); files it does not name are hashed here."""
    if manifest.base["sha256"] != base_sha256:
        raise IncompatibleAdapter("The adapter was trained on a different base model than yours.")
    present = {p.name: p for p in staging.iterdir()}
    for name, path in present.items():
        if path.is_symlink() or not path.is_file():
            raise VerificationError(f"{name} is not a plain file.")
    if set(present) != set(manifest.files):
        raise VerificationError(f"Received files {sorted(present)} do not match the manifest's {sorted(manifest.files)}.")
    for name, record in manifest.files.items():
        path = present[name]
        if path.stat().st_size != record["size"] or path.stat().st_size > MAX_FILE_BYTES[name]:
            raise VerificationError(f"{name} has the wrong size.")
        if ((written or {}).get(name) or _sha256(path)) != record["sha256"]:
            raise VerificationError(f"{name} does not match its hash in the manifest.")
    header = read_safetensors_header(present["adapter_model.safetensors"])
    shapes = base_shapes(base_hf_dir)
    for name, info in header.items():
        if name == "__metadata__":
            continue
        match = LORA_NAME.match(name)
        if not match or match["module"] not in shapes:
            raise VerificationError(f"Tensor {name!r} does not belong to a layer of the base model.")
        out_features, in_features = shapes[match["module"]][:2]
        expected = [manifest.rank, in_features] if match["part"] == "A" else [out_features, manifest.rank]
        if info["shape"] != expected:
            raise VerificationError(f"Tensor {name!r} has shape {info['shape']}, expected {expected} for this base.")
    not_finite = first_non_finite(present["adapter_model.safetensors"], header)
    if not_finite is not None:
        raise VerificationError(f"Tensor {not_finite!r} contains NaN or infinite values.")
    if "adapter.gguf" in present and present["adapter.gguf"].open("rb").read(4) != b"GGUF":
        raise VerificationError("adapter.gguf is not a GGUF file.")
    if "adapter_config.json" in present:
        try:
            config = json.loads(present["adapter_config.json"].read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise VerificationError("adapter_config.json is not valid JSON.") from exc
        if not isinstance(config, dict) or config.get("r") != manifest.rank:
            raise VerificationError("adapter_config.json does not agree with the manifest's rank.")


def accept_adapter(layout: DataLayout, staging: Path, manifest: AdapterManifest, base_hf_dir: Path, base_sha256: str,
                   written: dict[str, str] | None = None) -> Path:
    """Verify, then move the staged adapter into the store; on any failure the staging is deleted."""
    store = AdapterStore(layout)
    target = store.path(manifest.name)
    try:
        staging.resolve().relative_to(layout.root.resolve())
    except ValueError as exc:
        raise VerificationError("Staging must be inside the data dir.") from exc
    try:
        if target.exists():
            raise AdapterNameTaken(f"You already have an adapter called {manifest.name!r}.")
        verify_staged_adapter(staging, manifest, base_hf_dir, base_sha256, written)
        (staging / "manifest.json").write_text(json.dumps(manifest.to_dict(), indent=2))
        staging.rename(target)
        return target
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
