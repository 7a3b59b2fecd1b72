"""Compute precision for training: which one to use, and frozen base weights kept in bf16 under it.

Under bf16 autocast every matmul casts its fp32 weight to bf16 on every call, forward and backward,
because autocast only caches casts of weights that require gradients, and a LoRA base's do not. So
the frozen Linear weights of the decoder are stored in bf16 once: the matmuls are the same
(autocast would have rounded them the same way), the casts are gone, and the weights take half the
memory. Evaluation stays in fp32: the exact fp32 weights are kept as loaded and swapped in while
evaluating; on the CPU they are file pages of the base's safetensors, paged out while training (so
peak memory falls below fp32 training's: ``bench/training.py``, ``peak_rss_bf16_weights_vs_fp32``); on
a GPU both copies stay in device memory. Build it once the model is on the device it trains on: the
copies are made where the weights are.
"""

from __future__ import annotations

import functools
import mmap
from collections.abc import Iterator
from contextlib import contextmanager
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

    def __init__(self, model: Any) -> None:
        import torch

        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        decoder = base.get_decoder()
        self._modules = [m for name, m in decoder.named_modules()
                         if isinstance(m, torch.nn.Linear) and not m.weight.requires_grad and "lora_" not in name
                         and m.weight.dtype == torch.float32]
        # The fp32 weights as loaded are the exact values evaluation needs. On the CPU transformers maps
        # them from the base's safetensors file, so they are file pages: keep them, train on bf16 copies
        # made one layer at a time, and page the fp32 ones out whenever they are not in use; the process
        # then holds the bf16 weights only, and evaluation reads the fp32 pages back from the file. On a
        # GPU both copies stay in device memory.
        self._fp32, self._bf16 = [], []
        for module in self._modules:
            weight = module.weight.detach()
            self._fp32.append(weight)
            self._bf16.append(weight.to(torch.bfloat16))
            module.weight = torch.nn.Parameter(self._bf16[-1], requires_grad=False)
        self.page_out()

    def page_out(self) -> None:
        """Ask the kernel to reclaim the fp32 weights' pages: file pages are dropped (read again when
        evaluated), anonymous ones go to swap if there is any; never a change of value. A no-op where
        the kernel has no MADV_PAGEOUT (before Linux 5.4, macOS, Windows)."""
        advise = _madvise()
        if advise is None:
            return
        page = mmap.PAGESIZE
        for weight in self._fp32:
            if weight.device.type != "cpu" or not weight.numel():
                continue
            start = weight.data_ptr() // page * page
            end = weight.data_ptr() + weight.numel() * weight.element_size()
            advise(start, end - start)

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
            self.page_out()


@functools.cache
def _madvise() -> Any:
    """``madvise(addr, length, MADV_PAGEOUT)`` through libc, or None where that is not available."""
    import ctypes
    import ctypes.util

    advice = getattr(mmap, "MADV_PAGEOUT", None)
    name = ctypes.util.find_library("c")
    if advice is None or name is None:
        return None
    libc = ctypes.CDLL(name, use_errno=True)
    libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    libc.madvise.restype = ctypes.c_int
    return lambda address, length: libc.madvise(address, length, advice)  # EINVAL on older kernels: ignored
