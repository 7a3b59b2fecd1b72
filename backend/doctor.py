"""``orch-mind doctor``: a true report of what is installed, which engines answer, where data lives.

Each check imports or probes the real thing; nothing is inferred from configuration alone.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass

from backend.config import DataLayout, Settings, load_settings
from backend.errors import OrchMindError


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True


def _package(name: str, module: str | None = None, required: bool = True) -> Check:
    try:
        importlib.import_module(module or name)
        version = importlib.metadata.version(name)
        return Check(f"python:{name}", True, version, required)
    except Exception as exc:  # noqa: BLE001 - a doctor reports every failure, whatever its type
        return Check(f"python:{name}", False, f"not importable: {exc}", required)


def _data_dir(layout: DataLayout) -> Check:
    probe = layout.write_probe
    try:
        probe.write_text("ok")
        probe.unlink()
        return Check("data_dir", True, str(layout.root))
    except OSError as exc:
        return Check("data_dir", False, f"{layout.root} is not writable: {exc}")


def _settings(layout: DataLayout) -> Check:
    try:
        load_settings(layout)
        return Check("settings", True, str(layout.settings_file))
    except OrchMindError as exc:
        return Check("settings", False, exc.message)


def _duckdb_extensions() -> Check:
    try:
        from backend.memory.extensions import connect_with_extensions

        connection = connect_with_extensions(":memory:")
        loaded = connection.execute(
            "SELECT extension_name FROM duckdb_extensions() WHERE loaded AND extension_name IN ('vss','fts') ORDER BY 1"
        ).fetchall()
        connection.close()
        names = [row[0] for row in loaded]
        return Check("duckdb_extensions", names == ["fts", "vss"], "loaded offline: " + ", ".join(names))
    except Exception as exc:  # noqa: BLE001
        return Check("duckdb_extensions", False, str(exc))


def _embedding_model() -> Check:
    try:
        from backend.memory.embeddings import default_embedding_model_path

        return Check("embedding_model", True, str(default_embedding_model_path()))
    except Exception as exc:  # noqa: BLE001
        return Check("embedding_model", False, str(exc))


def _default_chat_model() -> Check:
    try:
        from backend.inference.default_models import default_chat_gguf

        path = default_chat_gguf()
        return Check("default_chat_model", True, f"{path} ({path.stat().st_size // 1_000_000} MB)")
    except Exception as exc:  # noqa: BLE001
        return Check("default_chat_model", False, str(exc))


def _ollama(layout: DataLayout) -> Check:
    try:
        host = load_settings(layout).ollama_host
    except OrchMindError:
        host = Settings().ollama_host  # the settings check reports the broken file
    host = os.environ.get("OLLAMA_HOST", host)
    try:
        from backend.inference.discovery import probe_ollama

        version = probe_ollama(host, timeout=0.5)
    except Exception as exc:  # noqa: BLE001
        return Check("ollama_daemon", False, f"{host}: {exc}", required=False)
    if version:
        return Check("ollama_daemon", True, f"Ollama {version} at {host}", required=False)
    return Check("ollama_daemon", False, f"none at {host}; the embedded engine will be used", required=False)


def _node() -> Check:
    try:
        from backend.p2p.node_runtime import node_executable, sidecar_dependencies_installed

        node = node_executable()
        ready = sidecar_dependencies_installed()
        return Check("p2p_sidecar", ready, f"node {node}; npm packages {'installed' if ready else 'missing: run make'}")
    except Exception as exc:  # noqa: BLE001
        return Check("p2p_sidecar", False, str(exc))


def _llama_tools() -> Check:
    try:
        from backend.training.export import llama_tools_dir

        return Check("gguf_converters", True, str(llama_tools_dir()))
    except Exception as exc:  # noqa: BLE001
        return Check("gguf_converters", False, str(exc))


def _display() -> Check:
    display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    detail = f"window mode on {display}" if display else "no display: `orch-mind app` uses browser mode"
    return Check("display", bool(display) or sys.platform in ("win32", "darwin"), detail, required=False)


def run_checks(layout: DataLayout | None = None) -> list[Check]:
    layout = layout or DataLayout.current()
    checks: list[Callable[[], Check]] = [
        lambda: _data_dir(layout),
        lambda: _settings(layout),
        lambda: _package("duckdb"),
        _duckdb_extensions,
        lambda: _package("sentence-transformers", "sentence_transformers"),
        _embedding_model,
        lambda: _package("torch"),
        lambda: _package("transformers"),
        lambda: _package("peft"),
        lambda: _package("llama_cpp_python", "llama_cpp"),
        _default_chat_model,
        lambda: _package("ollama"),
        lambda: _ollama(layout),
        lambda: _package("pywebview", "webview"),
        _llama_tools,
        _node,
        _display,
        lambda: Check("chromium", shutil.which("chromium") is not None, shutil.which("chromium") or "not installed (only the UI tests need it)", required=False),
    ]
    return [check() for check in checks]


def report_dict(checks: list[Check], layout: DataLayout) -> dict[str, object]:
    return {
        "data_dir": str(layout.root),
        "ready": all(c.ok for c in checks if c.required),
        "checks": [asdict(c) for c in checks],
    }
