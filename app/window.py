"""Window mode: a pywebview (Qt) window showing ``frontend/`` with :class:`app.bridge.Api` as js_api."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

FRONTEND_INDEX = Path(__file__).resolve().parent.parent / "frontend" / "index.html"


def _add_chromium_flag(flag: str) -> None:
    flags = os.environ.get("QTWEBENGINE_CHROMIUM_FLAGS", "")
    name = flag.split("=")[0]
    if name not in flags:
        os.environ["QTWEBENGINE_CHROMIUM_FLAGS"] = (flags + " " + flag).strip()


def prepare_qt_environment(language: str = "en") -> None:
    """Qt needs these on Linux: xcb, and Chromium's sandbox cannot run as root. The engine's own
    language is the UI's, so date fields and built-in messages read like the rest of the screen."""
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        _add_chromium_flag("--no-sandbox")
    _add_chromium_flag(f"--lang={language}")


# The page's dark tokens (frontend/style.css), for what Qt draws itself: the file dialog, message boxes.
QT_DARK = {"Window": "#171b24", "WindowText": "#e6e9ef", "Base": "#0f1218", "AlternateBase": "#1f2430",
           "Text": "#e6e9ef", "Button": "#1f2430", "ButtonText": "#e6e9ef", "Highlight": "#7c9cff",
           "HighlightedText": "#0b0e14", "ToolTipBase": "#1f2430", "ToolTipText": "#e6e9ef", "PlaceholderText": "#9aa3b2"}


_QT_APP: Any = None


def style_qt(theme: str) -> None:
    """Qt's own widgets in the page's colours: dark when the theme is fixed to dark, or when it follows a
    system that Qt reports as dark (the page follows the same report). The application is created here,
    before pywebview (which reuses it), and after Qt WebEngine is imported, as Qt requires."""
    import sys

    import webview.platforms.qt  # noqa: F401 - imports Qt WebEngine, which must precede the QApplication
    from qtpy.QtCore import Qt
    from qtpy.QtGui import QColor, QPalette
    from qtpy.QtWidgets import QApplication

    global _QT_APP  # kept alive here: Qt destroys an application whose Python object is collected
    app = _QT_APP = QApplication.instance() or QApplication(sys.argv)
    if not (theme == "dark" or (theme == "system" and app.styleHints().colorScheme() == Qt.ColorScheme.Dark)):
        return
    app.setStyle("Fusion")
    palette = app.palette()
    for role, colour in QT_DARK.items():
        palette.setColor(getattr(QPalette, role), QColor(colour))
    app.setPalette(palette)


def run_window(api: Any, *, on_started: Callable[[Any], None] | None = None, debug: bool = False) -> None:
    """Open the window and block until it is closed. ``on_started(window)`` runs in a helper thread."""
    from backend.config import load_settings
    from backend.errors import OrchMindError

    try:
        settings = load_settings(getattr(api, "_layout", None))
        language, theme = settings.language, settings.theme
    except OrchMindError:  # a damaged settings file is reported by the UI itself; open the window anyway
        language, theme = "en", "system"
    prepare_qt_environment(language)
    import webview  # imported late: Qt is heavy and browser mode does not need it

    style_qt(theme)

    window = webview.create_window(
        "Orch-Mind", url=str(FRONTEND_INDEX), js_api=api, width=1200, height=820, min_size=(820, 560),
        # Text stays selectable (people copy answers and keys); pywebview would otherwise inject an inline
        # <style> to disable selection, which our CSP (style-src 'self') refuses and the window logs.
        text_select=True,
    )
    api._attach_window(window)
    args: tuple[Any, ...] = (window,) if on_started else ()
    webview.start(on_started, args, gui="qt", private_mode=True, debug=debug, http_server=True)
