"""Run the `orch-mind` command as a user does: a subprocess of this interpreter, which inherits the
test's data dir (ORCH_MIND_HOME, set by the autouse fixture)."""

import os
import subprocess
import sys


def run_cli(*args: str, stdin: str | None = None, timeout: float = 600,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``env`` adds to (or, with "", blanks) the test's environment."""
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, timeout=timeout,
                          input=stdin, env={**os.environ, **(env or {})})
