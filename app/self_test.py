"""``orch-mind app --self-test REPORT``: open the real window, prove the bridge works, close.

Packagers (and the bundle smoke test) run it to check a build on a real display: the window loads
the UI, JavaScript calls ``ping`` through the js_api, and the report says what came back. The
window closes itself; the exit code is 0 only when everything answered.
"""

from __future__ import annotations

import json
import time
import traceback
from pathlib import Path
from typing import Any

from app.main import build_api, first_start
from app.window import run_window


def wait_for(window: Any, expression: str, timeout: float = 60.0) -> Any:
    deadline = time.time() + timeout
    value = None
    while time.time() < deadline:
        value = window.evaluate_js(expression)
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError(f"{expression} stayed {value!r}")


def run_self_test(report_path: Path) -> bool:
    layout = first_start()
    started = time.perf_counter()
    result: dict[str, Any] = {"data_dir": str(layout.root)}

    def probe(window: Any) -> None:
        try:
            wait_for(window, "document.body.dataset.ready === 'true'")
            result["ready_s"] = round(time.perf_counter() - started, 2)
            result["ready_at"] = time.time()  # wall clock, so a launcher can time launch -> ready
            result["status"] = window.evaluate_js("document.getElementById('bridge-status').textContent")
            window.evaluate_js("window.pywebview.api.ping('self-test').then(a => { document.body.dataset.ping = a.data.reply; })")
            result["ping"] = wait_for(window, "document.body.dataset.ping || ''")
        except Exception:  # noqa: BLE001 - everything goes into the report
            result["error"] = traceback.format_exc()
        finally:
            report_path.write_text(json.dumps(result, indent=2))
            window.destroy()

    api, _events = build_api("window", layout)
    run_window(api, on_started=probe)
    return "error" not in result and result.get("ping") == "pong: self-test"
