"""GGUF -> a folder transformers trains from, streamed one tensor at a time.

transformers' own GGUF loader dequantises every tensor to fp32 into one dict, builds the model from
it and only then can it be saved: 5.5 bytes of RAM per parameter (6.5 GB for a 1.2B base, ~41 GB
for an 8B). Here each tensor is read from the file with ``pread`` (not through a memory map, whose
pages would stay resident), dequantised a slice of rows at a time by the ``gguf`` package, put
through transformers' own per-architecture fix-ups (``TENSOR_PROCESSORS``: Llama's q/k permutation,
Gemma's norm offset …) and names (``get_gguf_hf_weights_map``), and written straight into a
safetensors shard as bf16 (1-D tensors, norms and biases, stay fp32: they are tiny and exact). Peak
memory is the largest single tensor in fp32 plus small buffers; the folder takes about 2 bytes per
parameter on disk.

Shards are planned from the GGUF's tensor list before anything is written, each shard is written
beside its final name and renamed once complete, and ``progress.json`` records the finished ones: a
preparation that is stopped (cancel, crash, power) continues with the next shard when it is run
again. The folder is renamed into place only when every parameter the model needs is present with
its expected shape.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.config import atomic_write_text
from backend.errors import CancelledError
from backend.model_loading import MODEL_LOADS
from backend.training.trainability import NotTrainableError

SHARD_BYTES = 1 << 30          # bf16 bytes per safetensors shard
ROWS_ELEMENTS = 1 << 23        # weights dequantised at once (32 MB of fp32)
HEADER_BYTES_PER_TENSOR = 512  # safetensors header space reserved per GGUF tensor of a shard
PROGRESS_FILE = "progress.json"
MARKER_FILE = "orch_mind_source.json"
FORMAT = 2  # 1: fp32 model.safetensors made by transformers; 2: streamed bf16 shards

PrepareProgress = Callable[[int, int], None]  # (tensors done, tensors in all)


class PreparationError(NotTrainableError):
    """The GGUF cannot become a training base (a tensor type or a name that nothing can read)."""

    code = "preparation"


@dataclass(frozen=True)
class PreparationCost:
    """What preparing a base costs, said before it starts."""

    tensors: int
    parameters: int
    disk_bytes: int        # the prepared folder
    peak_ram_bytes: int    # the process doing it, at most

    def to_dict(self) -> dict[str, int]:
        return {"tensors": self.tensors, "parameters": self.parameters, "disk_bytes": self.disk_bytes,
                "peak_ram_bytes": self.peak_ram_bytes}


# What the process holds besides the tensor being converted: torch, transformers, the tokenizer's
# vocabulary and the model's skeleton (measured with bench/bases.py: 0.6-0.75 GB, 49k-262k vocabularies).
PROCESS_BYTES = 650 * 1024**2


def _tensor_elements(tensor: Any) -> int:
    return int(math.prod(int(d) for d in tensor.shape))


def _out_bytes(tensor: Any) -> int:
    return _tensor_elements(tensor) * (4 if len(tensor.shape) == 1 else 2)


def preparation_cost(gguf: Path) -> PreparationCost:
    """Disk and peak memory of :func:`prepare_base` for ``gguf``, from its tensor list alone."""
    from gguf import GGUFReader

    reader = GGUFReader(gguf)
    tensors = list(reader.tensors)
    return PreparationCost(tensors=len(tensors), parameters=sum(_tensor_elements(t) for t in tensors),
                           disk_bytes=sum(_out_bytes(t) for t in tensors), peak_ram_bytes=_peak_bytes(tensors))


def _peak_bytes(tensors: list[Any]) -> int:
    """The largest tensor in fp32, a slice of rows being dequantised and its copies, and the process."""
    return max((_tensor_elements(t) for t in tensors), default=0) * 4 + ROWS_ELEMENTS * 12 + PROCESS_BYTES


def unreadable_types(reader: Any) -> list[str]:
    """The tensor types in the GGUF that the ``gguf`` package cannot dequantise (checked on one
    block of each type, so what the installed version can read is what counts)."""
    import numpy as np
    from gguf import GGML_QUANT_SIZES, dequantize

    bad = []
    for kind in sorted({t.tensor_type for t in reader.tensors}, key=int):
        try:
            _, type_size = GGML_QUANT_SIZES[kind]
            dequantize(np.zeros((1, type_size), dtype=np.uint8), kind)
        except (KeyError, NotImplementedError, ValueError):
            bad.append(getattr(kind, "name", str(kind)))
    return bad


def require_readable(gguf: Path, reader: Any | None = None) -> None:
    """Refuse, before any work, a GGUF holding tensor types that cannot be converted."""
    from gguf import GGUFReader

    if bad := unreadable_types(reader or GGUFReader(gguf)):
        raise PreparationError(f"{gguf.name} stores tensors as {', '.join(bad)}, which cannot be converted for training; "
                               "use a GGUF of the same model in another quantization (Q8_0, Q6_K, Q4_K_M or F16).")


@dataclass
class _Shard:
    file: str
    tensors: list[int]  # indexes into the GGUF's tensor list


def _plan_shards(tensors: list[Any]) -> list[_Shard]:
    groups: list[list[int]] = [[]]
    size = 0
    for index, tensor in enumerate(tensors):
        if groups[-1] and size + _out_bytes(tensor) > SHARD_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(index)
        size += _out_bytes(tensor)
    count = len(groups)
    return [_Shard(f"model-{n + 1:05d}-of-{count:05d}.safetensors", group) for n, group in enumerate(groups)]


def _source_of(gguf: Path) -> dict[str, Any]:
    stat = gguf.stat()
    return {"gguf": str(gguf), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "format": FORMAT}


def is_prepared(folder: Path) -> bool:
    """A folder this module finished (older folders, fp32 from transformers, are prepared again)."""
    marker = folder / MARKER_FILE
    if not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text()).get("format") == FORMAT
    except (OSError, ValueError):
        return False


def prepare_base(gguf: Path, target: Path, *, chat_template: str | None = None,
                 on_progress: PrepareProgress | None = None, should_stop: Callable[[], bool] = lambda: False) -> None:
    """Write the training folder for ``gguf`` at ``target`` (config, tokenizer, bf16 shards, index).

    ``chat_template``: set on the tokenizer when the GGUF carries none (a base model), so training
    renders its data with the template the engine will use. Raises :class:`PreparationError` before
    any work for a GGUF with tensor types nothing here can read; :class:`CancelledError` when
    ``should_stop`` says so between tensors (the finished shards are kept for the next run)."""
    from gguf import GGUFReader

    report = on_progress or (lambda done, total: None)
    reader = GGUFReader(gguf)
    require_readable(gguf, reader)
    tensors = list(reader.tensors)
    partial = target.with_name(target.name + ".partial")
    source = _source_of(gguf)
    done = _finished_shards(partial, source)
    _require_room(gguf, target, tensors, done)
    partial.mkdir(parents=True, exist_ok=True)
    atomic_write_text(partial / PROGRESS_FILE, json.dumps({"source": source, "shards": done}))  # what this folder is
    with MODEL_LOADS:  # transformers' lazy imports and its meta-device model building are process-wide
        config, tokenizer, processor, names, expected = _skeleton(gguf, str(reader.fields["general.architecture"].contents()))
    if chat_template and not tokenizer.chat_template:
        tokenizer.chat_template = chat_template
    config.save_pretrained(partial)
    tokenizer.save_pretrained(partial)

    shards = _plan_shards(tensors)
    completed = sum(len(s.tensors) for s in shards if s.file in done)
    report(completed, len(tensors))
    with open(gguf, "rb") as handle:
        for shard in shards:
            if shard.file in done:
                continue
            def converted(count: int, first: int = completed) -> None:
                report(first + count, len(tensors))
                if should_stop():
                    raise CancelledError("Preparing the base model was stopped; it goes on from its last finished part next time.")

            entries = _write_shard(partial / shard.file, [tensors[i] for i in shard.tensors], handle.fileno(),
                                   processor, names, converted)
            done[shard.file] = entries
            completed += len(shard.tensors)
            atomic_write_text(partial / PROGRESS_FILE, json.dumps({"source": source, "shards": done}))

    written = {shard.file: done[shard.file] for shard in shards}  # shard file -> its tensors' header entries
    weight_map = {name: file for file, entries in written.items() for name in entries}
    _check_complete(gguf, weight_map, {n: e["shape"] for entries in written.values() for n, e in entries.items()}, expected)
    total = sum(e["data_offsets"][1] - e["data_offsets"][0] for entries in written.values() for e in entries.values())
    atomic_write_text(partial / "model.safetensors.index.json",
                      json.dumps({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, indent=1))
    (partial / PROGRESS_FILE).unlink(missing_ok=True)
    atomic_write_text(partial / MARKER_FILE, json.dumps(source))
    if target.exists() or target.is_symlink():
        _remove(target)
    partial.replace(target)


def _require_room(gguf: Path, target: Path, tensors: list[Any], done: dict[str, Any]) -> None:
    """Refuse before any work when the disk or the free memory cannot take the preparation."""
    import psutil

    written = sum(e["data_offsets"][1] - e["data_offsets"][0] for entries in done.values() for e in entries.values())
    needed = sum(_out_bytes(t) for t in tensors) - written
    target.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(target.parent).free
    if needed > free:
        raise PreparationError(f"Preparing {gguf.name} for training writes {needed / 1e9:.1f} GB and the disk has "
                               f"{free / 1e9:.1f} GB free; free some space (or remove other prepared bases on the Models screen).")
    memory = _peak_bytes(tensors)
    if memory > psutil.virtual_memory().available:
        raise PreparationError(f"Preparing {gguf.name} for training needs about {memory / 1e9:.1f} GB of memory and "
                               f"{psutil.virtual_memory().available / 1e9:.1f} GB is free; close other programs and try again.")


def _finished_shards(partial: Path, source: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The shards a stopped run of the same GGUF finished; anything else in ``partial`` is dropped."""
    try:
        state = json.loads((partial / PROGRESS_FILE).read_text())
    except (OSError, ValueError):
        state = None
    if not isinstance(state, dict) or state.get("source") != source:
        if partial.exists():
            _remove(partial)
        return {}
    shards = state.get("shards") if isinstance(state.get("shards"), dict) else {}
    return {file: entries for file, entries in shards.items() if (partial / file).is_file()}


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    else:
        shutil.rmtree(path)


