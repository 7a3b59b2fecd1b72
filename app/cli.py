"""Entry point of the ``orch-mind`` command: backend's CLI plus ``orch-mind app`` (the window).

Kept in app/ so that backend/ never imports the GUI shell.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from backend.cli import main, register


@click.command("app")
@click.option("--browser", is_flag=True, help="Serve the UI on 127.0.0.1 even when a display is available.")
@click.option("--port", type=click.IntRange(1024, 65535), default=None, help="Port for browser mode (default: a free one).")
@click.option("--self-test", "self_test", type=click.Path(dir_okay=False, path_type=Path), default=None, hidden=True,
              help="Open the window, ping the bridge from JavaScript, write a JSON report there and exit.")
def app_command(browser: bool, port: int | None, self_test: Path | None) -> None:
    """Open the Orch-Mind window (or browser mode when there is no display)."""
    if self_test is not None:
        from app.self_test import run_self_test

        sys.exit(0 if run_self_test(self_test) else 1)
    from app.main import run_app

    run_app(force_browser=browser, port=port)


register(app_command)

if __name__ == "__main__":
    main()
