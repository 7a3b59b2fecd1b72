"""The PyInstaller build the bundle tests need, started when the session's tests are collected.

The build takes about five minutes of mostly single-threaded analysis; started at collection (at a
lower CPU priority) it overlaps the rest of the suite instead of adding to it. The ``bundle`` fixture
waits for it; a session that does not run the bundle tests never starts it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


class BackgroundBuild:
    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._stdout: Any = None
        self._stderr: Any = None

    def start(self) -> None:
        if self._process is not None:
            return
        self._stdout, self._stderr = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        self._process = subprocess.Popen([sys.executable, "build/build_bundle.py"], cwd=REPO, stdout=self._stdout,
                                         stderr=self._stderr, preexec_fn=lambda: os.nice(10))

    def result(self, timeout: float = 3000) -> dict[str, Any]:
        """Wait for the build; its report ({"bundle", "size_mb", "seconds"})."""
        self.start()
        assert self._process is not None
        returncode = self._process.wait(timeout=timeout)
        self._stdout.seek(0)
        self._stderr.seek(0)
        stdout, stderr = self._stdout.read().decode(), self._stderr.read().decode()
        assert returncode == 0, stderr[-4000:]
        return json.loads(stdout.strip().splitlines()[-1])

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()


BUILD = BackgroundBuild()
