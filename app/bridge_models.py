"""Bridge methods of the Models screen: what the engine serves, adding GGUFs, discovery, create, delete.

Paths never come from JS: a file is added through the native picker (window), or chosen from what
discovery found on this computer (both modes), which the bridge looks up again before adding.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import ollama
from pydantic import StringConstraints

from app.validation import LongText, ShortText, bridge_method
from backend.config import DataLayout, load_settings
from backend.errors import ValidationError
from backend.inference.engine import get_connection
from backend.inference.engine_errors import engine_error
from backend.inference.gguf_info import GGUFInfo, fit_report, read_gguf_info
from backend.inference.model_discovery import configured_locations, discover_models
from backend.inference.model_files import add_gguf
from backend.inference.model_store import ModelStore, validate_name
from backend.jobs import JobContext, JobRegistry
from backend.training.base_preparation import list_prepared, remove_prepared

DEFAULT_FIT_CONTEXT = 4096
PreparedId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")]  # a prepared base's folder name


@contextlib.contextmanager
def engine_errors() -> Iterator[None]:
    """The engine's own errors (unknown model, bad name) reach the UI as messages, not internals."""
    try:
        yield
    except (ollama.ResponseError, ConnectionError) as exc:  # ollama-python's message says what to do
        raise engine_error(exc) from exc


class ModelsBridge:
    _layout: DataLayout
    _jobs: JobRegistry
    _window: Any

    def _store(self) -> ModelStore:
        return ModelStore(self._layout)

    @bridge_method
    def models_overview(self) -> dict[str, Any]:
        connection = get_connection(self._layout)
        manifests = {m.name: m for m in self._store().list()} if connection.kind == "embedded" else {}
        models = []
        with engine_errors():
            listed = connection.client.list().models
            running = [m.model for m in connection.client.ps().models]
        for model in listed:
            details = model.details
            manifest = manifests.get(model.model)
            info = (manifest.info if manifest else None) or {}
            models.append({
                "name": model.model, "size": model.size, "modified_at": str(model.modified_at),
                "parent": details.parent_model if details else "", "family": details.family if details else "",
                "parameters": details.parameter_size if details else "", "quantization": details.quantization_level if details else "",
                "context_length": info.get("context_length"), "chat_template": bool(info.get("chat_template")),
                "embedding_model": bool(info.get("embedding_model")), "path": manifest.base_path if manifest and manifest.source else None,
                "available": True, "fit": self._fit(info)})
        for name, manifest in manifests.items():
            if reason := manifest.unavailable_reason():
                models.append({"name": name, "size": 0, "available": False, "reason": reason, "parent": manifest.parent or ""})
        return {"engine": connection.kind, "host": connection.host, "models": models, "running": running}

    @staticmethod
    def _fit(info: dict[str, Any]) -> dict[str, Any] | None:
        if not info.get("block_count"):
            return None
        return fit_report(GGUFInfo.from_dict(info), min(DEFAULT_FIT_CONTEXT, info.get("context_length") or DEFAULT_FIT_CONTEXT))

    @bridge_method
    def models_discover(self) -> dict[str, Any]:
        """GGUFs other apps keep on this computer (read-only), marked when already added."""
        known = {m.source["path"]: m.name for m in self._store().list() if m.source}
        return discover_models(configured_locations(load_settings(self._layout).model_locations), known).to_dict()

    def _add_job(self, path: Path, name: str | None) -> str:
        store = self._store()

        def run(context: JobContext) -> dict[str, Any]:
            context.progress("checking the file", 0, 0)
            manifest = add_gguf(store, path, name=name,
                                progress=lambda done, total: context.progress("hashing", done, total))
            return {"name": manifest.name, "info": manifest.info}

        return self._jobs.start("model_add", f"Add {path.name}", run)

    @bridge_method
    def models_add_discovered(self, path: LongText, name: ShortText | None = None) -> dict[str, str]:
        """Add a model that discovery found: ``path`` must be one of discovery's own answers."""
        if name:
            validate_name(name)
        found = discover_models(configured_locations(load_settings(self._layout).model_locations), with_info=False)
        if path not in {m.path for m in found.models}:
            raise ValidationError("That file is not among the models found on this computer; refresh the list.")
        return {"job_id": self._add_job(Path(path), name or None)}

    @bridge_method
    def models_pick_and_add(self, name: ShortText | None = None) -> dict[str, str | None]:
        """Window mode: the user picks a .gguf in a native dialog; JS never names a path."""
        if self._window is None:
            raise ValidationError("The file picker exists only in the desktop window; use a model found on this computer, "
                                  "or `orch-mind models add PATH`.")
        import webview

        if name:
            validate_name(name)
        chosen = self._window.create_file_dialog(webview.FileDialog.OPEN, file_types=("GGUF models (*.gguf)", "All files (*.*)"))
        if not chosen:
            return {"job_id": None}
        read_gguf_info(Path(chosen[0]))  # refuse a file that is no model at once, before starting a job
        return {"job_id": self._add_job(Path(chosen[0]), name or None)}

    @bridge_method
    def models_create(self, name: ShortText, base: ShortText, system_prompt: LongText | None = None) -> dict[str, Any]:
        validate_name(name)
        validate_name(base)
        with engine_errors():
            get_connection(self._layout).client.create(model=name, from_=base, system=system_prompt or None)
        return {"created": name}

    @bridge_method
    def models_delete(self, name: ShortText) -> dict[str, bool]:
        validate_name(name)
        with engine_errors():
            get_connection(self._layout).client.delete(name)
        return {"deleted": True}

    @bridge_method
    def models_prepared(self) -> list[dict[str, Any]]:
        """Bases prepared for training (bf16 copies of GGUFs, about 2 bytes per parameter), with their sizes."""
        return [base.to_dict() for base in list_prepared(self._layout.prepared_bases_dir)]

    @bridge_method
    def models_remove_prepared(self, prepared_id: PreparedId) -> dict[str, int]:
        """Free a prepared base's disk space; it is prepared again the next time it is trained on."""
        return {"freed_bytes": remove_prepared(self._layout.prepared_bases_dir, prepared_id)}
