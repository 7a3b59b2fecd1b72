"""How to start our own Python helpers, from a venv or from the PyInstaller bundle.

In the bundle there is no ``python``: the bundled executable itself runs helpers through hidden
subcommands (``trainer``, ``run-tool``), so training and GGUF conversion work from the bundle too.
"""

from __future__ import annotations

import sys
from pathlib import Path


def is_frozen() -> bool:
    return bool(getattr(sys, "frozen", False))


def llama_tool_command(tools_dir: Path, script: str, args: list[str]) -> list[str]:
    """Command that runs one of llama.cpp's converter scripts with our Python and packages."""
    if is_frozen():
        return [sys.executable, "run-tool", script, *args]
    return [sys.executable, str(tools_dir / script), *args]
