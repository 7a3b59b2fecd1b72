"""One log file per data dir, so sidecar, trainer and bridge errors can be read after the fact."""

from __future__ import annotations

import logging
from logging.handlers import RotatingFileHandler

from backend.config import DataLayout


def configure_logging(layout: DataLayout | None = None, level: int = logging.INFO) -> None:
    layout = layout or DataLayout.current()
    root = logging.getLogger("orch_mind")
    if any(isinstance(h, RotatingFileHandler) for h in root.handlers):
        return
    handler = RotatingFileHandler(layout.logs_dir / "orch-mind.log", maxBytes=5_000_000, backupCount=3)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
