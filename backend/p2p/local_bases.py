"""Which base models this machine has, by SHA-256: what a peer's adapter must have been trained on.

Hashing a GGUF takes seconds, so hashes are cached by (path, size, mtime) in ``p2p/base_hashes.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

from backend.config import DataLayout, atomic_write_text
from backend.training.base_models import file_sha256


def local_bases(layout: DataLayout) -> dict[str, str]:
    """sha256 -> a reference resolve_base accepts (a model name of ours, or the adapters' base refs)."""
    from backend.inference.model_store import ModelStore
    from backend.training.adapters import AdapterStore

    cache_path = layout.p2p_file("base_hashes")
    try:
        cache: dict[str, str] = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    except json.JSONDecodeError:
        cache = {}
    candidates: dict[str, Path] = {}
    store = ModelStore(layout)
    store.register_defaults()
    for model in store.list():
        if not model.adapters:
            candidates.setdefault(model.name, Path(model.base_path))
    found: dict[str, str] = {}
    for reference, path in candidates.items():
        if not path.is_file():
            continue
        stat = path.stat()
        key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
        if key not in cache:
            cache[key] = file_sha256(path)
        found.setdefault(cache[key], reference)
    for manifest in AdapterStore(layout).list():  # bases known from the user's own adapters
        sha = manifest.base.get("sha256", "")
        if sha and sha not in found and Path(manifest.base.get("reference", "")).exists():
            found[sha] = manifest.base["reference"]
    atomic_write_text(cache_path, json.dumps(cache))
    return found
