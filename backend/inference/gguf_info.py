"""What a GGUF file is: architecture, size, context, quantization, chat template, memory to run it.

The metadata is read by llama.cpp's own loader with ``vocab_only`` (no tensor data is read): it
takes about 0.2 s for SmolLM2, where ``gguf.GGUFReader`` takes 5–9 s because it builds a Python
object for every vocabulary entry, and it proves the file is one llama.cpp can load (a supported
architecture, every tensor inside the file). The ``gguf`` package gives the names of file types.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from backend.errors import NotFoundError, OrchMindError

GGUF_MAGIC = b"GGUF"
SHARD_PATTERN = re.compile(r"-(\d{5})-of-(\d{5})\.gguf\Z")
KV_CACHE_BYTES_PER_VALUE = 2  # f16, llama.cpp's default cache type
RUNTIME_OVERHEAD_BYTES = 150 * 1024**2  # compute buffers and the process around them, measured with SmolLM2
_quiet_lock = threading.Lock()
_quiet_depth = 0
_quiet_previous = logging.NOTSET


class GGUFError(OrchMindError):
    """A file that is not a model llama.cpp can run; the message says what it is instead."""

    code = "invalid_model_file"


class UnreadableModelFile(NotFoundError, GGUFError):
    pass


@dataclass(frozen=True)
class GGUFInfo:
    path: str
    file_size: int
    architecture: str
    name: str
    parameters: int
    context_length: int
    embedding_length: int
    block_count: int
    head_count: int
    head_count_kv: int
    quantization: str
    chat_template: str | None
    model_type: str  # "model", "adapter", "mmproj" …
    pooling: str | None  # set for embedding models

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GGUFInfo:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    @property
    def parameter_label(self) -> str:
        """'135M', '7.2B': what Ollama shows as parameter_size."""
        if self.parameters >= 1e9:
            return f"{self.parameters / 1e9:.1f}B"
        return f"{self.parameters / 1e6:.0f}M"

    @property
    def is_embedding_model(self) -> bool:
        return self.pooling not in (None, "none") or self.architecture in EMBEDDING_ARCHITECTURES

    def kv_cache_bytes(self, context: int) -> int:
        head_dim = self.embedding_length // max(self.head_count, 1)
        return 2 * self.block_count * context * max(self.head_count_kv, 1) * head_dim * KV_CACHE_BYTES_PER_VALUE

    def memory_needed(self, context: int) -> int:
        """Bytes to run it at ``context`` tokens: weights + KV cache + compute buffers."""
        return self.file_size + self.kv_cache_bytes(context) + RUNTIME_OVERHEAD_BYTES

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["parameter_label"] = self.parameter_label
        data["embedding_model"] = self.is_embedding_model
        return data


EMBEDDING_ARCHITECTURES = {"bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2", "t5encoder", "xlm-roberta", "modern-bert"}
POOLING_NAMES = {"0": "none", "1": "mean", "2": "cls", "3": "last", "4": "rank"}


def quantization_name(file_type: str | None) -> str:
    from gguf import LlamaFileType

    try:
        return LlamaFileType(int(file_type or "")).name.removeprefix("MOSTLY_").replace("GUESSED", "unknown")
    except ValueError:
        return "unknown"


def _metadata(model: Any) -> dict[str, str]:
    import llama_cpp

    out: dict[str, str] = {}
    key_buffer = ctypes.create_string_buffer(256)
    for index in range(llama_cpp.llama_model_meta_count(model)):
        if llama_cpp.llama_model_meta_key_by_index(model, index, key_buffer, len(key_buffer)) < 0:
            continue
        size = 1024
        while True:
            value_buffer = ctypes.create_string_buffer(size)
            written = llama_cpp.llama_model_meta_val_str_by_index(model, index, value_buffer, size)
            if written < size:
                break
            size = written + 1
        if written >= 0:
            out[key_buffer.value.decode("utf-8", "replace")] = value_buffer.value.decode("utf-8", "replace")
    return out


def check_gguf_file(path: Path) -> os.stat_result:
    """The cheap checks, with a message for each way a path is not a model file."""
    try:
        info = path.stat()
    except RuntimeError as exc:  # a symlink loop (Python 3.11 raises this from resolve/stat chains)
        raise GGUFError(f"{path} is a loop of symbolic links, not a file.") from exc
    except OSError as exc:
        if exc.errno == 40:  # ELOOP
            raise GGUFError(f"{path} is a loop of symbolic links, not a file.") from exc
        raise UnreadableModelFile(f"{path} cannot be read ({exc.strerror or exc}).") from exc
    import stat

    if not stat.S_ISREG(info.st_mode):
        raise GGUFError(f"{path} is not a regular file.")
    if info.st_size == 0:
        raise GGUFError(f"{path.name} is empty (0 bytes).")
    with path.open("rb") as handle:
        if handle.read(4) != GGUF_MAGIC:
            raise GGUFError(f"{path.name} is not a GGUF model file (it does not start with 'GGUF').")
    shard = SHARD_PATTERN.search(path.name)
    if shard and int(shard.group(2)) > 1:
        raise GGUFError(f"{path.name} is one part of a model split into {int(shard.group(2))} files; Orch-Mind takes "
                        "whole files: join the parts with llama.cpp's `llama-gguf-split --merge` first.")
    return info


@contextlib.contextmanager
def quiet_llama() -> Iterator[None]:
    """Silence llama.cpp's log while any thread is inside (loads may run in parallel)."""
    global _quiet_depth, _quiet_previous
    logger = logging.getLogger("llama-cpp-python")
    with _quiet_lock:
        if _quiet_depth == 0:
            _quiet_previous = logger.level
            logger.setLevel(logging.CRITICAL)
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                logger.setLevel(_quiet_previous)


