"""Build the one-folder bundle for this platform: ``dist/orch-mind/orch-mind`` (``make dist``).

    python build/build_bundle.py [--dist DIR]

Prints {"bundle", "size_mb", "seconds"} as JSON when done. PyInstaller's work files go to
.cache/pyinstaller so rebuilds reuse its analysis.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def build(dist: Path) -> Path:
    command = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
               "--distpath", str(dist), "--workpath", str(ROOT / ".cache" / "pyinstaller"), str(ROOT / "build" / "orch-mind.spec")]
    subprocess.run(command, check=True, cwd=ROOT)
    bundle = dist / "orch-mind"
    for link in bundle.rglob("*"):  # PyInstaller leaves links to the Qt libraries the spec dropped
        if link.is_symlink() and not link.exists():
            link.unlink()
    return bundle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dist", type=Path, default=ROOT / "dist")
    args = parser.parse_args()
    started = time.perf_counter()
    bundle = build(args.dist)
    print(json.dumps({"bundle": str(bundle / "orch-mind"), "size_mb": round(folder_size(bundle) / 1e6, 1),
                      "seconds": round(time.perf_counter() - started, 1)}))


if __name__ == "__main__":
    main()
