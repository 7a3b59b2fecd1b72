"""Add a model from a GGUF file the user already has (LM Studio, Jan, GPT4All, Ollama, a download).

By default the file is referenced where it is, not copied: models are many gigabytes. What was
added is pinned by size, modification time and SHA-256 (hashed once, with progress), so a file
that later changes or vanishes makes the model unavailable instead of silently serving another file.
``copy=True`` copies it into the engine's blob store (hashed while copying) for files on removable
or shared drives.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from backend.inference.gguf_info import check_gguf_file, read_gguf_info
from backend.inference.model_store import ModelManifest, ModelStore, ModelStoreError, validate_name

HASH_BLOCK_BYTES = 8 * 1024 * 1024
Progress = Callable[[int, int], None]  # (bytes done, bytes total)


class ModelExistsError(ModelStoreError):
    code = "model_exists"


def hash_file(path: Path, progress: Progress | None = None, sink: BinaryIO | None = None) -> str:
    """SHA-256 of ``path`` in large blocks read into one reused buffer (as fast as ``sha256sum``);
    with ``sink``, every block is also written there (a copy hashed in the same pass)."""
    total = path.stat().st_size
    digest = hashlib.sha256()
    buffer = bytearray(HASH_BLOCK_BYTES)
    view = memoryview(buffer)
    done = 0
    with path.open("rb", buffering=0) as handle:
        while count := handle.readinto(buffer):
            digest.update(view[:count])
            if sink is not None:
                sink.write(view[:count])
            done += count
            if progress:
                progress(done, total)
    return digest.hexdigest()


def suggest_name(path: Path) -> str:
    """A model name from a file name: 'Llama-3.2-3B-Instruct-Q4_K_M.gguf' -> 'llama-3.2-3b-instruct-q4_k_m'."""
    stem = path.name.removesuffix(".gguf")
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._").lower()
    return (cleaned or "model")[:64].rstrip("-._") or "model"


def add_gguf(store: ModelStore, path: Path, *, name: str | None = None, copy: bool = False,
             progress: Progress | None = None) -> ModelManifest:
    """Register ``path`` as a model. Refuses files llama.cpp cannot load and taken names, before
    spending time on the hash."""
    path = Path(path).expanduser()
    check_gguf_file(path)  # cheap refusals first: missing, a folder, a loop, empty, not GGUF, a shard
    path = path.resolve()
    model_name = validate_name(name or suggest_name(path))
    if store.exists(model_name):
        existing = store.get(model_name, usable=False)
        if copy or not existing.source or existing.source.get("path") != str(path):
            raise ModelExistsError(f"a model named '{model_name}' already exists; choose another name (--name).")
        # the same file again: check it anew (it changed, or was touched) and keep the model's settings
    info = read_gguf_info(path)
    before = path.stat()
    if copy:
        digest = _copy_into_store(store, path, progress)
        base_path, source = str(store.blob_path(digest)), None
    else:
        sha = hash_file(path, progress)
        after = path.stat()
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            raise ModelStoreError(f"{path.name} changed while it was being read; add it again once it is complete.")
        base_path = str(path)
        source = {"path": str(path), "size": after.st_size, "mtime_ns": after.st_mtime_ns, "sha256": sha}
    manifest = ModelManifest(name=model_name, base_path=base_path, source=source, info=info.to_dict())
    if store.exists(model_name):
        kept = store.get(model_name, usable=False)
        manifest.system, manifest.parameters, manifest.created_at = kept.system, kept.parameters, kept.created_at
    store.save(manifest)
    return manifest


def _copy_into_store(store: ModelStore, path: Path, progress: Progress | None) -> str:
    """Copy into the blob store, hashing as it goes; the blob is named by the digest it turned out to have."""
    with tempfile.NamedTemporaryFile(dir=store.blobs, prefix=".copy-", suffix=".partial", delete=False) as handle:
        partial = Path(handle.name)
        try:
            name = "sha256:" + hash_file(path, progress, sink=handle)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    partial.replace(store.blob_path(name))
    return name