def _skeleton(gguf: Path, architecture: str) -> tuple[Any, Any, Any, dict[str, str], dict[str, tuple[int, ...]]]:
    """The config and tokenizer transformers reads from the GGUF's metadata, its tensor processor,
    the GGUF -> transformers name map and every parameter's expected shape (from a model built on
    the meta device: no memory for weights)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.modeling_gguf_pytorch_utils import TENSOR_PROCESSORS, TensorProcessor, get_gguf_hf_weights_map

    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config.dtype = torch.bfloat16
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    processor = TENSOR_PROCESSORS.get(architecture, TensorProcessor)(config=config.to_dict())
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    config.architectures = [type(model).__name__]  # llama.cpp's converters read the architecture from here
    names = get_gguf_hf_weights_map(model, processor)
    expected = {name: tuple(p.shape) for name, p in model.named_parameters()}
    return config, tokenizer, processor, names, expected


def read_dequantised(tensor: Any, fd: int) -> Any:
    """The tensor as fp32 numpy, read and dequantised a slice of rows at a time."""
    import numpy as np
    from gguf import GGMLQuantizationType, dequantize

    byte_shape = tuple(int(d) for d in tensor.data.shape)
    item = tensor.data.dtype
    rows = int(math.prod(byte_shape[:-1])) if len(byte_shape) > 1 else 1
    row_items = byte_shape[-1] if len(byte_shape) > 1 else byte_shape[0]
    row_bytes = row_items * item.itemsize
    shape = tuple(int(d) for d in reversed(tensor.shape)) if len(tensor.shape) else ()
    out = np.empty(shape, dtype=np.float32)
    flat = out.reshape(rows, -1)
    per_slice = max(1, ROWS_ELEMENTS // max(flat.shape[1], 1))
    for start in range(0, rows, per_slice):
        count = min(per_slice, rows - start)
        raw = os.pread(fd, count * row_bytes, tensor.data_offset + start * row_bytes)
        if len(raw) != count * row_bytes:
            raise PreparationError(f"The GGUF ends inside tensor {tensor.name}; the file is truncated. Download it again.")
        block = np.frombuffer(raw, dtype=item).reshape(count, row_items)
        if tensor.tensor_type == GGMLQuantizationType.F32:
            flat[start:start + count] = block
        else:
            flat[start:start + count] = dequantize(block, tensor.tensor_type).reshape(count, -1)
    return out


def _write_shard(path: Path, tensors: list[Any], fd: int, processor: Any, names: dict[str, str],
                 converted: Callable[[int], None]) -> dict[str, dict[str, Any]]:
    """One safetensors file written as its tensors are converted: the header's space is reserved up
    front (the format allows padding it with spaces) and filled in once every offset is known."""
    partial = path.with_name(path.name + ".partial")
    reserve = 4096 + HEADER_BYTES_PER_TENSOR * len(tensors)
    entries: dict[str, dict[str, Any]] = {}
    with open(partial, "wb") as out:
        out.seek(8 + reserve)
        offset = 0
        for count, tensor in enumerate(tensors, 1):
            for name, value in _converted(tensor, fd, processor, names):
                dtype = "F32" if value.dim() <= 1 else "BF16"
                start = offset
                for piece in _pieces(value, dtype):
                    out.write(piece)
                    offset += len(piece)
                entries[name] = {"dtype": dtype, "shape": list(value.shape), "data_offsets": [start, offset]}
            converted(count)
        header = json.dumps(dict(entries, __metadata__={"format": "pt"}), separators=(",", ":")).encode()
        if len(header) > reserve:  # more tensors came out than went in (an MoE split): move the data along
            out.flush()
            return _rewrite_with_header(partial, path, header, reserve, entries)
        out.seek(0)
        out.write(len(header.ljust(reserve)).to_bytes(8, "little"))
        out.write(header.ljust(reserve))
        out.flush()
        os.fsync(out.fileno())
    partial.replace(path)
    return entries


def _rewrite_with_header(partial: Path, path: Path, header: bytes, reserve: int, entries: dict[str, Any]) -> dict[str, Any]:
    with open(partial, "rb") as source, open(path.with_name(path.name + ".moved"), "wb") as target:
        target.write(len(header).to_bytes(8, "little"))
        target.write(header)
        source.seek(8 + reserve)
        shutil.copyfileobj(source, target, 16 << 20)
        os.fsync(target.fileno())
    partial.unlink()
    path.with_name(path.name + ".moved").replace(path)
    return entries


def _converted(tensor: Any, fd: int, processor: Any, names: dict[str, str]) -> Iterator[tuple[str, Any]]:
    """(transformers name, torch tensor) for one GGUF tensor: usually one; none for tensors the
    model does not use (rope frequencies); several when a processor splits experts."""
    import numpy as np
    import torch

    parsed: dict[str, Any] = {"tensors": {}}
    weights = read_dequantised(tensor, fd)
    result = processor.process(weights=weights, name=tensor.name, tensor_key_mapping=names, parsed_parameters=parsed)
    if result.name is not None and result.name in names:
        yield names[result.name], torch.from_numpy(np.ascontiguousarray(result.weights))
    for name, value in parsed["tensors"].items():  # tensors a processor assembled itself
        yield name, value.contiguous()


def _pieces(value: Any, dtype: str) -> Iterator[memoryview]:
    """The tensor's bytes in safetensors' little-endian layout, converted a slice at a time."""
    import torch

    flat = value.reshape(-1)
    for start in range(0, flat.numel(), ROWS_ELEMENTS):
        part = flat[start:start + ROWS_ELEMENTS]
        if dtype == "BF16":
            part = part.to(torch.bfloat16).view(torch.int16)
        else:
            part = part.to(torch.float32)
        yield memoryview(part.numpy()).cast("B")


def _check_complete(gguf: Path, weight_map: dict[str, str], shapes: dict[str, list[int]],
                    expected: dict[str, tuple[int, ...]]) -> None:
    missing = sorted(set(expected) - set(weight_map))
    wrong = sorted(n for n in expected if n in shapes and tuple(shapes[n]) != expected[n])
    if missing or wrong:
        detail = f"missing {', '.join(missing[:3])}" if missing else \
            f"{wrong[0]} is {shapes[wrong[0]]}, the model expects {list(expected[wrong[0]])}"
        raise PreparationError(f"{gguf.name} does not hold the weights its own metadata describes ({detail}); "
                               "it cannot be a training base. Try another GGUF of this model.")


@dataclass(frozen=True)
class PreparedBase:
    """A base prepared for training, as the Models screen lists it."""

    id: str            # the folder's name: the first 16 hex digits of the GGUF's SHA-256
    gguf: str          # the GGUF's file name (no folders: the list may be shown anywhere)
    bytes: int
    complete: bool     # False: a stopped preparation, continued when the base is used again

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "gguf": self.gguf, "bytes": self.bytes, "complete": self.complete}


def list_prepared(root: Path) -> list[PreparedBase]:
    """The prepared (and half-prepared) bases under ``root`` (``DataLayout.prepared_bases_dir``)."""
    found = []
    for folder in sorted(root.glob("*")) if root.is_dir() else []:
        name = folder.name.removesuffix(".partial")
        if not re.fullmatch(r"[0-9a-f]{16}", name) or folder.is_symlink():
            continue
        marker = folder / (PROGRESS_FILE if folder.name.endswith(".partial") else MARKER_FILE)
        try:
            record = json.loads(marker.read_text())  # progress.json: {"source": …}; the marker is the source itself
            gguf = Path(str(record.get("source", record).get("gguf", ""))).name
        except (OSError, ValueError, AttributeError):
            gguf = ""
        size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
        found.append(PreparedBase(name, gguf, size, not folder.name.endswith(".partial")))
    return found


def remove_prepared(root: Path, identifier: str) -> int:
    """Remove a prepared base (and any stopped preparation of it); the bytes freed. It is prepared
    again, from its GGUF, the next time it is trained on."""
    if not re.fullmatch(r"[0-9a-f]{16}", identifier):
        raise PreparationError(f"{identifier!r} is not a prepared base.")
    freed = 0
    for folder in (root / identifier, root / f"{identifier}.partial"):
        if folder.is_dir() and not folder.is_symlink():
            freed += sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
            shutil.rmtree(folder)
    if not freed:
        from backend.errors import NotFoundError

        raise NotFoundError(f"No prepared base {identifier}.")
    return freed
