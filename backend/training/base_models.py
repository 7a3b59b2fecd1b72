"""Base models for training: a GGUF (ours, the user's Ollama store, any file) or a Hugging Face folder.

A GGUF is converted once, streamed one tensor at a time (``base_preparation``), into a folder of bf16
safetensors shards in the data dir (about 2 bytes per parameter): later loads take a fraction of a
second, and llama.cpp's LoRA converter needs that folder as ``--base``. The base's identity (SHA-256 of its weights file) goes into every adapter
manifest, so an adapter is only ever applied to the base it was trained on.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.config import DataLayout
from backend.errors import NotFoundError, OrchMindError
from backend.model_loading import MODEL_LOADS
from backend.training.base_preparation import PrepareProgress, is_prepared, prepare_base


class BaseModelError(OrchMindError):
    code = "base_model"


class UnknownBaseModel(NotFoundError, BaseModelError):
    pass


@dataclass(frozen=True)
class BaseModel:
    reference: str  # what the user asked for
    gguf_path: Path | None  # the GGUF the engine serves, when there is one
    hf_dir: Path  # a transformers-loadable folder
    sha256: str

    def identity(self) -> dict[str, str]:
        return {"reference": self.reference, "sha256": self.sha256, "gguf": self.gguf_path.name if self.gguf_path else ""}


_HASHED: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256, for this process
_HASHED_LOCK = threading.Lock()


def file_sha256(path: Path) -> str:
    """The file's sha256, hashed once per process while its size and mtime stay the same (a base GGUF
    is hundreds of MB, and every download, share and training run names its base by this hash)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _HASHED_LOCK:
        known = _HASHED.get(key)
    if known is not None:
        return known
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    with _HASHED_LOCK:
        _HASHED[key] = digest.hexdigest()
    return _HASHED[key]


def ollama_store_gguf(name: str, models_root: Path | None = None) -> Path | None:
    """The GGUF of a model pulled with a real Ollama (``~/.ollama/models`` or OLLAMA_MODELS)."""
    root = models_root or Path(os.environ.get("OLLAMA_MODELS", Path.home() / ".ollama" / "models"))
    model, _, tag = name.partition(":")
    if not model or "/" in model or ".." in model or ".." in tag:
        return None
    manifest = root / "manifests" / "registry.ollama.ai" / "library" / model / (tag or "latest")
    if not manifest.is_file():
        return None
    for layer in json.loads(manifest.read_text()).get("layers", []):
        if layer.get("mediaType") == "application/vnd.ollama.image.model":
            blob = root / "blobs" / layer["digest"].replace(":", "-")
            return blob if blob.is_file() else None
    return None


def named_gguf(name: str, layout: DataLayout) -> Path | None:
    """The GGUF of a model known by name: one of ours (the engine's store), else Ollama's store."""
    from backend.inference.model_store import ModelStore, ModelStoreError, validate_name

    try:
        validate_name(name)
    except ModelStoreError:
        return None
    try:
        store = ModelStore(layout)
        store.register_defaults()
        return Path(store.get(name).base_path)
    except NotFoundError:
        pass
    return ollama_store_gguf(name)


def resolve_base(reference: str, layout: DataLayout | None = None, *, allow_paths: bool = True,
                 on_progress: PrepareProgress | None = None, should_stop: Callable[[], bool] = lambda: False) -> BaseModel:
    """The base model for ``reference``: a model name first, then (``allow_paths``: the CLI, not the
    UI bridge) a .gguf file or a Hugging Face folder. Without paths, nothing outside our stores is
    opened, and the error does not say whether some path exists. A GGUF not yet prepared for
    training is prepared here (``on_progress``: tensors done of all; ``should_stop``: cancel between
    tensors, keeping the finished part)."""
    layout = layout or DataLayout.current()
    gguf = named_gguf(reference, layout)
    if gguf is None and allow_paths:
        folder = Path(reference).expanduser()
        if folder.is_dir():
            if not (folder / "config.json").exists():
                raise BaseModelError(f"{folder} has no config.json; give a Hugging Face model folder or a .gguf file.")
            weights = sorted(folder.glob("*.safetensors"))
            if not weights:
                raise BaseModelError(f"{folder} has no .safetensors weights (pickle .bin files are not loaded).")
            return BaseModel(reference, None, folder.resolve(), file_sha256(weights[0]))
        if folder.suffix == ".gguf" and folder.is_file():
            gguf = folder.resolve()
    if gguf is None:
        where = "not one of your models, not in the Ollama store, not a .gguf file or a model folder" if allow_paths \
            else "not one of your models or in the Ollama store; pick one from the Models list"
        raise UnknownBaseModel(f"No base model {reference!r}: {where}.")
    sha = file_sha256(gguf)
    cache = layout.hf_base_dir(sha)
    if not is_prepared(cache):
        from backend.inference.gguf_info import read_gguf_info
        from backend.training.trainability import require_trainable

        require_trainable(read_gguf_info(gguf).to_dict())  # at once, not as a loader traceback minutes later
        prepare_base(gguf, cache, chat_template=engine_template(gguf), on_progress=on_progress, should_stop=should_stop)
    return BaseModel(reference, gguf, cache, sha)


def engine_template(gguf: Path) -> str:
    """The chat template the engine uses for ``gguf`` (its own, or its family's): training renders
    its data with the same one, so an adapter sees at inference the tokens it was trained on."""
    from backend.inference.chat_templates import template_for
    from backend.inference.gguf_info import read_gguf_info

    info = read_gguf_info(gguf)
    return template_for(info.architecture, info.chat_template).template


def load_model_and_tokenizer(base: BaseModel, *, quantization: str = "none", dtype: str = "float32") -> tuple[Any, Any]:
    import torch

    with MODEL_LOADS:
        from transformers import AutoModelForCausalLM, AutoTokenizer
    kwargs: dict[str, Any] = {"dtype": getattr(torch, dtype)}
    if quantization in ("4bit", "8bit"):
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = (
            BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16,
                               bnb_4bit_use_double_quant=True)
            if quantization == "4bit" else BitsAndBytesConfig(load_in_8bit=True))
    elif quantization != "none":
        raise BaseModelError(f"Unknown quantization {quantization!r}; use none, 4bit or 8bit.")
    tokenizer = AutoTokenizer.from_pretrained(base.hf_dir)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    with MODEL_LOADS:
        if quantization == "none" and dtype == "float32":
            # In the stored dtype first, then widened tensor by tensor: loading a bf16 base straight
            # to fp32 held the file's pages and the fp32 copy at once (1.2B: 7.4 GB, against 5.5 GB).
            model = AutoModelForCausalLM.from_pretrained(base.hf_dir, dtype="auto").float()
            _restore_exact_fp32(model, base.hf_dir)
        else:
            model = AutoModelForCausalLM.from_pretrained(base.hf_dir, **kwargs)
    return model, tokenizer


def _restore_exact_fp32(model: Any, folder: Path) -> None:
    """Put back, exactly, the tensors the files store in fp32 (a prepared base's norms and biases):
    loading in the model's stored dtype rounded them."""
    import torch
    from safetensors import safe_open

    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for weights in sorted(folder.glob("*.safetensors")):
            with safe_open(str(weights), "pt") as handle:
                for name in handle.keys():  # noqa: SIM118 - safe_open has keys(), not iteration
                    if name in parameters and handle.get_slice(name).get_dtype() == "F32":
                        parameters[name].copy_(handle.get_tensor(name))