def read_gguf_info(path: Path) -> GGUFInfo:
    """The model's metadata, or GGUFError saying why the file is not a model llama.cpp can run."""
    import llama_cpp

    path = Path(path)
    stat_result = check_gguf_file(path)
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    with quiet_llama():  # llama.cpp's loader chatter, and its own errors, become ours
        model = llama_cpp.llama_model_load_from_file(str(path).encode(), params)
    if not model:
        raise GGUFError(f"llama.cpp cannot load {path.name}: it is truncated, damaged, or of an architecture this "
                        "version does not support.")
    try:
        meta = _metadata(model)
        parameters = int(llama_cpp.llama_model_n_params(model))
        template = llama_cpp.llama_model_chat_template(model, None)
    finally:
        llama_cpp.llama_model_free(model)
    arch = meta.get("general.architecture", "unknown")
    model_type = meta.get("general.type", "model")
    if model_type in ("mmproj", "adapter") or arch == "clip":
        what = "a vision projector" if model_type == "mmproj" or arch == "clip" else "a LoRA adapter"
        raise GGUFError(f"{path.name} is {what}, not a model; add the model file it belongs to.")

    def number(key: str) -> int:
        try:
            return int(float(meta.get(f"{arch}.{key}", "0")))
        except ValueError:
            return 0

    return GGUFInfo(
        path=str(path), file_size=stat_result.st_size, architecture=arch,
        name=meta.get("general.name", path.stem), parameters=parameters,
        context_length=number("context_length"), embedding_length=number("embedding_length"),
        block_count=number("block_count"), head_count=number("attention.head_count"),
        head_count_kv=number("attention.head_count_kv") or number("attention.head_count"),
        quantization=quantization_name(meta.get("general.file_type")),
        chat_template=template.decode("utf-8", "replace") if template else None, model_type=model_type,
        pooling=POOLING_NAMES.get(meta.get(f"{arch}.pooling_type", ""), None),
    )


def available_memory() -> dict[str, int | None]:
    """Free RAM now, and free VRAM when torch is already loaded and sees a CUDA device."""
    import sys

    import psutil

    vram = None
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        vram = int(torch.cuda.mem_get_info()[0])
    return {"ram": int(psutil.virtual_memory().available), "vram": vram}


def fit_report(info: GGUFInfo, context: int) -> dict[str, Any]:
    """How much memory the model needs at ``context`` tokens and whether this machine has it free."""
    needed = info.memory_needed(context)
    free = available_memory()
    return {"context": context, "needed_bytes": needed, "free_ram_bytes": free["ram"], "free_vram_bytes": free["vram"],
            "fits_ram": needed <= free["ram"], "fits_vram": None if free["vram"] is None else needed <= free["vram"]}
