"""Choose the engine: a real Ollama daemon when one answers, else start the embedded one.

Either way the caller gets an ``ollama.Client`` pointed at it: one code path for both.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import ollama

from backend.config import DataLayout, load_settings
from backend.inference.discovery import probe_ollama
from backend.inference.engine_guard import OriginPolicy
from backend.inference.engine_server import create_engine_app
from backend.inference.llama_runner import LlamaRunner
from backend.inference.model_store import ModelStore
from backend.loopback_server import LoopbackServer, free_port


class EmbeddedEngine:
    """The embedded Ollama-compatible server, in a background thread (app) or foreground (serve)."""

    def __init__(self, layout: DataLayout | None = None, port: int | None = None) -> None:
        self.store = ModelStore(layout)
        self.store.register_defaults()
        self.port = port or free_port()
        origins = OriginPolicy.from_settings(load_settings(layout).engine_origins)
        self.runner = LlamaRunner()
        self._server = LoopbackServer(create_engine_app(self.store, self.runner, port=self.port, origins=origins), self.port,
                                      "embedded-engine")

    @property
    def host(self) -> str:
        return self._server.url

    def start(self) -> EmbeddedEngine:
        self._server.start()
        return self

    def serve_forever(self) -> None:
        self._server.run_forever()

    def stop(self) -> None:
        self._server.stop()


@dataclass
class EngineConnection:
    kind: str  # "ollama" | "embedded"
    host: str
    client: ollama.Client
    embedded: EmbeddedEngine | None = None


def connect(layout: DataLayout | None = None) -> EngineConnection:
    host = load_settings(layout).ollama_host
    version = probe_ollama(host)
    if version and "orch-mind" not in version:
        return EngineConnection("ollama", host, ollama.Client(host=host))
    engine = EmbeddedEngine(layout).start()
    return EngineConnection("embedded", engine.host, ollama.Client(host=engine.host), engine)


_connections: dict[str, EngineConnection] = {}
_connections_lock = threading.Lock()


def get_connection(layout: DataLayout | None = None) -> EngineConnection:
    """The process-wide engine connection (starts the embedded engine at most once per data dir)."""
    layout = layout or DataLayout.current()
    with _connections_lock:
        key = str(layout.root)
        if key not in _connections:
            _connections[key] = connect(layout)
        return _connections[key]
