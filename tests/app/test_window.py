"""The real pywebview (Qt) window under Xvfb: it opens, the UI calls js_api, the answer is in the DOM."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.gui
def test_window_opens_and_bridge_round_trips(xvfb_display, orch_home, tmp_path, artifacts_dir):
    from backend.config import DataLayout, update_settings

    update_settings({"theme": "dark", "language": "pt-BR"}, DataLayout(orch_home))
    result_path = tmp_path / "probe.json"
    screenshot = artifacts_dir / "window.png"
    env = {**os.environ, "DISPLAY": xvfb_display, "ORCH_MIND_HOME": str(orch_home)}
    completed = subprocess.run(
        [sys.executable, "-m", "tests.app.window_probe", str(result_path), str(screenshot)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=180,
    )
    assert result_path.exists(), f"the window never reported back:\n{completed.stderr[-3000:]}"
    result = json.loads(result_path.read_text())
    assert "error" not in result, result.get("error")
    assert result["status"] == "Conectado · janela", "the window's UI in the chosen language"
    assert result["engine_language"] == "pt-BR", "and its web engine too (date fields, built-in messages)"
    assert result["qt_window_colour"] == "#171b24", "Qt's own dialogs in the dark theme too"
    assert result["theme"] == "dark" and result["background"] == "rgb(15, 18, 24)", "the chosen theme, in the window too"
    assert "Content Security Policy" not in completed.stderr and "Refused to" not in completed.stderr, \
        "the page breaks none of its own security policy (the window logs each violation)"
    assert str(orch_home.resolve()) in result["data_dir_text"]
    assert result["ping_in_dom"] == "pong: from-js"
    assert result["bad_call"]["ok"] is False and result["bad_call"]["error"]["code"] == "invalid_argument"
    assert "poll_events" in result["exposed"] and "_attach_window" not in result["exposed"]
    assert screenshot.stat().st_size > 10_000
    assert completed.returncode == 0, completed.stderr[-3000:]
