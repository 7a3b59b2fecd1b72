"""Interface benchmark: how long the screens take to draw, in real Chromium on browser mode.

    python bench/interface.py [--quick] [--json]

The app runs with its defaults on a fresh data dir that holds a realistic memory (imported ChatGPT
export: 300 conversations, 40 with --quick) and a few earlier chats.
- first_chat_draw_ms: the page opened right after the app started (the engine not yet running) →
  the Chat screen drawn and ready to type in. What a user waits for at every start.
- screen_ms.<name>: a click in the navigation → that screen drawn (median of the visits).
- chat_vs_settings: the Chat screen's draw over the Settings screen's (one bridge call), same run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.memory import generate_export  # noqa: E402

# What each screen shows once it is drawn (the same states the Chromium tests wait on).
SCREENS = {"chat": "[data-testid=messages][data-state=idle]", "memory": "[data-testid=search-input]",
           "training": "[data-testid=train-runs] > *", "models": "h1", "network": "h1",
           "settings": "[data-testid=data-dir]"}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions"]


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
    from playwright.sync_api import sync_playwright

    from app.main import BrowserModeServer, build_api
    from backend.config import DataLayout

    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("Debian's chromium is needed (make test installs it).")
    started = time.perf_counter()
    api, events = build_api("browser", DataLayout(home))
    server = BrowserModeServer(api, events).start_in_thread()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(600_000)
            page.goto(server.config.url)
            page.wait_for_selector(f"#screen[data-screen=chat] {SCREENS['chat']}")
            first = (time.perf_counter() - started) * 1000
            times: dict[str, list[float]] = {name: [] for name in SCREENS}
            for _ in range(visits):
                for name in [*SCREENS][1:] + ["chat"]:
                    began = time.perf_counter()
                    page.click(f"#nav button[data-screen={name}]")
                    page.wait_for_selector(f"#screen[data-screen={name}] {SCREENS[name]}")
                    times[name].append((time.perf_counter() - began) * 1000)
            browser.close()
    finally:
        server.stop()
    screens = {name: round(statistics.median(values), 1) for name, values in times.items()}
    return {"first_chat_draw_ms": round(first, 1), "screen_ms": screens,
            "chat_vs_settings": round(screens["chat"] / screens["settings"], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    conversations, visits = (40, 3) if args.quick else (300, 7)
    with tempfile.TemporaryDirectory() as workdir:
        home = Path(workdir) / "home"
        os.environ["ORCH_MIND_HOME"] = str(home)
        prepare(home, conversations)
        result = {"quick": args.quick, "conversations": conversations, "visits": visits, **measure(home, visits)}
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")


if __name__ == "__main__":
    main()
