"""Whether a GGUF can be a training base here, and what training it will cost, said before starting.

Training loads the GGUF through transformers, which dequantises it to fp32: that works for the
architectures transformers maps from GGUF (llama, mistral, qwen2/3, gemma2/3, phi3 …) and the
quantizations the ``gguf`` package can dequantise. Anything else would fail minutes later with a
stack trace; here it fails at once, with the reason.

The estimates are rough and say so: memory is the fp32 weights plus activations for one batch;
time scales the throughput measured for SmolLM2-135M on 2 cores (LoRA r=8, batch 4, about 115 tokens/s,
bench/personal.py) by parameter count and cores, unless this machine has measured its own.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

from backend.errors import OrchMindError

MEASURED_TOKENS_PER_S = 115.0  # SmolLM2-135M, LoRA r=8, batch 4, fp32 (no native bf16), 2 CPU cores (bench/personal.py --quick)
MEASURED_PARAMETERS = 134_515_008
MEASURED_CORES = 2
OVERHEAD_BYTES = 600 * 1024**2  # torch, the tokenizer and the process around them
UNTRAINABLE_QUANTIZATIONS = {"unknown"}


class NotTrainableError(OrchMindError):
    code = "not_trainable"


def supported_architectures() -> set[str]:
    from transformers.integrations.ggml import GGUF_CONFIG_MAPPING

    return {name for name in GGUF_CONFIG_MAPPING if name not in ("general", "tokenizer")}


def transformers_name(architecture: str) -> str:
    """llama.cpp's architecture name as transformers' GGUF loader spells it (qwen2moe -> qwen2_moe)."""
    if architecture.endswith("moe") and not architecture.endswith("_moe"):
        return architecture[:-3] + "_moe"
    return architecture


def training_support(info: dict[str, Any]) -> str | None:
    """Why a model with this GGUF metadata cannot be trained here, or None when it can."""
    architecture = str(info.get("architecture", ""))
    if info.get("embedding_model"):
        return f"{info.get('name', 'this model')} is an embedding model; pick a chat or base model to train."
    if transformers_name(architecture) not in supported_architectures():
        known = ", ".join(sorted(supported_architectures() - {"t5", "umt5", "mamba", "bloom"}))
        return (f"the {architecture!r} architecture cannot be loaded for training from GGUF (transformers reads: {known}); "
                "chat with it works, training needs another base.")
    if str(info.get("quantization", "")) in UNTRAINABLE_QUANTIZATIONS:
        return "its quantization type is unknown, so its weights cannot be dequantised for training."
    return None


def require_trainable(info: dict[str, Any]) -> None:
    if reason := training_support(info):
        raise NotTrainableError(f"This model cannot be a training base: {reason}")


@dataclass(frozen=True)
class TrainingEstimate:
    memory_bytes: int
    minutes: float
    tokens_per_s: float
    fits_ram: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def estimate_training(info: dict[str, Any], tokens: int, epochs: int, batch_size: int, max_tokens: int,
                      measured_tokens_per_s: float | None = None) -> TrainingEstimate:
    """Peak memory and wall time for LoRA on this base, from its size and the data's token count (and
    the throughput measured on this machine, when a run on this base has measured it)."""
    import psutil

    parameters = int(info.get("parameters") or MEASURED_PARAMETERS)
    hidden = int(info.get("embedding_length") or 576)
    layers = int(info.get("block_count") or 30)
    activations = batch_size * max_tokens * hidden * layers * 4 * 24  # fp32, about 24 saved tensors a layer
    memory = parameters * 4 + activations + OVERHEAD_BYTES
    cores = max(1, min(os.cpu_count() or 1, 16))
    rate = measured_tokens_per_s or MEASURED_TOKENS_PER_S * (MEASURED_PARAMETERS / parameters) * (cores / MEASURED_CORES)
    return TrainingEstimate(memory_bytes=int(memory), minutes=round(tokens * epochs / rate / 60, 1), tokens_per_s=round(rate, 1),
                            fits_ram=memory <= psutil.virtual_memory().available)
