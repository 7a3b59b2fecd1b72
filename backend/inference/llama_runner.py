"""Loaded llama.cpp models for the embedded engine: one generation at a time per model, reused across requests.

A model with an adapter is loaded with that adapter or not at all: a failure to apply the LoRA is an
error for the caller, never a quiet fall back to the base model.

Requests for a model wait their turn in arrival order (:class:`FifoLock`; a plain lock lets a
late-comer overtake), and a waiter whose client left gives up its place at once. A model stays
loaded for its ``keep_alive`` after its last request (Ollama's rule: 5 minutes unless asked,
``0`` unloads as soon as the request ends, a negative value keeps it loaded), unloaded by one
timer thread that sleeps until the next expiry.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from backend.inference.chat_templates import chat_handler, formatter, template_for
from backend.inference.engine_errors import EngineError
from backend.inference.model_store import ModelManifest

DEFAULT_CONTEXT = 2048
MAX_LOADED = 2
DEFAULT_KEEP_ALIVE_S = 300.0


class StopSignal(threading.Event):
    """An event that also wakes whatever registered to hear about it (a waiter in a FifoLock)."""

    def __init__(self) -> None:
        super().__init__()
        self._callbacks: list[Any] = []
        self._callbacks_lock = threading.Lock()

    def add_callback(self, callback: Any) -> None:
        with self._callbacks_lock:
            self._callbacks.append(callback)
            fire = self.is_set()
        if fire:
            callback()

    def set(self) -> None:
        super().set()
        with self._callbacks_lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            callback()


class _Turn:
    __slots__ = ("wake", "granted")

    def __init__(self) -> None:
        self.wake = threading.Event()
        self.granted = False


class FifoLock:
    """A lock granted in arrival order; a waiter can be cancelled by the event it waits with."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiters: deque[_Turn] = deque()
        self._held = False

    def acquire(self, cancel: threading.Event | None = None) -> bool:
        """Wait for the lock; False if ``cancel`` (a :class:`StopSignal`) was set first, giving up the place in line."""
        with self._mutex:
            if not self._held and not self._waiters:
                self._held = True
                return True
            turn = _Turn()
            self._waiters.append(turn)
        if isinstance(cancel, StopSignal):
            cancel.add_callback(turn.wake.set)
        turn.wake.wait()
        with self._mutex:
            if turn.granted:
                return True
            self._waiters.remove(turn)  # woken by the cancel signal
            return False

    def release(self) -> None:
        with self._mutex:
            if self._waiters:
                turn = self._waiters.popleft()
                turn.granted = True
                turn.wake.set()
            else:
                self._held = False

    def locked(self) -> bool:
        return self._held

    def waiting(self) -> int:
        return len(self._waiters)

    def __enter__(self) -> FifoLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@dataclass
class LoadedModel:
    manifest: ModelManifest
    llama: Any
    load_seconds: float
    lock: FifoLock = field(default_factory=FifoLock)
    last_used: float = field(default_factory=time.time)
    n_ctx: int = DEFAULT_CONTEXT
    load_reported: bool = False  # the first answer after loading carries load_duration
    template: Any = None  # chat_templates.ChatTemplate
    formatter: Any = None  # its Jinja formatter, compiled once
    expires_at: float | None = None  # when keep_alive unloads it (math.inf: never); None until first used
    active: int = 0  # requests holding or waiting for this model (never unloaded under them)
    purpose: str = "chat"  # or "embed": the same GGUF loaded in embedding mode


def default_threads() -> int:
    """llama.cpp threads: every core, up to 8 (more stops paying off for small models)."""
    return max(1, min(os.cpu_count() or 1, 8))


