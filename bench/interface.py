"""Interface benchmark: how long the screens take to draw, in real Chromium on browser mode.

    python bench/interface.py [--quick] [--json]

The app runs with its defaults on a fresh data dir that holds a realistic memory (imported ChatGPT
export: 300 conversations, 40 with --quick) and a few earlier chats.
- first_chat_draw_ms: the app's URL opened right after ``orch-mind app`` printed it (a fresh process:
  nothing loaded, the engine not running) → the Chat screen drawn and ready to type in; start_to_url_ms
  and start_to_chat_ms: from the command's launch. What a user waits for at every start.
- screen_ms.<name>: a click in the navigation → that screen drawn (median of the visits).
- chat_vs_settings: the Chat screen's draw over the Settings screen's (one bridge call), same run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.memory import generate_export  # noqa: E402

# What each screen shows once it is drawn (the same states the Chromium tests wait on).
SCREENS = {"chat": "[data-testid=messages][data-state=idle]", "memory": "[data-testid=search-input]",
           "training": "[data-testid=train-runs] > *", "models": "h1", "network": "h1",
           "settings": "[data-testid=data-dir]"}
from tests.conftest import CHROMIUM_ARGS  # noqa: E402 - the same Chromium flags as the browser tests


def prepare(home: Path, conversations: int) -> None:
    from backend.chat.sessions import ChatSessions
    from backend.config import DataLayout
    from backend.memory.embeddings import get_embedder
    from backend.memory.ingest import import_path
    from backend.memory.store import get_store

    layout = DataLayout(home)
    import_path(get_store(layout), generate_export(home / "export.zip", conversations), get_embedder())
    sessions = ChatSessions(get_store(layout))
    for number in range(5):
        session = sessions.create("smollm2", "", True, title=f"Earlier chat {number}")
        for turn in range(4):
            sessions.append(session.id, "user", f"Question {turn} of chat {number}?")
            sessions.append(session.id, "assistant", f"Answer {turn} of chat {number}, in a few words.")


def measure(home: Path, visits: int) -> dict[str, object]:
    """The app started as a user starts it (``orch-mind app`` with no display: browser mode, its own
    process), and a Chromium already running, as the user's browser would be."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("Debian's chromium is needed (make test installs it).")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(600_000)
        started = time.perf_counter()
        app = subprocess.Popen([sys.executable, "-m", "app.cli", "app"], cwd=ROOT, env={**env, "ORCH_MIND_HOME": str(home)},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            url = next((found.group(0) for line in app.stdout if (found := re.search(r"http://127\.0\.0\.1:\S+", line))), None)
            if url is None:
                raise RuntimeError("the app never printed its URL")
            threading.Thread(target=app.stdout.read, daemon=True).start()  # keep its pipe drained
            opened = time.perf_counter()
            page.goto(url)
            page.wait_for_selector(f"body[data-ready=true] #screen[data-screen=chat] {SCREENS['chat']}")
            drawn = time.perf_counter()
            times: dict[str, list[float]] = {name: [] for name in SCREENS}
            for _ in range(visits):
                for name in [*SCREENS][1:] + ["chat"]:
                    began = time.perf_counter()
                    page.click(f"#nav button[data-screen={name}]")
                    page.wait_for_selector(f"#screen[data-screen={name}] {SCREENS[name]}")
                    times[name].append((time.perf_counter() - began) * 1000)
        finally:
            browser.close()
            app.terminate()
            app.wait(timeout=60)
    screens = {name: round(statistics.median(values), 1) for name, values in times.items()}
    return {"first_chat_draw_ms": round((drawn - opened) * 1000, 1), "start_to_url_ms": round((opened - started) * 1000, 1),
            "start_to_chat_ms": round((drawn - started) * 1000, 1), "screen_ms": screens,
            "chat_vs_settings": round(screens["chat"] / screens["settings"], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--prepare", nargs=2, metavar=("HOME", "CONVERSATIONS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prepare:
        prepare(Path(args.prepare[0]), int(args.prepare[1]))
        return
    conversations, visits = (40, 3) if args.quick else (300, 7)
    with tempfile.TemporaryDirectory() as workdir:
        home = Path(workdir) / "home"
        home.mkdir(mode=0o700)
        os.environ["ORCH_MIND_HOME"] = str(home)
        # In its own process: the app must find the memory database closed, as after a real import.
        subprocess.run([sys.executable, __file__, "--prepare", str(home), str(conversations)], check=True,
                       env={**os.environ, "ORCH_MIND_HOME": str(home)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        result = {"quick": args.quick, "conversations": conversations, "visits": visits, **measure(home, visits)}
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")


if __name__ == "__main__":
    main()
