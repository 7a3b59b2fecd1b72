"""Window mode: a pywebview (Qt) window showing ``frontend/`` with :class:`app.bridge.Api` as js_api."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

FRONTEND_INDEX = Path(__file__).resolve().parent.parent / "frontend" / "index.html"


def prepare_qt_environment() -> None:
    """Qt needs these on Linux: xcb, and Chromium's sandbox cannot run as root."""
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        flags = os.environ.get("QTWEBENGINE_CHROMIUM_FLAGS", "")
        if "--no-sandbox" not in flags:
            os.environ["QTWEBENGINE_CHROMIUM_FLAGS"] = (flags + " --no-sandbox").strip()


def run_window(api: Any, *, on_started: Callable[[Any], None] | None = None, debug: bool = False) -> None:
    """Open the window and block until it is closed. ``on_started(window)`` runs in a helper thread."""
    prepare_qt_environment()
    import webview  # imported late: Qt is heavy and browser mode does not need it

    window = webview.create_window(
        "Orch-Mind", url=str(FRONTEND_INDEX), js_api=api, width=1200, height=820, min_size=(820, 560),
        # Text stays selectable (people copy answers and keys); pywebview would otherwise inject an inline
        # <style> to disable selection, which our CSP (style-src 'self') refuses and the window logs.
        text_select=True,
    )
    api._attach_window(window)
    args: tuple[Any, ...] = (window,) if on_started else ()
    webview.start(on_started, args, gui="qt", private_mode=True, debug=debug, http_server=True)