class LlamaRunner:
    def __init__(self, threads: int | None = None) -> None:
        self._threads = threads or default_threads()
        self._loaded: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()
        self._expiry = threading.Condition(self._lock)
        self._reaper: threading.Thread | None = None

    def get(self, manifest: ModelManifest, n_ctx: int | None = None) -> LoadedModel:
        """The loaded model (loading it if needed), without holding it for a request."""
        return self._get(manifest, n_ctx, hold=False)

    def checkout(self, manifest: ModelManifest, n_ctx: int | None = None) -> LoadedModel:
        """The loaded model, marked in use until :meth:`checkin` (so keep_alive never unloads it mid-request)."""
        return self._get(manifest, n_ctx, hold=True)

    def checkin(self, loaded: LoadedModel, keep_alive: float | None) -> None:
        """A request is done with ``loaded``: start the model's keep-alive clock (seconds; None = the
        default, negative = forever, 0 = unload now if nobody else is using it)."""
        keep = DEFAULT_KEEP_ALIVE_S if keep_alive is None else keep_alive
        with self._lock:
            loaded.active = max(0, loaded.active - 1)
            loaded.last_used = time.time()
            expires = math.inf if keep < 0 else time.time() + keep
            for instance in self._loaded.values():  # the chat and embedding instances are one model to a client
                if instance.manifest.name == loaded.manifest.name:
                    instance.expires_at = expires
            loaded.expires_at = expires
            self._start_reaper()
            self._expiry.notify_all()

    def _get(self, manifest: ModelManifest, n_ctx: int | None, hold: bool) -> LoadedModel:
        key = manifest.name + ":" + manifest.digest
        with self._lock:
            loaded = self._loaded.get(key)
            if loaded is None or (n_ctx is not None and n_ctx != loaded.n_ctx):
                loaded = self._load(manifest, n_ctx)
                self._loaded[key] = loaded
                self._evict()
            self._loaded.move_to_end(key)
            loaded.last_used = time.time()
            if hold:
                loaded.active += 1
            elif loaded.expires_at is None and loaded.active == 0:
                loaded.expires_at = time.time() + DEFAULT_KEEP_ALIVE_S
                self._start_reaper()
                self._expiry.notify_all()
            return loaded

    def _load(self, manifest: ModelManifest, n_ctx: int | None) -> LoadedModel:
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
        template = template_for(metadata.get("general.architecture", ""), metadata.get("tokenizer.chat_template"))
        llama.chat_handler = chat_handler(llama, template)
        return LoadedModel(manifest, llama, time.time() - started, n_ctx=context, template=template,
                           formatter=formatter(llama, template))

    def _evict(self) -> None:
        """Past MAX_LOADED, drop the least recently used models nobody is using."""
        for key in list(self._loaded):
            if len(self._loaded) <= MAX_LOADED:
                return
            if self._loaded[key].active == 0:
                del self._loaded[key]

    def _start_reaper(self) -> None:
        if self._reaper is None:
            self._reaper = threading.Thread(target=self._reap, daemon=True, name="engine-keep-alive")
            self._reaper.start()

    def _reap(self) -> None:
        with self._lock:
            while True:
                now = time.time()
                for key, loaded in list(self._loaded.items()):
                    if loaded.active == 0 and loaded.expires_at is not None and loaded.expires_at <= now:
                        del self._loaded[key]
                deadlines = [m.expires_at for m in self._loaded.values()
                             if m.active == 0 and m.expires_at is not None and m.expires_at != math.inf]
                self._expiry.wait(timeout=max(0.0, min(deadlines) - now) if deadlines else None)

    def embed(self, manifest: ModelManifest, texts: list[str]) -> tuple[list[list[float]], int]:
        """Mean-pooled, L2-normalised embeddings from the model itself (a separate embedding-mode
        instance, kept loaded beside the chat one), and the number of tokens they read."""
        import math

        from llama_cpp import Llama

        key = "embed:" + manifest.name + ":" + manifest.digest
        with self._lock:
            loaded = self._loaded.get(key)
            if loaded is None:
                llama = Llama(model_path=manifest.base_path, embedding=True, n_ctx=DEFAULT_CONTEXT, n_threads=self._threads,
                              verbose=False, pooling_type=1)
                loaded = LoadedModel(manifest, llama, 0.0, purpose="embed")
                self._loaded[key] = loaded
            loaded.active += 1
        try:
            with loaded.lock:
                vectors = [loaded.llama.embed(text) for text in texts]
                tokens = sum(len(loaded.llama.tokenize(text.encode("utf-8"), add_bos=True)) for text in texts)
        finally:
            self.checkin(loaded, None)
        out = []
        for vector in vectors:
            norm = math.sqrt(sum(v * v for v in vector)) or 1.0
            out.append([v / norm for v in vector])
        return out, tokens

    def loaded(self) -> list[LoadedModel]:
        with self._lock:
            return list(self._loaded.values())

    def chat_instance(self, name: str) -> LoadedModel | None:
        """The loaded chat (not embedding) instance of model ``name``, if any."""
        return next((m for m in self.loaded() if m.manifest.name == name and m.purpose == "chat"), None)

    def unload(self, name: str) -> None:
        with self._lock:
            for key in [k for k, v in self._loaded.items() if v.manifest.name == name]:
                del self._loaded[key]
