"""Start the app: a window when there is a display, else browser mode on loopback."""

from __future__ import annotations

import logging
import os
import secrets
import sys
from typing import Any

from app.bridge import Api
from app.browser_server import BrowserModeConfig, create_browser_app
from app.events import EventChannel
from backend.config import DataLayout
from backend.jobs import JobRegistry
from backend.logging_setup import configure_logging
from backend.loopback_server import LoopbackServer, free_port

log = logging.getLogger("orch_mind.app")


def first_start(layout: DataLayout | None = None) -> DataLayout:
    """Create the data dir and register the bundled default models (no download, idempotent)."""
    from backend.inference.model_store import ModelStore

    layout = layout or DataLayout.current()
    ModelStore(layout).register_defaults()
    return layout


def build_api(mode: str, layout: DataLayout | None = None) -> tuple[Api, EventChannel]:
    layout = layout or DataLayout.current()
    events = EventChannel()
    api = Api(layout, JobRegistry(), events, mode)
    return api, events


def has_display() -> bool:
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class BrowserModeServer:
    """Browser mode's server: the bridge over HTTP on 127.0.0.1 with a fresh token per launch."""

    def __init__(self, api: Api, events: EventChannel, port: int | None = None) -> None:
        port = port or free_port()
        self.api = api
        self.config = BrowserModeConfig(port=port, token=secrets.token_urlsafe(32), uploads_dir=api._layout.uploads_dir)
        self._server = LoopbackServer(create_browser_app(api, events, self.config), port, "browser-mode")

    def start_in_thread(self) -> BrowserModeServer:
        self._server.start()
        return self

    def run_forever(self) -> None:
        self._server.run_forever()

    def stop(self) -> None:
        self._server.stop()


def run_app(*, force_browser: bool = False, port: int | None = None, on_started: Any = None) -> None:
    configure_logging()
    first_start()
    if force_browser or not has_display():
        api, events = build_api("browser")
        server = BrowserModeServer(api, events, port)
        print("No display found: Orch-Mind is serving its UI in browser mode." if not force_browser
              else "Orch-Mind browser mode.", flush=True)
        print(f"Open this URL in a browser on this machine: {server.config.url}", flush=True)
        server.run_forever()
        return
    from app.window import run_window

    api, _events = build_api("window")
    run_window(api, on_started=on_started)
