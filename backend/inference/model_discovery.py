"""Find the GGUF models other apps already keep on this computer, read-only.

Where each app keeps its models, as it documents it (a Settings entry ``model_locations`` replaces
an app's folders, and adds plain folders under ``folders``):
- Ollama: ``OLLAMA_MODELS``, else ``~/.ollama/models`` (and the Linux service's
  ``/usr/share/ollama/.ollama/models``); manifests name the model layer's blob. Projector and
  adapter layers are not models and are passed over.
- LM Studio: ``~/.lmstudio/models``, and ``~/.cache/lm-studio/models`` from older versions.
- Jan: its data folder (``~/.config/Jan/data`` on Linux, ``~/Library/Application Support/Jan/data``
  on macOS, ``%APPDATA%/Jan/data`` on Windows), and ``~/jan`` from older versions.
- GPT4All: ``~/.local/share/nomic.ai/GPT4All``, ``~/Library/Application Support/nomic.ai/GPT4All``,
  ``%LOCALAPPDATA%/nomic.ai/GPT4All``.
- Hugging Face hub cache: ``HF_HUB_CACHE``, ``HF_HOME/hub`` or ``~/.cache/huggingface/hub``.
Nothing found is opened for writing. Walks are bounded in depth and entries, links are not
followed into folders, and a file llama.cpp cannot load is reported as skipped, with the reason.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from backend.inference.gguf_info import GGUFError, quiet_llama, read_gguf_info
from backend.inference.model_files import suggest_name

APPS = ("ollama", "lmstudio", "jan", "gpt4all", "huggingface", "folders")
MAX_DEPTH = 8
MAX_ENTRIES_PER_ROOT = 50_000
MAX_MANIFEST_BYTES = 1024 * 1024
OLLAMA_MODEL_LAYER = "application/vnd.ollama.image.model"


@dataclass
class FoundModel:
    app: str
    path: str
    label: str  # how the other app names it
    suggested_name: str
    size: int
    info: dict[str, Any] | None = None
    added_as: str | None = None  # the name it has here, when already added


@dataclass
class Discovery:
    models: list[FoundModel] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    searched: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"models": [asdict(m) for m in self.models], "skipped": self.skipped, "searched": self.searched}


def default_locations(env: Mapping[str, str] | None = None, home: Path | None = None, platform: str | None = None) -> dict[str, list[Path]]:
    """Each app's model folders on this platform, as the apps document them."""
    env = os.environ if env is None else env
    home = home or Path.home()
    platform = platform or sys.platform
    if platform == "win32":
        appdata = Path(env.get("APPDATA") or home / "AppData" / "Roaming")
        local = Path(env.get("LOCALAPPDATA") or home / "AppData" / "Local")
        jan, gpt4all = [appdata / "Jan" / "data"], [local / "nomic.ai" / "GPT4All"]
    elif platform == "darwin":
        support = home / "Library" / "Application Support"
        jan, gpt4all = [support / "Jan" / "data"], [support / "nomic.ai" / "GPT4All"]
    else:
        config = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
        data = Path(env.get("XDG_DATA_HOME") or home / ".local" / "share")
        jan, gpt4all = [config / "Jan" / "data"], [data / "nomic.ai" / "GPT4All"]
    ollama = [Path(env["OLLAMA_MODELS"])] if env.get("OLLAMA_MODELS") else [home / ".ollama" / "models"]
    if platform.startswith("linux") and not env.get("OLLAMA_MODELS"):
        ollama.append(Path("/usr/share/ollama/.ollama/models"))
    cache = Path(env.get("XDG_CACHE_HOME") or home / ".cache") if platform not in ("win32", "darwin") else home / ".cache"
    if env.get("HF_HUB_CACHE"):
        hf = [Path(env["HF_HUB_CACHE"])]
    elif env.get("HF_HOME"):
        hf = [Path(env["HF_HOME"]) / "hub"]
    else:
        hf = [cache / "huggingface" / "hub"]
    return {"ollama": ollama, "lmstudio": [home / ".lmstudio" / "models", home / ".cache" / "lm-studio" / "models"],
            "jan": [*jan, home / "jan"], "gpt4all": gpt4all, "huggingface": hf, "folders": []}


def _walk_ggufs(root: Path) -> Iterator[Path]:
    """GGUF files under ``root``: bounded depth and entries; links to files are followed, to folders not."""
    seen = 0
    base_depth = len(root.parts)
    for directory, subdirs, files in os.walk(root, followlinks=False):
        if len(Path(directory).parts) - base_depth >= MAX_DEPTH:
            subdirs[:] = []
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in sorted(files):
            seen += 1
            if seen > MAX_ENTRIES_PER_ROOT:
                return
            if name.lower().endswith(".gguf"):
                yield Path(directory) / name


