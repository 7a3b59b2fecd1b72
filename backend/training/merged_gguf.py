"""Fold a GGUF LoRA adapter into its base GGUF, one tensor at a time, in the base's own quantization.

No full-precision model is ever built: the merged file is the base file with the adapted tensors
replaced. Each tensor the adapter changes is dequantised (``gguf``), gets ``alpha / rank · B·A``
added (the adapter GGUF is in the base's own tensor names and layout, as llama.cpp applies it), and
is quantized again by llama.cpp's own ``ggml_quantize_chunk`` into the type it had. Where that type
would erase most of the change (a 4-bit grid is coarser than a small LoRA update), the tensor is
kept at the next finer type (Q8_0, then F16) and the report says how many were. Every other tensor
and every metadata field (chat template, tokenizer) is copied as it is. Peak memory: the largest
adapted tensor in fp32, a few times over; disk: the base's size plus the raised tensors.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import math
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from backend.errors import OrchMindError
from backend.training.base_preparation import read_dequantised

# The change a merged tensor must keep: the quantization error of (W + delta) at most this fraction
# of the delta itself, else the tensor goes to a finer type.
MAX_ERROR_OF_DELTA = 0.5
FINER_TYPES = ("Q8_0", "F16")


class MergeError(OrchMindError):
    code = "merge_failed"


@dataclass
class MergeReport:
    tensors: int = 0               # tensors in the model
    merged: int = 0                # tensors the adapter changed
    raised: dict[str, int] = field(default_factory=dict)  # finer type -> tensors kept at it
    bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@functools.cache
def _ggml() -> Any:
    """llama.cpp's ggml library, as llama-cpp-python ships it."""
    spec = importlib.util.find_spec("llama_cpp")
    roots = [Path(spec.origin).parent / "lib"] if spec and spec.origin else []
    roots.append(Path(getattr(sys, "_MEIPASS", "/nonexistent")) / "llama_cpp" / "lib")
    names = {"darwin": ["libggml-base.dylib"], "win32": ["ggml-base.dll"]}.get(sys.platform, ["libggml-base.so"])
    for root in roots:
        for name in names:
            if (root / name).exists():
                lib = ctypes.CDLL(str(root / name))
                lib.ggml_quantize_chunk.restype = ctypes.c_size_t
                lib.ggml_quantize_chunk.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                                    ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p)
                lib.ggml_quantize_requires_imatrix.restype = ctypes.c_bool
                lib.ggml_quantize_requires_imatrix.argtypes = (ctypes.c_int,)
                lib.ggml_quantize_init.argtypes = (ctypes.c_int,)
                return lib
    raise MergeError("llama.cpp's ggml library was not found next to llama-cpp-python; reinstall it (make does).")


