"""DuckDB with the ``vss`` and ``fts`` extensions loaded offline from their PyPI wheels.

``INSTALL vss`` would download from the extension repository, which fails offline (and users are
often offline), so DuckDB is pinned to the version whose extensions ship on PyPI as wheels, and we
``LOAD`` the files from those packages. Autoinstall/autoload are switched off so DuckDB never tries
the network behind our back.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from backend.errors import MissingPackage
from backend.package_files import package_dir

EXTENSIONS = ("vss", "fts")
HINT = "Reinstall with `make`, which installs duckdb-extension-vss/fts matching duckdb=={version}."


class MissingExtension(MissingPackage):
    code = "missing_extension"


def extension_path(name: str) -> Path:
    version = duckdb.__version__
    root = package_dir(f"duckdb_extension_{name}", HINT.format(version=version))
    path = root / "extensions" / f"v{version}" / f"{name}.duckdb_extension"
    if not path.exists():
        raise MissingExtension(
            f"The DuckDB {name} extension for DuckDB {version} is missing ({path}). " + HINT.format(version=version))
    return path


# DuckDB's buffer pool may otherwise grow to 80% of RAM: importing a 2 GB export (mostly tool output,
# stored but not embedded) peaked at 3.1 GB against 1.1 GB without the bulk; with this cap at 2.1 GB,
# whatever the export's size. Larger work spills to a temporary folder beside the database.
MEMORY_LIMIT = "1GB"


def connect_with_extensions(database: str | Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """The one way to open a DuckDB connection in Orch-Mind."""
    connection = duckdb.connect(
        str(database), read_only=read_only,
        config={"autoinstall_known_extensions": "false", "autoload_known_extensions": "false", "memory_limit": MEMORY_LIMIT},
    )
    for name in EXTENSIONS:
        connection.execute(f"LOAD '{extension_path(name).as_posix()}'")
    return connection
