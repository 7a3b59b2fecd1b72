"""The DuckDB memory store: one file in the data dir, migrated on open.

One :class:`MemoryStore` per process owns the database; threads take their own cursor (DuckDB
gives each a consistent snapshot), so a search never waits for an import to finish.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TypeVar

import duckdb

from backend.config import DataLayout
from backend.errors import OrchMindError
from backend.memory.extensions import connect_with_extensions
from backend.memory.migrations import apply_migrations

T = TypeVar("T")


_flags: dict[Path, dict[str, str]] = {}  # database file -> its flags, shared by its stores in this process
_flags_lock = threading.Lock()


class MemoryStoreError(OrchMindError):
    code = "memory_store"


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class MemoryStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._db = connect_with_extensions(path)
        except duckdb.IOException as exc:
            raise MemoryStoreError(
                f"Could not open the memory database {path}: {exc}. If another Orch-Mind is running, close it first."
            ) from exc
        apply_migrations(self._db)
        with _flags_lock:
            self._flags = _flags.setdefault(Path(path).resolve(), {})
            stored = dict(self._db.execute("SELECT name, value FROM store_flags").fetchall())
            for name in set(self._flags) - set(stored):  # (never emptied on the way: readers use it meanwhile)
                del self._flags[name]
            self._flags.update(stored)
        self._recover_interrupted_imports()
        self.write_lock = threading.Lock()  # one import/delete at a time; readers never take it
        self._companions: dict[type, object] = {}
        self._companions_lock = threading.Lock()

    @classmethod
    def open_default(cls, layout: DataLayout | None = None) -> MemoryStore:
        return cls((layout or DataLayout.current()).memory_db)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self._db.cursor()

    def companion(self, kind: type[T]) -> T:
        """The store's one ``kind(store)`` (its in-memory indexes, shared by every search), made on first use."""
        with self._companions_lock:
            if kind not in self._companions:
                self._companions[kind] = kind(self)
            return self._companions[kind]  # type: ignore[return-value]

    def close(self) -> None:
        self._db.close()

    def _recover_interrupted_imports(self) -> None:
        """An import whose process died (kill -9, power loss) left no partial rows (its write is one
        transaction); mark it interrupted so the UI can say so and the next import redoes it."""
        rows = self._db.execute("SELECT id, pid FROM imports WHERE state = 'running'").fetchall()
        for import_id, pid in rows:
            if pid != os.getpid() and not _pid_alive(pid):
                self._db.execute(
                    "UPDATE imports SET state = 'interrupted', finished_at = now(), "
                    "error = 'The app stopped during this import; import the file again to finish it.' WHERE id = ?",
                    [import_id],
                )

    def get_flag(self, name: str) -> str | None:
        """A flag, from memory: every search reads two, and a DuckDB lookup costs about 1 ms. The copy
        is true because this process holds the database file alone (DuckDB lets one process write
        it), every store of the file in this process shares it, and flags change only through
        :meth:`set_flag` (migrations run before it is read)."""
        return self._flags.get(name)

    def set_flag(self, name: str, value: str) -> None:
        with _flags_lock:
            self.cursor().execute(
                "INSERT INTO store_flags VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value", [name, value]
            )
            self._flags[name] = value


_stores: dict[Path, MemoryStore] = {}
_stores_lock = threading.Lock()


def get_store(layout: DataLayout | None = None) -> MemoryStore:
    """The process-wide store for the data dir (opened on first use)."""
    path = (layout or DataLayout.current()).memory_db
    with _stores_lock:
        if path not in _stores:
            _stores[path] = MemoryStore(path)
        return _stores[path]