def _ollama_models(root: Path) -> Iterator[tuple[str, Path]]:
    """(name as Ollama shows it, model blob) for each manifest under ``root/manifests``."""
    manifests = root / "manifests"
    if not manifests.is_dir():
        return
    for manifest in sorted(p for p in manifests.rglob("*") if p.is_file() and not p.is_symlink()):
        parts = manifest.relative_to(manifests).parts  # registry/namespace/model/tag
        if len(parts) != 4 or manifest.stat().st_size > MAX_MANIFEST_BYTES:
            continue
        registry, namespace, model, tag = parts
        label = f"{model}:{tag}" if namespace == "library" else f"{namespace}/{model}:{tag}"
        if registry != "registry.ollama.ai":
            label = f"{registry}/{label}"
        try:
            layers = json.loads(manifest.read_text(encoding="utf-8")).get("layers", [])
        except (OSError, ValueError, AttributeError):
            continue
        for layer in layers if isinstance(layers, list) else []:
            if isinstance(layer, dict) and layer.get("mediaType") == OLLAMA_MODEL_LAYER and isinstance(layer.get("digest"), str):
                digest = layer["digest"].replace(":", "-")
                if "/" not in digest and digest.startswith("sha256-"):
                    yield label, root / "blobs" / digest


def _candidates(app: str, root: Path) -> Iterator[tuple[str, Path]]:
    if app == "ollama":
        yield from _ollama_models(root)
        return
    for path in _walk_ggufs(root):
        label = path.relative_to(root).as_posix()
        if app == "huggingface":  # models--org--name/snapshots/<rev>/file.gguf
            parts = path.relative_to(root).parts
            if not parts[0].startswith("models--") or "snapshots" not in parts:
                continue
            label = parts[0].removeprefix("models--").replace("--", "/") + "/" + path.name
        yield label, path


def discover_models(locations: Mapping[str, list[Path]] | None = None, known: Mapping[str, str] | None = None,
                    *, with_info: bool = True) -> Discovery:
    """Every model found; ``known`` maps paths already added to their names here. Metadata is read
    for several files at once (llama.cpp's loader runs outside the GIL)."""
    locations = locations or default_locations()
    known = known or {}
    result = Discovery()
    seen: set[str] = set()
    candidates: list[FoundModel] = []
    for app in APPS:
        roots = [Path(r).expanduser() for r in locations.get(app, [])]
        result.searched[app] = [str(r) for r in roots]
        for root in roots:
            if not root.is_dir():
                continue
            for label, path in _candidates(app, root):
                try:
                    resolved = path.resolve(strict=True)
                    size = resolved.stat().st_size
                except (OSError, RuntimeError) as exc:  # missing blob, symlink loop
                    result.skipped.append({"app": app, "path": str(path), "reason": f"cannot be read ({exc})"})
                    continue
                if str(resolved) in seen:
                    continue
                seen.add(str(resolved))
                candidates.append(FoundModel(app=app, path=str(resolved), label=label,
                                             suggested_name=_name_for(app, label, resolved), size=size,
                                             added_as=known.get(str(resolved))))
    if not with_info:
        result.models = candidates
        return result

    def read(found: FoundModel) -> tuple[FoundModel, dict[str, Any] | str]:
        try:
            return found, read_gguf_info(Path(found.path)).to_dict()
        except GGUFError as exc:
            return found, exc.message

    with quiet_llama(), ThreadPoolExecutor(max_workers=max(1, min(os.cpu_count() or 1, 8))) as pool:
        for found, info in pool.map(read, candidates):
            if isinstance(info, str):
                result.skipped.append({"app": found.app, "path": found.path, "reason": info})
            else:
                found.info = info
                result.models.append(found)
    return result


def _name_for(app: str, label: str, path: Path) -> str:
    if app == "ollama":  # keep Ollama's own name where ours allows it
        model, _, tag = label.rpartition("/")[2].partition(":")
        return f"{suggest_name(Path(model + '.gguf'))}:{suggest_name(Path(tag + '.gguf'))[:32]}"
    return suggest_name(path)


def configured_locations(overrides: Mapping[str, list[str]]) -> dict[str, list[Path]]:
    """The default folders, with each app named in Settings' ``model_locations`` replaced."""
    locations = default_locations()
    for app, folders in overrides.items():
        locations[app] = [Path(f).expanduser() for f in folders]
    return locations
