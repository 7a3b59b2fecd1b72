"""Checkpoints that describe themselves (``step_000040/`` + ``meta.json``) and refuse to load when damaged.

The adapter weights are safetensors; the optimizer, scheduler and RNG states are loaded with
``torch.load(weights_only=True)``, which accepts tensors and plain containers only (no code).
Every file's SHA-256 is recorded in ``meta.json`` and checked before anything is loaded.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from backend.config import atomic_write_text
from backend.errors import OrchMindError

FILES = ("adapter.safetensors", "state.pt")


class CheckpointError(OrchMindError):
    code = "checkpoint_corrupted"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_checkpoint(root: Path, step: int, adapter_state: dict[str, Any], training_state: dict[str, Any], meta: dict[str, Any]) -> Path:
    import torch
    from safetensors.torch import save_file

    target = root / f"step_{step:06d}"
    partial = root / f".step_{step:06d}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in adapter_state.items()}, str(partial / "adapter.safetensors"))
    torch.save(training_state, partial / "state.pt")
    meta = {**meta, "step": step, "files": {name: _sha(partial / name) for name in FILES}}
    atomic_write_text(partial / "meta.json", json.dumps(meta, indent=2))
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target


def latest_checkpoint(root: Path) -> Path | None:
    candidates = sorted(p for p in root.glob("step_*") if p.is_dir())
    return candidates[-1] if candidates else None


def load_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    import torch
    from safetensors.torch import load_file

    try:
        meta = json.loads((path / "meta.json").read_text())
        for name, expected in meta["files"].items():
            if _sha(path / name) != expected:
                raise CheckpointError(f"Checkpoint {path.name} is corrupted ({name} does not match its recorded hash). "
                                      "Delete that folder to resume from the one before, or start the training again.")
        adapter = load_file(str(path / "adapter.safetensors"))
        state = torch.load(path / "state.pt", weights_only=True)
    except CheckpointError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"Checkpoint {path.name} cannot be read ({exc}). Delete that folder to resume from the "
                              "one before, or start the training again.") from exc
    return adapter, state, meta
