"""Choose the engine: a real Ollama daemon when one answers, else start the embedded one.

Either way the caller gets an ``ollama.Client`` pointed at it: one code path for both.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass

import ollama

from backend.config import DataLayout, load_settings
from backend.inference.discovery import probe_ollama
from backend.inference.engine_server import create_engine_app
from backend.inference.model_store import ModelStore

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


class EmbeddedEngine:
    """The embedded Ollama-compatible server, in a background thread (app) or foreground (serve)."""

    def __init__(self, layout: DataLayout | None = None, port: int | None = None) -> None:
        import uvicorn

        self.store = ModelStore(layout)
        self.store.register_defaults()
        self.port = port or free_port()
        app = create_engine_app(self.store)
        self._server = uvicorn.Server(uvicorn.Config(app, host=LOOPBACK, port=self.port, log_level="warning", access_log=False))
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> "EmbeddedEngine":
        self._thread = threading.Thread(target=self._server.run, name="embedded-engine", daemon=True)
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"The embedded engine could not start on {self.host}.")
            threading.Event().wait(0.02)
        return self

    def serve_forever(self) -> None:
        self._server.run()

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread:
            self._thread.join(timeout=10)


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
