"""Bundle benchmark: size of the PyInstaller bundle and its cold start, against the source install.

    python bench/bundle.py [--json]      (builds dist/orch-mind first if it is missing)

- bundle_size_mb, and the largest parts (so growth is easy to pin on something).
- cold_start_window_s: launch to the UI ready in a real window under Xvfb (``app --self-test``), for
  the bundle; cold_start_window_vs_source: the same / running from the venv, measured in the same run.
- cold_start_browser_s: launch to browser mode's URL on stdout (no display), bundle and source.
A fresh data dir each time, so first-start work (data dir, default models) is included.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ROOT / "dist" / "orch-mind" / "orch-mind"
SOURCE = [sys.executable, "-m", "app.cli"]


def start_xvfb() -> tuple[subprocess.Popen, str]:
    read_fd, write_fd = os.pipe()
    process = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x860x24", "-nolisten", "tcp"],
                               pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    with os.fdopen(read_fd) as reader:
        return process, f":{reader.readline().strip()}"


def env_for(home: str, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "ORCH_MIND_HOME")}
    return {**base, "ORCH_MIND_HOME": home, "HF_HUB_OFFLINE": "1", **extra}


def window_start(command: list[str], display: str) -> float:
    with tempfile.TemporaryDirectory() as home:
        report = Path(home) / "report.json"
        launched = time.time()
        subprocess.run([*command, "app", "--self-test", str(report)], cwd=ROOT, env=env_for(home, DISPLAY=display),
                       capture_output=True, timeout=600, check=True)
        return round(json.loads(report.read_text())["ready_at"] - launched, 2)


def browser_start(command: list[str]) -> float:
    with tempfile.TemporaryDirectory() as home:
        started = time.perf_counter()
        process = subprocess.Popen([*command, "app"], cwd=ROOT, env=env_for(home), stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        try:
            for line in process.stdout:
                if "http://127.0.0.1:" in line:
                    return round(time.perf_counter() - started, 2)
        finally:
            process.terminate()
            process.wait(timeout=30)
    raise RuntimeError("browser mode never printed its URL")


def largest_parts(folder: Path, count: int = 8) -> dict[str, float]:
    sizes: dict[str, int] = {}
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            top = path.relative_to(folder).parts
            key = "/".join(top[:2]) if top[0] == "_internal" and len(top) > 2 else top[0]
            sizes[key] = sizes.get(key, 0) + path.stat().st_size
    return {k: round(v / 1e6, 1) for k, v in sorted(sizes.items(), key=lambda kv: -kv[1])[:count]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not BUNDLE.exists():
        subprocess.run([sys.executable, str(ROOT / "build" / "build_bundle.py")], check=True, cwd=ROOT)
    folder = BUNDLE.parent
    xvfb, display = start_xvfb()
    try:
        bundle_window, source_window = window_start([str(BUNDLE)], display), window_start(SOURCE, display)
    finally:
        xvfb.terminate()
    bundle_browser, source_browser = browser_start([str(BUNDLE)]), browser_start(SOURCE)
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    result = {
        "bundle_size_mb": round(size / 1e6, 1),
        "largest_parts_mb": largest_parts(folder),
        "cold_start_window_s": bundle_window, "cold_start_window_source_s": source_window,
        "cold_start_window_vs_source": round(bundle_window / source_window, 2),
        "cold_start_browser_s": bundle_browser, "cold_start_browser_source_s": source_browser,
        "cold_start_browser_vs_source": round(bundle_browser / source_browser, 2),
    }
    print(json.dumps(result, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
