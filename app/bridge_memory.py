"""Bridge methods of the Memory screen: import (upload or native picker), search, stats, delete."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from app.bridge_requests import MemorySearchRequest
from app.validation import Identifier, RelativePath, bridge_method, confined_path
from backend.config import DataLayout, load_settings
from backend.errors import ValidationError
from backend.jobs import JobContext, JobRegistry
from backend.memory.conversations import read_conversation
from backend.memory.embeddings import get_embedder
from backend.memory.ingest import delete_source, import_path
from backend.memory.search import MemorySearch, SearchFilters
from backend.memory.stats import memory_stats
from backend.memory.store import get_store

Mode = Literal["increment", "overwrite"]


def _date(value: str | None, field: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValidationError(f"{field} must be a date like 2024-05-31.") from exc


class MemoryBridge:
    _layout: DataLayout
    _jobs: JobRegistry
    _window: Any

    def _start_import(self, path: Path, mode: Mode, *, delete_after: bool = False, label: str | None = None) -> str:
        layout = self._layout
        label = label or path.name

        def run(context: JobContext) -> dict[str, Any]:
            embedder = get_embedder(load_settings(layout).embedding_model)
            stats = import_path(get_store(layout), path, embedder, mode=mode, label=label,
                                progress=lambda status, done, total: context.progress(status, done, total),
                                should_stop=lambda: context.cancelled)
            if delete_after:  # imported: the copy of the export need not stay in the data dir
                path.unlink(missing_ok=True)
            return stats.to_dict()

        return self._jobs.start("import", f"Import {label}", run)

    @bridge_method
    def start_import_upload(self, upload: RelativePath, mode: Mode = "increment", keep_upload: bool = False) -> dict[str, str]:
        """Import a file uploaded in browser mode (it lives in the data dir's uploads/); the upload is
        deleted once imported unless ``keep_upload``."""
        path = confined_path(self._layout.uploads_dir, upload)
        if not path.is_file():
            raise ValidationError(f"No uploaded file {upload!r}.")
        # Uploads are stored as "<8 hex>-<the user's file name>": the source is named by the user's name.
        label = re.sub(r"^[0-9a-f]{8}-", "", path.name)
        return {"job_id": self._start_import(path, mode, delete_after=not keep_upload, label=label)}

    @bridge_method
    def pick_and_import(self, mode: Mode = "increment") -> dict[str, str | None]:
        """Window mode: the user picks the file in a native dialog; JS never names a path."""
        if self._window is None:
            raise ValidationError("The file picker exists only in the desktop window; upload the file instead.")
        import webview

        chosen = self._window.create_file_dialog(
            webview.FileDialog.OPEN, file_types=("Exports (*.zip;*.json)", "All files (*.*)"))
        if not chosen:
            return {"job_id": None}
        return {"job_id": self._start_import(Path(chosen[0]), mode)}

    @bridge_method
    def memory_stats(self) -> dict[str, Any]:
        return memory_stats(get_store(self._layout))

    @bridge_method
    def search_memory(self, request: MemorySearchRequest) -> list[dict[str, Any]]:
        filters = SearchFilters(tuple(request.source_ids), tuple(request.roles), _date(request.date_from, "date_from"),
                                _date(request.date_to, "date_to"))
        searcher = MemorySearch(get_store(self._layout), get_embedder(load_settings(self._layout).embedding_model))
        return [hit.to_dict() for hit in searcher.search(request.query, request.k, request.mode, filters)]

    @bridge_method
    def memory_conversation(self, conversation_key: Identifier) -> dict[str, Any]:
        """A conversation from memory, opened from a search hit."""
        return read_conversation(get_store(self._layout), conversation_key)

    @bridge_method
    def delete_memory_source(self, source_id: Identifier) -> dict[str, int]:
        return {"conversations_removed": delete_source(get_store(self._layout), source_id)}
