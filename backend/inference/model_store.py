"""The embedded engine's model store in the data dir: content-addressed blobs plus named manifests.

Names and digests are validated as strictly as Ollama does since its path-traversal CVEs: a name is
a short slug with an optional tag, a digest is ``sha256:`` + 64 hex digits, and every path is built
from validated parts only, never joined from request text.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from backend.config import MODEL_NAME, DataLayout, atomic_write_text
from backend.errors import NotFoundError, OrchMindError
from backend.inference.default_models import DEFAULT_CHAT_MODEL, default_chat_gguf

NAME_PATTERN = re.compile(MODEL_NAME)
DIGEST_PATTERN = re.compile(r"^sha256[:-]([0-9a-f]{64})\Z")
GGUF_MAGIC = b"GGUF"


class ModelStoreError(OrchMindError):
    code = "invalid_model"


class UnknownModel(NotFoundError):
    code = "model_not_found"


class MissingBlob(NotFoundError):
    """A digest the client names was never uploaded (``POST /api/blobs`` first)."""

    code = "blob_not_found"


class ModelUnavailable(NotFoundError):
    """The model is registered but its file is gone or changed: never served from another file."""

    code = "model_unavailable"


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or ".." in name:
        raise ModelStoreError(f"invalid model name {name!r}: use letters, digits, '.', '_' or '-', with an optional ':tag'")
    return name if ":" in name else f"{name}:latest"


def validate_digest(digest: str) -> str:
    match = DIGEST_PATTERN.match(digest or "")
    if not match:
        raise ModelStoreError(f"invalid digest {digest!r}: expected sha256:<64 hex digits>")
    return match.group(1)


@dataclass
class ModelManifest:
    name: str
    base_path: str  # a GGUF file: a blob of ours or a packaged default model
    adapters: list[str] = field(default_factory=list)  # GGUF LoRA adapter files
    system: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    parent: str | None = None
    # A GGUF the user added by reference (not copied): {"path", "size", "mtime_ns", "sha256"} as it
    # was when added. Served only while the file still matches; None for our own blobs.
    source: dict[str, Any] | None = None
    info: dict[str, Any] | None = None  # GGUF metadata (gguf_info.GGUFInfo.to_dict), read when added

    @property
    def size(self) -> int:
        return sum(Path(p).stat().st_size for p in [self.base_path, *self.adapters] if Path(p).exists())

    def unavailable_reason(self) -> str | None:
        """Why this model cannot be served now (its file vanished or changed), or None."""
        for path in (Path(self.base_path), *map(Path, self.adapters)):
            if not path.is_file():
                return f"its file {path} is missing (moved or deleted?)"
        if self.source:
            stat = Path(self.base_path).stat()
            if stat.st_size != self.source.get("size") or stat.st_mtime_ns != self.source.get("mtime_ns"):
                return (f"its file {self.base_path} changed since it was added; add it again "
                        "(`orch-mind models add`) to check and use the new file")
        return None

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()


class BlobWriter:
    """One upload: a private temporary file beside the blobs, hashed as it is written, renamed into
    place only when the digest matches; on any other way out of the ``with`` it is deleted."""

    def __init__(self, target: Path, expected_hex: str) -> None:
        self.target = target
        self._expected = expected_hex
        self._hasher = hashlib.sha256()
        self.size = 0
        handle = tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", suffix=".partial", delete=False)
        self._handle = handle
        self._partial = Path(handle.name)

    def write(self, chunk: bytes) -> None:
        self._hasher.update(chunk)
        self._handle.write(chunk)
        self.size += len(chunk)

    def commit(self) -> Path:
        self._handle.close()
        actual = self._hasher.hexdigest()
        if actual != self._expected:
            raise ModelStoreError(f"digest mismatch: the uploaded data hashes to sha256:{actual}")
        self._partial.replace(self.target)
        return self.target

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._handle.close()
        self._partial.unlink(missing_ok=True)


class ModelStore:
    def __init__(self, layout: DataLayout | None = None) -> None:
        root = (layout or DataLayout.current()).models_dir
        self.blobs = root / "blobs"
        self.manifests = root / "manifests"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.manifests.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def register_defaults(self) -> None:
        """Register SmolLM2 (shipped in a PyPI package) on first start; never downloads anything.
        Models registered before GGUF metadata was recorded get it now (once: it is saved)."""
        from backend.inference.gguf_info import GGUFError, read_gguf_info

        name = validate_name(DEFAULT_CHAT_MODEL)
        packaged = str(default_chat_gguf())
        if not self._manifest_path(name).exists():
            self.save(ModelManifest(name=name, base_path=packaged))
        for manifest in self.list():  # the app was moved or reinstalled: follow the packaged file
            if manifest.source is None and manifest.base_path != packaged and Path(manifest.base_path).name == Path(packaged).name \
                    and not Path(manifest.base_path).exists():
                manifest.base_path = packaged
                self.save(manifest)
        for manifest in self.list():
            if manifest.info is None and not manifest.unavailable_reason():
                try:
                    manifest.info = read_gguf_info(Path(manifest.base_path)).to_dict()
                except GGUFError:
                    continue  # shown without details; chatting with it reports the loader's error
                self.save(manifest)

    def _manifest_path(self, name: str) -> Path:
        model, tag = validate_name(name).split(":", 1)
        return self.manifests / f"{model}@{tag}.json"

    def blob_path(self, digest: str) -> Path:
        return self.blobs / f"sha256-{validate_digest(digest)}"

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).exists()

    def blob_writer(self, digest: str) -> BlobWriter:
        """A writer for the blob ``digest``: stream into it, then ``commit`` (or leave the ``with``)."""
        return BlobWriter(self.blob_path(digest), validate_digest(digest))

    def write_blob(self, digest: str, chunks: Any) -> Path:
        """Stream a blob to disk, verify its hash, then move it into place (never a partial blob)."""
        with self.blob_writer(digest) as writer:
            for chunk in chunks:
                writer.write(chunk)
            return writer.commit()

    def save(self, manifest: ModelManifest) -> None:
        manifest.name = validate_name(manifest.name)
        with self._lock:
            atomic_write_text(self._manifest_path(manifest.name), json.dumps(asdict(manifest), indent=2))

    def get(self, name: str, *, usable: bool = True) -> ModelManifest:
        """The manifest of ``name``; with ``usable``, only if its files are there and unchanged."""
        path = self._manifest_path(name)
        if not path.exists():
            raise UnknownModel(f"model '{name}' not found")
        manifest = ModelManifest(**json.loads(path.read_text()))
        if usable and (reason := manifest.unavailable_reason()):
            raise ModelUnavailable(f"model '{manifest.name}' is unavailable: {reason}")
        return manifest

    def exists(self, name: str) -> bool:
        return self._manifest_path(name).exists()

    def list(self) -> list[ModelManifest]:
        return [ModelManifest(**json.loads(p.read_text())) for p in sorted(self.manifests.glob("*.json"))]

    def copy(self, source: str, destination: str) -> ModelManifest:
        """``destination`` as a second name for ``source``'s files, adapters, prompt and parameters
        (Ollama's ``cp``; an existing destination is replaced, as there)."""
        manifest = self.get(source, usable=False)
        copied = ModelManifest(**{**asdict(manifest), "name": validate_name(destination), "created_at": time.time()})
        self.save(copied)
        return copied

    def delete(self, name: str) -> None:
        path = self._manifest_path(name)
        if not path.exists():
            raise UnknownModel(f"model '{name}' not found")
        path.unlink()

    def resolve_gguf(self, reference: str) -> str:
        """``FROM``: a model name we know, or a blob digest of an uploaded GGUF."""
        if DIGEST_PATTERN.match(reference or ""):
            path = self.blob_path(reference)
            if not path.exists():
                raise MissingBlob(f"blob {reference} not found; upload it first")
            if path.open("rb").read(4) != GGUF_MAGIC:
                raise ModelStoreError(f"blob {reference} is not a GGUF file")
            return str(path)
        return self.get(reference).base_path
