"""The adapter store: ``adapters/<name>/`` holds PEFT safetensors, the GGUF LoRA and a manifest.

The manifest travels with the adapter (P2P sharing sends it): base-model identity and hash, LoRA
shape, dataset stats, metrics, provenance and every file's hash. It never holds local paths or
user names.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from backend.config import DataLayout, atomic_write_text
from backend.errors import AlreadyExists, NotFoundError, OrchMindError, ValidationError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
ADAPTER_FILES = ("adapter_model.safetensors", "adapter_config.json", "adapter.gguf")


class AdapterError(OrchMindError):
    code = "adapter"


class BadAdapterName(ValidationError, AdapterError):
    pass


class AdapterExists(AlreadyExists, AdapterError):
    pass


# Names Windows reserves for devices, with or without an extension ("CON", "nul.txt", "COM1.json").
RESERVED_NAMES = re.compile(r"^(CON|PRN|AUX|NUL|COM[0-9¹²³]|LPT[0-9¹²³]|CONIN\$|CONOUT\$)(\..*)?\Z", re.I)


def validate_adapter_name(name: str) -> str:
    if not NAME.match(name or "") or ".." in name:
        raise BadAdapterName(f"Invalid adapter name {name!r}: letters, digits, '.', '_' and '-' only.")
    if RESERVED_NAMES.match(name):
        raise BadAdapterName(f"Invalid adapter name {name!r}: Windows reserves it for a device; choose another.")
    return name


def file_record(path: Path) -> dict[str, Any]:
    return {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "size": path.stat().st_size}


@dataclass
class AdapterManifest:
    name: str
    base: dict[str, str]  # reference, sha256, gguf (file name only)
    rank: int
    alpha: int
    target_modules: list[str]
    files: dict[str, dict[str, Any]]
    description: str = ""
    dataset: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    format_version: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class AdapterStore:
    def __init__(self, layout: DataLayout | None = None) -> None:
        self.root = (layout or DataLayout.current()).adapters_dir

    def path(self, name: str) -> Path:
        return self.root / validate_adapter_name(name)

    def save(self, name: str, source_dir: Path, gguf: Path | None, manifest_fields: dict[str, Any]) -> AdapterManifest:
        """Copy the adapter files in, record their hashes, write the manifest (all or nothing)."""
        target = self.path(name)
        if target.exists():
            raise AdapterExists(f"An adapter called {name!r} exists already; pick another name or delete it.")
        partial = self.root / f".{name}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        for file_name in ("adapter_model.safetensors", "adapter_config.json"):
            shutil.copy2(source_dir / file_name, partial / file_name)
        if gguf is not None:
            shutil.copy2(gguf, partial / "adapter.gguf")
        files = {p.name: file_record(p) for p in sorted(partial.iterdir()) if p.name in ADAPTER_FILES}
        manifest = AdapterManifest(name=name, files=files, **manifest_fields)
        atomic_write_text(partial / "manifest.json", json.dumps(manifest.to_dict(), indent=2))
        partial.rename(target)
        return manifest

    def get(self, name: str) -> AdapterManifest:
        path = self.path(name) / "manifest.json"
        if not path.exists():
            raise NotFoundError(f"No adapter called {name!r}.")
        return AdapterManifest(**json.loads(path.read_text()))

    def list(self) -> list[AdapterManifest]:
        return [AdapterManifest(**json.loads(p.read_text())) for p in sorted(self.root.glob("*/manifest.json"))]

    def delete(self, name: str) -> None:
        self.get(name)
        shutil.rmtree(self.path(name))

    def export(self, name: str, destination: Path) -> Path:
        """Copy an adapter folder out (safetensors + GGUF + manifest), e.g. to share by hand."""
        self.get(name)
        target = destination / name
        shutil.copytree(self.path(name), target)
        return target
