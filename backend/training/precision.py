"""Compute precision for training: which one to use, and frozen base weights kept in bf16 under it.

Under bf16 autocast every matmul casts its fp32 weight to bf16 on every call, forward and backward,
because autocast only caches casts of weights that require gradients, and a LoRA base's do not. So
the frozen Linear weights of the decoder are stored in bf16 once: the matmuls are the same
(autocast would have rounded them the same way), the casts are gone, and the weights take half the
memory. Evaluation stays in fp32: on the CPU the exact fp32 weights are kept in a file mapped
copy-on-write (the page cache holds them, not the process's heap); on a GPU they stay where they are,
in device memory. Either way they are swapped in while evaluating. Build it once the model is on the
device it trains on: the copies are made where the weights are.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def resolve_precision(requested: str, quantization: str) -> str:
    """``auto``: bf16 autocast on CUDA GPUs with bf16 and on CPUs with AMX tiles, fp32 elsewhere; QLoRA
    already computes in bf16 through bitsandbytes. AVX512-BF16 alone is not enough: on such a 2-core
    Xeon without AMX, bf16 autocast trained at 0.72x fp32's tokens/s (``bench/training.py``,
    ``tokps_auto_vs_fp32``, 2026-11-29), while on an AMX Xeon bf16 weights ran 1.41x faster than fp32
    weights under autocast."""
    import torch

    if requested != "auto":
        return requested
    if quantization != "none":
        return "fp32"
    if torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "fp32"
    cpu = torch.cpu
    native = getattr(cpu, "_is_amx_tile_supported", lambda: False)()
    return "bf16-mixed" if native else "fp32"


class FrozenBf16Weights:
    """The frozen Linear weights inside the decoder layers, stored in bf16 for training, with their
    exact fp32 values one ``full_precision()`` away. The output projection is left alone: it is
    usually tied to the input embeddings, which must stay fp32 so the residual stream does."""

    def __init__(self, model: Any, scratch_dir: Path) -> None:
        import tempfile

        import numpy as np
        import torch

        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        decoder = base.get_decoder()
        self._modules = [m for name, m in decoder.named_modules()
                         if isinstance(m, torch.nn.Linear) and not m.weight.requires_grad and "lora_" not in name
                         and m.weight.dtype == torch.float32]
        if self._modules and self._modules[0].weight.device.type != "cpu":  # a GPU: both copies in device memory
            self._fp32 = [m.weight.detach() for m in self._modules]
            self._bf16 = [weight.to(torch.bfloat16) for weight in self._fp32]
            self._use(self._bf16)
            return
        total = sum(m.weight.numel() for m in self._modules)
        self._file = tempfile.TemporaryFile(dir=scratch_dir, prefix="frozen-fp32-")  # gone when the process ends
        mapped = np.memmap(self._file, dtype=np.float32, mode="w+", shape=(max(total, 1),))
        offset = 0
        for module in self._modules:
            n = module.weight.numel()
            mapped[offset:offset + n] = module.weight.detach().reshape(-1).numpy()
            offset += n
        mapped.flush()
        del mapped
        copy_on_write = np.memmap(self._file, dtype=np.float32, mode="c", shape=(max(total, 1),))
        flat = torch.from_numpy(copy_on_write)
        self._fp32, self._bf16, offset = [], [], 0
        for module in self._modules:
            n = module.weight.numel()
            self._fp32.append(flat[offset:offset + n].view(module.weight.shape))
            self._bf16.append(module.weight.detach().to(torch.bfloat16))
            offset += n
        self._use(self._bf16)

    @property
    def count(self) -> int:
        return len(self._modules)

    def _use(self, weights: list[Any]) -> None:
        import torch

        for module, weight in zip(self._modules, weights):
            module.weight = torch.nn.Parameter(weight, requires_grad=False)

    @contextmanager
    def full_precision(self) -> Iterator[None]:
        self._use(self._fp32)
        try:
            yield
        finally:
            self._use(self._bf16)
