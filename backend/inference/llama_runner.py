"""Loaded llama.cpp models for the embedded engine: one at a time per model, reused across requests.

A model with an adapter is loaded with that adapter or not at all: a failure to apply the LoRA is an
error for the caller, never a quiet fall back to the base model.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from backend.errors import OrchMindError
from backend.inference.chat_templates import chat_handler, template_for
from backend.inference.model_store import ModelManifest

DEFAULT_CONTEXT = 2048
MAX_LOADED = 2


class EngineError(OrchMindError):
    code = "engine"


@dataclass
class LoadedModel:
    manifest: ModelManifest
    llama: Any
    load_seconds: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_used: float = field(default_factory=time.time)
    n_ctx: int = DEFAULT_CONTEXT
    load_reported: bool = False  # the first answer after loading carries load_duration


def default_threads() -> int:
    """llama.cpp threads: every core, up to 8 (more stops paying off for small models)."""
    return max(1, min(os.cpu_count() or 1, 8))


class LlamaRunner:
    def __init__(self, threads: int | None = None) -> None:
        self._threads = threads or default_threads()
        self._loaded: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, manifest: ModelManifest, n_ctx: int | None = None) -> LoadedModel:
        key = manifest.name + ":" + manifest.digest
        with self._lock:
            loaded = self._loaded.get(key)
            if loaded is not None and (n_ctx is None or n_ctx == loaded.n_ctx):
                self._loaded.move_to_end(key)
                loaded.last_used = time.time()
                return loaded
            from llama_cpp import Llama

            if len(manifest.adapters) > 1:
                raise EngineError("the embedded engine applies one adapter per model; merge adapters first")
            started = time.time()
            context = n_ctx or int(manifest.parameters.get("num_ctx", DEFAULT_CONTEXT))
            try:
                llama = Llama(
                    model_path=manifest.base_path, lora_path=manifest.adapters[0] if manifest.adapters else None,
                    n_ctx=context, n_threads=self._threads, n_threads_batch=self._threads,
                    embedding=False, verbose=False, seed=int(manifest.parameters.get("seed", 0)) or 0xFFFFFFFF,
                )
            except (ValueError, RuntimeError, OSError) as exc:
                what = "its adapter" if manifest.adapters else "its weights"
                raise EngineError(f"failed to load model '{manifest.name}' ({what}): {exc}") from exc
            metadata = llama.metadata
            llama.chat_handler = chat_handler(llama, template_for(metadata.get("general.architecture", ""),
                                                                  metadata.get("tokenizer.chat_template")))
            loaded = LoadedModel(manifest, llama, time.time() - started, n_ctx=context)
            self._loaded[key] = loaded
            while len(self._loaded) > MAX_LOADED:
                self._loaded.popitem(last=False)
            return loaded

    def embed(self, manifest: ModelManifest, texts: list[str]) -> list[list[float]]:
        """Mean-pooled, L2-normalised embeddings from the model itself (a separate embedding-mode
        instance, kept loaded beside the chat one)."""
        import math

        from llama_cpp import Llama

        key = "embed:" + manifest.name + ":" + manifest.digest
        with self._lock:
            loaded = self._loaded.get(key)
            if loaded is None:
                llama = Llama(model_path=manifest.base_path, embedding=True, n_ctx=DEFAULT_CONTEXT, n_threads=self._threads,
                              verbose=False, pooling_type=1)
                loaded = LoadedModel(manifest, llama, 0.0)
                self._loaded[key] = loaded
        with loaded.lock:
            vectors = [loaded.llama.embed(text) for text in texts]
        out = []
        for vector in vectors:
            norm = math.sqrt(sum(v * v for v in vector)) or 1.0
            out.append([v / norm for v in vector])
        return out

    def loaded(self) -> list[LoadedModel]:
        with self._lock:
            return list(self._loaded.values())

    def unload(self, name: str) -> None:
        with self._lock:
            for key in [k for k, v in self._loaded.items() if v.manifest.name == name]:
                del self._loaded[key]
