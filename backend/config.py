"""Settings and the data-dir layout: the one place that knows where things live.

The data dir is the platform's user-data dir (platformdirs), or ``ORCH_MIND_HOME`` when set, so
tests and portable installs can move everything with one variable.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticValidationError

from backend.errors import SettingsError, field_problems

APP_NAME = "orch-mind"
HOME_ENV = "ORCH_MIND_HOME"

Language = Literal["en", "pt-BR"]
Theme = Literal["system", "light", "dark"]
# The default system prompt speaks the UI's language; a prompt the user wrote is never replaced.
DEFAULT_SYSTEM_PROMPTS: dict[str, str] = {
    "en": "You are Orch-Mind, a helpful assistant running privately on the user's computer.",
    "pt-BR": "Você é o Orch-Mind, um assistente prestativo que roda de forma privada no computador do usuário. "
             "Responda em português do Brasil.",
}
DEFAULT_SYSTEM_PROMPT = DEFAULT_SYSTEM_PROMPTS["en"]
# A model's name, as the engine's store validates it (a slug with an optional :tag); one owner here,
# since settings name models too.
MODEL_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}(:[A-Za-z0-9._-]{1,32})?"
# What a chat may name: our engine's models, or an Ollama daemon's, which may have a namespace
# ("hf.co/user/model:Q4_K_M"); never a path ("..", a leading slash, backslashes).
CHAT_MODEL_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}(/[A-Za-z0-9][A-Za-z0-9._-]{0,63}){0,2}(:[A-Za-z0-9._-]{1,64})?"


PRIVATE_UMASK = 0o077
_secured: set[Path] = set()


def data_dir() -> Path:
    """The root of all user data; created on first use, private to the user (see secure_data_dir)."""
    override = os.environ.get(HOME_ENV)
    root = Path(override).expanduser() if override else Path(platformdirs.user_data_dir(APP_NAME))
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    root = root.resolve()
    if root not in _secured:
        secure_data_dir(root)
        _secured.add(root)
    return root


def secure_data_dir(root: Path) -> None:
    """Keep a person's chat history, models and keys readable by that person alone.

    From now on this process (and the trainer, the sidecar and every other child, which inherit
    it) creates files 0600 and folders 0700; files an older version left group- or world-readable
    are fixed once per process. Links are not followed: what they point at is not ours."""
    os.umask(PRIVATE_UMASK)
    if os.name != "posix":
        return
    for directory, subdirs, files in os.walk(root, followlinks=False):
        for name in [*subdirs, *files]:
            path = os.path.join(directory, name)
            try:
                mode = os.lstat(path).st_mode
                if not stat.S_ISLNK(mode) and mode & 0o077:
                    os.chmod(path, stat.S_IMODE(mode) & 0o700 | (0o700 if stat.S_ISDIR(mode) else 0))
            except OSError:
                continue  # vanished while we looked, or not ours to change
    mode = os.stat(root).st_mode
    if mode & 0o077:
        os.chmod(root, stat.S_IMODE(mode) & 0o700)


@dataclass(frozen=True)
class DataLayout:
    """Paths inside the data dir. Nothing else in the code base joins data-dir paths by hand."""

    root: Path

    @classmethod
    def current(cls) -> DataLayout:
        return cls(data_dir())

    @property
    def settings_file(self) -> Path:
        return self.root / "settings.json"

    @property
    def memory_db(self) -> Path:
        return self.root / "memory.duckdb"

    @property
    def models_dir(self) -> Path:
        return self._dir("models")

    @property
    def adapters_dir(self) -> Path:
        return self._dir("adapters")

    @property
    def jobs_dir(self) -> Path:
        return self._dir("jobs")

    @property
    def logs_dir(self) -> Path:
        return self._dir("logs")

    @property
    def log_file(self) -> Path:
        return self.logs_dir / "orch-mind.log"

    @property
    def write_probe(self) -> Path:
        """A scratch file the doctor writes and removes to prove the data dir is writable."""
        return self.root / ".doctor-write-test"

    @property
    def identity_seed(self) -> Path:
        """The user's Ed25519 seed (mode 0600): who they are on the network."""
        return self.identity_dir / "ed25519.seed"

    def hf_base_dir(self, gguf_sha256: str) -> Path:
        """A GGUF base model dequantised to a Hugging Face folder for training, keyed by the GGUF's hash."""
        if not re.fullmatch(r"[0-9a-f]{64}", gguf_sha256):
            raise ValueError(f"not a sha256: {gguf_sha256!r}")
        return self.prepared_bases_dir / gguf_sha256[:16]

    @property
    def prepared_bases_dir(self) -> Path:
        """Where bases prepared for training live, one folder each (``hf_base_dir``)."""
        return self.models_dir / "hf"

    def run_dir(self, name: str) -> Path:
        """A training run's folder, ``jobs/train-<id>``; refuses any other name."""
        if not re.fullmatch(r"train-[0-9a-f]{1,32}", name):
            raise ValueError(f"not a training run name: {name!r}")
        return self.jobs_dir / name

    def run_dirs(self) -> list[Path]:
        """Every training run folder, newest name first."""
        return sorted(self.jobs_dir.glob("train-*"), reverse=True)

    @property
    def uploads_dir(self) -> Path:
        return self._dir("uploads")

    @property
    def staging_dir(self) -> Path:
        """Where peer downloads wait, unverified, before they may enter the adapter store."""
        return self._dir("p2p-staging")

    @property
    def identity_dir(self) -> Path:
        return self._dir("identity")

    @property
    def p2p_dir(self) -> Path:
        """Network state: rooms, shares, pending downloads and the sidecar's corestore."""
        return self._dir("p2p")

    def p2p_file(self, name: str) -> Path:
        """One of the network's state files (``rooms``, ``shares``, ``downloads``, ``kept``, ``blocked``,
        ``base_hashes``), as ``p2p/<name>.json``."""
        if name not in ("rooms", "shares", "downloads", "kept", "blocked", "base_hashes"):
            raise ValueError(f"no network state file called {name!r}")
        return self.p2p_dir / f"{name}.json"

    @property
    def corestore_dir(self) -> Path:
        """The sidecar's Hypercore storage (the blocks of shared and downloaded adapters)."""
        return self.p2p_dir / "corestore"

    def staging_for(self, download_id: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{16,64}", download_id):
            raise ValueError(f"not a download id: {download_id!r}")
        return self.staging_dir / download_id

    def _dir(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path


class Settings(BaseModel):
    """User settings, validated on load and on every change."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    language: Language = Field("en", description="UI language.")
    theme: Theme = Field("system", description="Colours: follow the operating system, or always light or dark.")
    ollama_host: str = Field(
        "http://127.0.0.1:11434",
        description="Where to look for a running Ollama daemon before starting the embedded engine.",
        max_length=200,
    )
    chat_model: str = Field("smollm2", description="Model used for chat: a name from the Models list.", min_length=1,
                            max_length=100, pattern=f"^{MODEL_NAME}$")
    embedding_model: str = Field(
        "all-MiniLM-L6-v2",
        description="Embedding model for memory: all-MiniLM-L6-v2 (packaged, English), an embedding GGUF added under "
        "Models, or a sentence-transformers folder; a change re-embeds memory.",
        min_length=1,
        max_length=300,
    )
    memory_enabled: bool = Field(True, description="Use memory in chat answers by default.")
    memory_top_k: int = Field(5, ge=1, le=50, description="How many memory chunks a chat answer may use.")
    memory_includes_chats: bool = Field(False, description="Let answers draw on your earlier Orch-Mind chats too (they "
                                        "are always searchable on the Memory screen; a chat never cites itself).")
    chat_max_tokens: int = Field(1024, ge=16, le=32768, description="The longest reply, in tokens, unless a chat sets "
                                 "its own; a reply that reaches it ends with a note that it was cut.")
    @field_validator("ollama_host")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.fullmatch(r"https?://[A-Za-z0-9.\-]+(:\d{1,5})?/?", value.strip()):
            raise ValueError("must be an http(s) address like http://127.0.0.1:11434")
        return value.strip()

    p2p_bootstrap: list[str] = Field(
        default_factory=list,
        description="DHT bootstrap nodes as host:port; empty means the public Holepunch DHT.",
        max_length=32,
    )
    p2p_host: str = Field("", description="Address the DHT binds to; empty means all interfaces.", max_length=64)

    @field_validator("p2p_bootstrap")
    @classmethod
    def _host_ports(cls, value: list[str]) -> list[str]:
        for item in value:
            if not re.fullmatch(r"[A-Za-z0-9.\-]+:\d{1,5}", item):
                raise ValueError(f"{item!r} is not host:port")
        return value

    system_prompt: str = Field(DEFAULT_SYSTEM_PROMPT, max_length=4000)
    model_locations: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Where to look for models other apps keep: for ollama, lmstudio, jan, gpt4all or huggingface, "
        "folders that replace that app's usual ones; under folders, any further folders of .gguf files.",
    )

    @field_validator("model_locations")
    @classmethod
    def _locations(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        allowed = {"ollama", "lmstudio", "jan", "gpt4all", "huggingface", "folders"}
        for app, folders in value.items():
            if app not in allowed:
                raise ValueError(f"{app!r} is not one of {', '.join(sorted(allowed))}")
            if len(folders) > 16 or any(not f or len(f) > 500 or "\x00" in f for f in folders):
                raise ValueError(f"{app}: give at most 16 folder paths")
        return value

    engine_origins: list[str] = Field(
        default_factory=list,
        description="Web origins (like http://localhost:3000; * matches anything) allowed to chat with your "
        "models through the embedded engine. None by default: web pages cannot use your models.",
        max_length=32,
    )

    @field_validator("engine_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for item in value:
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.\-]*://[A-Za-z0-9.\-*\[\]:]+", item.strip()) or item.strip() == "*://*":
                raise ValueError(f"{item!r} is not an origin like http://localhost:3000")
        return [item.strip() for item in value]


SETTINGS_FIELDS = tuple(Settings.model_fields)


def _format_pydantic_error(error: PydanticValidationError) -> str:
    return field_problems(error, "settings", limit=20)


def load_settings(layout: DataLayout | None = None) -> Settings:
    """Read settings; a missing file gives defaults, a broken one a clear error (never silent reset)."""
    layout = layout or DataLayout.current()
    path = layout.settings_file
    if not path.exists():
        return Settings()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SettingsError(
            f"The settings file {path} is not valid JSON ({exc}). Fix it or delete it to get defaults."
        ) from exc
    if not isinstance(raw, dict):
        raise SettingsError(f"The settings file {path} must hold a JSON object.")
    try:
        return Settings.model_validate(raw)
    except PydanticValidationError as exc:
        raise SettingsError(
            f"The settings file {path} has invalid values: {_format_pydantic_error(exc)}. "
            "Fix them or delete the file to get defaults."
        ) from exc


def update_settings(changes: dict[str, Any], layout: DataLayout | None = None) -> Settings:
    """Validate ``changes`` against the current settings and save atomically."""
    layout = layout or DataLayout.current()
    unknown = sorted(set(changes) - set(SETTINGS_FIELDS))
    if unknown:
        raise SettingsError(f"Unknown setting(s): {', '.join(unknown)}.")
    current = load_settings(layout)
    merged = {**current.model_dump(), **changes}
    if merged["system_prompt"] == DEFAULT_SYSTEM_PROMPTS.get(current.language) and merged["language"] in DEFAULT_SYSTEM_PROMPTS:
        merged["system_prompt"] = DEFAULT_SYSTEM_PROMPTS[merged["language"]]  # the default follows the language
    try:
        updated = Settings.model_validate(merged)
    except PydanticValidationError as exc:
        raise SettingsError(f"Invalid settings: {_format_pydantic_error(exc)}.") from exc
    save_settings(updated, layout)
    return updated


def save_settings(settings: Settings, layout: DataLayout | None = None) -> None:
    layout = layout or DataLayout.current()
    atomic_write_text(layout.settings_file, settings.model_dump_json(indent=2))


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temp file + rename so a crash never leaves a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