def quantize(values: Any, kind: Any) -> Any:
    """fp32 rows (numpy, 2-D: rows x row length) -> the bytes of ``kind`` as ggml lays them out."""
    import numpy as np
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    values = values.reshape(-1, values.shape[-1])
    if kind == GGMLQuantizationType.F32:
        return np.ascontiguousarray(values, dtype=np.float32).view(np.uint8)
    lib = _ggml()
    if lib.ggml_quantize_requires_imatrix(int(kind)):
        raise MergeError(f"{kind.name} cannot be re-quantized without an importance matrix.")
    rows, per_row = values.shape
    block, size = GGML_QUANT_SIZES[kind]
    out = np.empty((rows, per_row // block * size), dtype=np.uint8)
    source = np.ascontiguousarray(values, dtype=np.float32)
    lib.ggml_quantize_init(int(kind))
    lib.ggml_quantize_chunk(int(kind), source.ctypes.data, out.ctypes.data, 0, rows, per_row, None)
    return out


def _lora_pairs(adapter: Any) -> tuple[dict[str, tuple[Any, Any]], float]:
    from gguf import dequantize

    fields = adapter.fields
    kind = fields.get("general.type")
    if kind is None or kind.contents() != "adapter" or fields["adapter.type"].contents() != "lora":
        raise MergeError("The adapter file is not a GGUF LoRA adapter; export the adapter again.")
    alpha = float(fields["adapter.lora.alpha"].contents())
    parts: dict[str, dict[str, Any]] = {}
    for tensor in adapter.tensors:
        name, _, which = tensor.name.rpartition(".lora_")
        if which in ("a", "b"):
            parts.setdefault(name, {})[which] = dequantize(tensor.data, tensor.tensor_type).reshape(
                tuple(int(d) for d in reversed(tensor.shape)))
    pairs = {name: (p["a"], p["b"]) for name, p in parts.items() if set(p) == {"a", "b"}}
    if not pairs:
        raise MergeError("The adapter file holds no LoRA weights.")
    return pairs, alpha


def _finest_needed(target: Any, delta: Any, kind: Any, report: MergeReport) -> Any:
    """The base's type for ``target`` (= weight + delta) unless it would erase the change; then the
    first finer type that keeps it."""
    import numpy as np
    from gguf import GGMLQuantizationType, dequantize

    scale = float(np.linalg.norm(delta)) or 1.0
    candidates = [kind] + [GGMLQuantizationType[name] for name in FINER_TYPES if GGMLQuantizationType[name] != kind]
    for position, candidate in enumerate(candidates):
        try:
            data = quantize(target, candidate)
        except MergeError:
            continue
        error = float(np.linalg.norm(dequantize(data, candidate).reshape(target.shape) - target))
        if error <= MAX_ERROR_OF_DELTA * scale or position == len(candidates) - 1:
            if candidate != kind:
                report.raised[candidate.name] = report.raised.get(candidate.name, 0) + 1
            return candidate
    raise MergeError("No type could hold the merged tensor.")  # F16 always can; kept for the type checker


def _byte_size(shape: tuple[int, ...], kind: Any) -> int:
    from gguf import GGML_QUANT_SIZES

    block, size = GGML_QUANT_SIZES[kind]
    return int(math.prod(shape[:-1])) * (shape[-1] // block) * size


def merge_adapter_into_gguf(base: Path, adapter: Path, output: Path, *, scale: float = 1.0,
                            on_progress: Callable[[int, int], None] | None = None) -> MergeReport:
    """Write ``output``: ``base`` with the LoRA in ``adapter`` folded in. Two passes over the adapted
    tensors (choose each one's type, then write it) keep one tensor in memory at a time. Written
    beside and renamed into place; a failure leaves nothing at ``output``."""
    import numpy as np
    from gguf import GGUFReader, GGUFValueType, GGUFWriter

    report = MergeReport()
    reader = GGUFReader(base)
    pairs, alpha = _lora_pairs(GGUFReader(adapter))
    if missing := sorted(set(pairs) - {t.name for t in reader.tensors}):
        raise MergeError(f"The adapter changes {missing[0]}, which this base does not have: it was trained on another base.")
    partial = output.with_name(f".{output.name}.partial")
    total = len(reader.tensors) + len(pairs)
    progress = on_progress or (lambda done, total: None)
    try:
        with open(base, "rb") as source:
            fd = source.fileno()

            def merged(tensor: Any) -> Any:
                a, b = pairs[tensor.name]
                weight = read_dequantised(tensor, fd)
                delta = (b.astype(np.float32) @ a.astype(np.float32)) * np.float32(scale * alpha / a.shape[0])
                if delta.shape != weight.shape:
                    raise MergeError(f"The adapter's {tensor.name} is {list(delta.shape)}, the base's {list(weight.shape)}: "
                                     "it was trained on another base.")
                return weight + delta, delta

            kinds: dict[str, Any] = {}
            for tensor in reader.tensors:
                if tensor.name in pairs:
                    target, delta = merged(tensor)
                    kinds[tensor.name] = _finest_needed(target, delta, tensor.tensor_type, report)
                    del target, delta
                    progress(len(kinds), total)
            writer = GGUFWriter(str(partial), reader.fields["general.architecture"].contents())
            for name, value in reader.fields.items():
                if name.startswith("GGUF.") or name == "general.architecture":
                    continue
                kind = value.types[0]
                writer.add_key_value(name, value.contents(), kind,
                                     sub_type=value.types[-1] if kind == GGUFValueType.ARRAY else None)
            for tensor in reader.tensors:
                if tensor.name in kinds:  # described by its bytes: rows x bytes per row in its new type
                    shape, kind = tuple(int(d) for d in reversed(tensor.shape)), kinds[tensor.name]
                    writer.add_tensor_info(tensor.name, [*shape[:-1], _byte_size((shape[-1],), kind)], np.dtype(np.uint8),
                                           _byte_size(shape, kind), raw_dtype=kind)
                else:  # as the reader describes it (float tensors by elements, quantized ones by bytes)
                    writer.add_tensor_info(tensor.name, list(tensor.data.shape), tensor.data.dtype, int(tensor.n_bytes),
                                           raw_dtype=tensor.tensor_type)
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_ti_data_to_file()
            for done, tensor in enumerate(reader.tensors, 1):
                if tensor.name in kinds:
                    target, _ = merged(tensor)
                    data = quantize(target.reshape(-1, target.shape[-1]), kinds[tensor.name])
                    report.merged += 1
                else:
                    data = np.frombuffer(os.pread(fd, int(tensor.n_bytes), int(tensor.data_offset)), dtype=tensor.data.dtype)
                writer.write_tensor_data(data)
                progress(len(kinds) + done, total)
            writer.close()
        report.tensors, report.bytes = len(reader.tensors), partial.stat().st_size
        partial.replace(output)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return report
