"""Whether a GGUF can be a training base here, and what training it will cost, said before starting.

Training loads the GGUF through transformers, which dequantises it to fp32: that works for the
architectures transformers maps from GGUF (llama, mistral, qwen2/3, gemma2/3, phi3 …) and the
quantizations the ``gguf`` package can dequantise. Anything else would fail minutes later with a
stack trace; here it fails at once, with the reason.

The estimates are for the path that will run (CPU fp32/bf16, or QLoRA on a GPU): memory is the
weights in their training form, the LoRA's state and the activations of the largest micro-batch;
time scales the throughput measured on 2 cores (``bench/bases.py``) by size and cores, unless this
machine has measured its own on this base. ``bench/bases.py`` checks them against measured runs.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

from backend.errors import OrchMindError

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
    path: str                 # what will run: "cpu-fp32", "cpu-bf16", "cpu-4bit", "cuda-qlora", "cuda-bf16", "cuda-fp32",
                              # "cuda-fsdp" (bf16, sharded across several GPUs)
    ram_bytes: int            # peak resident memory of the trainer process
    vram_bytes: int | None    # peak GPU memory torch reserves (CUDA only)
    minutes: float            # the whole run: loading, training, the validation passes
    tokens_per_s: float
    fits: bool                # in this machine's free memory (RAM, and VRAM on a GPU)
    memory_bytes: int         # the memory that decides: VRAM on a GPU, RAM elsewhere
    fits_ram: bool            # kept for older callers: same as ``fits``

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ModelShape:
    """What a base's training cost depends on (from its transformers config)."""

    parameters: int
    hidden: int
    layers: int
    intermediate: int
    heads: int
    vocab: int

    @classmethod
    def from_info(cls, info: dict[str, Any]) -> ModelShape:
        parameters = int(info.get("parameters") or MEASURED_PARAMETERS)
        hidden = int(info.get("hidden_size") or info.get("embedding_length") or 576)
        return cls(parameters=parameters, hidden=hidden, layers=int(info.get("num_hidden_layers") or info.get("block_count") or 30),
                   intermediate=int(info.get("intermediate_size") or info.get("feed_forward_length") or hidden * 8 // 3),
                   heads=int(info.get("num_attention_heads") or info.get("head_count") or max(1, hidden // 64)),
                   vocab=int(info.get("vocab_size") or 49_152))


# Calibration, measured with bench/bases.py on 2 CPU cores (fp32, batch 4, samples up to ~500 tokens,
# 2026-12-04): SmolLM2-135M 196 tokens/s, synthetic llamas of 0.55B 76 and 1.2B 33 tokens/s, i.e.
# throughput falls as parameters^-0.82 (bigger matmuls use the cores better than the parameter ratio
# says); the activations held for backward came to 0.82 of the tensors counted below (8 hidden-sized,
# 4 MLP-sized and 2 attention-score rows per layer and token, 3 vocabulary-sized rows per token).
MEASURED_TOKENS_PER_S = 196.0
RATE_EXPONENT = 0.82
STARTUP_SECONDS = 10.0      # the trainer process importing torch, transformers and peft
ACTIVATION_FACTOR = 0.82
GPU_SPEEDUP = 40.0          # a consumer GPU over 2 CPU cores, for the estimate before a GPU has measured itself
LOAD_BYTES_PER_S = 400e6    # reading and converting the prepared base at start
EVAL_COST = 1 / 3           # a validation token costs a forward pass: about a third of a training token
NF4_BYTES = 0.52            # 4-bit NF4 with double-quantized scales, per parameter
CUDA_OVERHEAD_BYTES = 600 * 1024**2   # the CUDA context and allocator slack
CUDA_HOST_BYTES = 2500 * 1024**2      # host memory of a CUDA trainer (torch, CUDA libraries, loading buffers)
FSDP_EFFICIENCY = 0.8                  # of n GPUs' throughput left after gathering weights (not yet measured here)


def activation_bytes(shape: ModelShape, batch: int, length: int, checkpointing: bool, element: int = 4) -> int:
    """Memory held for the backward pass of one micro-batch of ``batch`` x ``length`` tokens."""
    per_layer = 8 * shape.hidden + 4 * shape.intermediate + 2 * shape.heads * length
    layers = shape.hidden * shape.layers + per_layer if checkpointing else per_layer * shape.layers
    logits = 3 * shape.vocab * 4  # fp32 logits, their log-softmax and its gradient
    return int(ACTIVATION_FACTOR * batch * length * (layers * element + logits))


def estimate_training(info: dict[str, Any], tokens: int, epochs: int, batch_size: int, max_tokens: int,
                      measured_tokens_per_s: float | None = None, *, longest: int | None = None, quantization: str = "none",
                      gradient_checkpointing: bool = False, device: str | None = None, precision: str = "fp32",
                      validation_tokens: int = 0, evaluations: int = 0, rank: int = 8,
                      free_ram: int | None = None, free_vram: int | None = None, shards: int = 1) -> TrainingEstimate:
    """Peak memory and wall time of a LoRA run on this base, for the path that will run: its size and
    shape (``info``: GGUF metadata and/or transformers config), the data's token count and longest
    sample, and this machine (or the throughput a run on this base measured here). ``shards``: GPUs
    the base is split across with FSDP; each holds its share of the weights and the adapter's state
    plus one decoder layer gathered whole at a time (memory per GPU; the RAM is per process too)."""
    import psutil

    shape = ModelShape.from_info(info)
    device = device or ("cuda" if _cuda_available() else "cpu")
    length = min(max_tokens, longest or max_tokens)
    lora = rank * 2 * shape.hidden * shape.layers * 4 * 16  # q,k,v,o; weights, gradients and Adam's two moments in fp32
    embeddings = shape.vocab * shape.hidden
    if quantization == "4bit":
        weights = int((shape.parameters - embeddings) * NF4_BYTES + embeddings * 2)
    elif quantization == "8bit":
        weights = int((shape.parameters - embeddings) * 1.05 + embeddings * 2)
    else:
        weights = shape.parameters * (2 if precision == "bf16-mixed" else 4)
    element = 2 if quantization != "none" or precision == "bf16-mixed" else 4
    activations = activation_bytes(shape, batch_size, length, gradient_checkpointing, element)
    cores = max(1, min(os.cpu_count() or 1, 16))
    rate = measured_tokens_per_s or (MEASURED_TOKENS_PER_S * (MEASURED_PARAMETERS / shape.parameters) ** RATE_EXPONENT
                                     * (cores / MEASURED_CORES) * (GPU_SPEEDUP if device == "cuda" else 1.0)
                                     * (0.75 if gradient_checkpointing else 1.0))
    seconds = STARTUP_SECONDS + shape.parameters * 2 / LOAD_BYTES_PER_S + tokens * epochs / rate + evaluations * validation_tokens * EVAL_COST / rate
    if shards > 1:
        # Sharded, the frozen weights stay fp32 (the bf16 copies are off under FSDP), and every process
        # first loads the whole base into host memory before its share goes to its GPU.
        weights = shape.parameters * 4
        weights = weights // shards + weights // shape.layers  # its shard, and the layer being gathered
        lora //= shards
        rate *= shards * FSDP_EFFICIENCY
        seconds = STARTUP_SECONDS + shape.parameters * 2 / LOAD_BYTES_PER_S + tokens * epochs / rate \
            + evaluations * validation_tokens * EVAL_COST / rate
    if device == "cuda":
        vram = weights + lora + activations + CUDA_OVERHEAD_BYTES
        ram = CUDA_HOST_BYTES + min(shape.parameters * 2, 1 << 30)  # one shard of the base mapped while loading
        if shards > 1:
            ram = shards * (CUDA_HOST_BYTES + shape.parameters * 4)  # all processes together
        free_vram = free_vram_bytes() if free_vram is None else free_vram
        free_ram = psutil.virtual_memory().available if free_ram is None else free_ram
        fits = vram <= free_vram and ram <= free_ram
        path = "cuda-fsdp" if shards > 1 else \
            {"4bit": "cuda-qlora", "8bit": "cuda-8bit"}.get(quantization, "cuda-bf16" if precision == "bf16-mixed" else "cuda-fp32")
        decisive = vram
    else:
        ram = weights + lora + activations + OVERHEAD_BYTES
        vram = None
        fits = ram <= (psutil.virtual_memory().available if free_ram is None else free_ram)
        path = {"4bit": "cpu-4bit", "8bit": "cpu-8bit"}.get(quantization, "cpu-bf16" if precision == "bf16-mixed" else "cpu-fp32")
        decisive = ram
    return TrainingEstimate(path=path, ram_bytes=int(ram), vram_bytes=None if vram is None else int(vram),
                            minutes=round(seconds / 60, 1), tokens_per_s=round(rate, 1), fits=fits,
                            memory_bytes=int(decisive), fits_ram=fits)


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def free_vram_bytes() -> int:
    """Free memory of the current CUDA device (0 without one)."""
    import torch

    return int(torch.cuda.mem_get_info()[0]) if torch.cuda.is_available() else 0
