"""One log file per data dir, so sidecar, trainer and bridge errors can be read after the fact.

Third-party libraries (transformers, sentence-transformers, bitsandbytes, torch…) log warnings and
draw progress bars on stderr when nobody configured logging; in the app and the CLI those go to the
same file instead, so importing or searching prints only what Orch-Mind means to say.
"""

from __future__ import annotations

import logging
import os
from logging.handlers import RotatingFileHandler

from backend.config import DataLayout

QUIET_ENVIRONMENT = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # transformers' "Loading weights" bars follow this switch too
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def quiet_libraries() -> None:
    """Before the libraries are imported: no progress bars, no advisory warnings on stderr."""
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


def configure_logging(layout: DataLayout | None = None, level: int = logging.INFO) -> None:
    quiet_libraries()
    layout = layout or DataLayout.current()
    root = logging.getLogger("orch_mind")
    if any(isinstance(h, RotatingFileHandler) for h in root.handlers):
        return
    handler = RotatingFileHandler(layout.log_file, maxBytes=5_000_000, backupCount=3)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    libraries = logging.getLogger()  # everyone else's warnings: into the file, not onto stderr
    if not libraries.handlers:
        libraries.addHandler(handler)
        libraries.setLevel(logging.WARNING)
