"""Run in a subprocess by test_window.py: open the real pywebview window and probe it from Python.

pywebview must own the main thread, so the probe runs in ``on_started``'s helper thread: it waits for
the UI, drives it with evaluate_js, reads the DOM back, takes a screenshot of the X display, and
closes the window. Results go to a JSON file for the test to assert on.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback

from app.main import build_api
from app.self_test import wait_for
from app.window import run_window


def main(result_path: str, screenshot_path: str) -> None:
    result: dict[str, object] = {}

    def probe(window) -> None:
        try:
            wait_for(window, "document.body.dataset.ready === 'true'")
            result["status"] = window.evaluate_js("document.getElementById('bridge-status').textContent")
            result["background"] = window.evaluate_js("getComputedStyle(document.body).backgroundColor")
            result["theme"] = window.evaluate_js("document.documentElement.dataset.theme || 'system'")
            result["engine_language"] = window.evaluate_js("navigator.language")
            from qtpy.QtGui import QPalette
            from qtpy.QtWidgets import QApplication

            result["qt_window_colour"] = QApplication.instance().palette().color(QPalette.Window).name()
            window.evaluate_js("location.hash = 'settings'")
            result["data_dir_text"] = wait_for(
                window, "(document.querySelector('[data-testid=data-dir]') || {}).textContent || ''")
            window.evaluate_js("window.pywebview.api.ping('from-js').then(a => { document.body.dataset.ping = a.data.reply; })")
            result["ping_in_dom"] = wait_for(window, "document.body.dataset.ping || ''")
            window.evaluate_js("window.pywebview.api.ping(12345).then(a => { document.body.dataset.bad = JSON.stringify(a); })")
            result["bad_call"] = json.loads(wait_for(window, "document.body.dataset.bad || ''"))
            result["exposed"] = sorted(wait_for(window, "Object.keys(window.pywebview.api)"))
            time.sleep(0.5)
            from PIL import ImageGrab

            ImageGrab.grab(xdisplay=os.environ["DISPLAY"]).save(screenshot_path)
        except Exception:  # noqa: BLE001 - the probe reports everything to the test
            result["error"] = traceback.format_exc()
        finally:
            with open(result_path, "w") as handle:
                json.dump(result, handle)
            window.destroy()

    api, _events = build_api("window")
    run_window(api, on_started=probe)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
