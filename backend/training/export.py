"""Export a trained adapter: PEFT safetensors + manifest into the adapter store, and a GGUF LoRA.

The GGUF conversion is llama.cpp's own ``convert_lora_to_gguf.py``, taken from the llama-cpp-python
sdist at install time (make does it); it needs the base's transformers folder, which training
prepared. A merged model (the LoRA folded into the base GGUF tensor by tensor, ``merged_gguf``) is
there for engines that take no adapters.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backend.config import DataLayout
from backend.errors import OrchMindError
from backend.runtime import llama_tool_command
from backend.training.adapters import AdapterManifest, AdapterStore
from backend.training.merged_gguf import MergeReport, merge_adapter_into_gguf
from backend.training.run_folder import RunFolder


class ExportError(OrchMindError):
    code = "export_failed"


def llama_tools_dir() -> Path:
    candidates = [os.environ.get("ORCH_MIND_LLAMA_CPP", ""), str(Path(sys.prefix) / "share" / "orch-mind" / "llama.cpp"),
                  str(Path(getattr(sys, "_MEIPASS", "/nonexistent")) / "llama.cpp")]
    for candidate in candidates:
        if candidate and (Path(candidate) / "convert_lora_to_gguf.py").exists():
            return Path(candidate)
    raise ExportError("llama.cpp's converter is missing; run `make` (it unpacks convert_lora_to_gguf.py into the venv).")


def adapter_to_gguf(adapter_dir: Path, base_hf_dir: Path, output: Path) -> Path:
    tools = llama_tools_dir()
    command = llama_tool_command(tools, "convert_lora_to_gguf.py", ["--base", str(base_hf_dir), "--outtype", "f16",
                                                                   "--outfile", str(output), str(adapter_dir)])
    env = {**os.environ, "PYTHONPATH": str(tools / "gguf-py")}
    completed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    if completed.returncode != 0 or not output.exists():
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-5:]
        raise ExportError("Converting the adapter to GGUF failed: " + " | ".join(tail))
    return output


def export_run(layout: DataLayout, job_dir: Path, name: str, description: str = "") -> AdapterManifest:
    """Turn a finished training run into a stored adapter (safetensors + GGUF + manifest)."""
    run = RunFolder(job_dir)
    adapter_dir = run.adapter_dir
    if not (adapter_dir / "adapter_model.safetensors").exists():
        raise ExportError(f"{job_dir.name} has no finished adapter; train (or resume) it to the end first.")
    config = run.config()
    gguf = adapter_to_gguf(adapter_dir, Path(config.base_hf_dir), run.gguf_path)
    evaluation: dict[str, Any] = run.evaluation() or {}
    peft_config = json.loads((adapter_dir / "adapter_config.json").read_text())
    return AdapterStore(layout).save(name, adapter_dir, gguf, {
        "base": {"reference": config.base, "sha256": config.base_sha256, "gguf": Path(config.base_gguf).name},
        "rank": int(peft_config["r"]), "alpha": int(peft_config["lora_alpha"]),
        "target_modules": sorted(peft_config["target_modules"]) if isinstance(peft_config["target_modules"], list) else [peft_config["target_modules"]],
        "description": description,
        "dataset": run.dataset_stats(),
        "metrics": {k: evaluation[k] for k in ("base_eval_loss", "eval_loss", "base_perplexity", "perplexity")},
        "provenance": {"kind": "trained", "voice": config.voice, "epochs": config.epochs, "system_prompt": config.system_prompt},
    })


def merge_to_gguf(layout: DataLayout, adapter: str, output: Path,
                  on_progress: Callable[[int, int], None] | None = None) -> MergeReport:
    """One standalone GGUF model: the adapter folded into its base, tensor by tensor, in the base's own
    quantization (``merged_gguf``). A base that is a model folder, not a GGUF, is merged by peft in
    full precision and written as f16."""
    from backend.training.base_models import file_sha256

    if output.exists():
        raise ExportError(f"{output} exists already; choose another folder or remove it first.")
    store = AdapterStore(layout)
    manifest = store.get(adapter)
    gguf = base_gguf(layout, manifest)
    if gguf is None:
        return _merge_folder_base(layout, adapter, output)
    if file_sha256(gguf) != manifest.base["sha256"]:
        raise ExportError(f"{adapter} was trained on a different base than {manifest.base['reference']} is now.")
    return merge_adapter_into_gguf(gguf, store.path(adapter) / "adapter.gguf", output, on_progress=on_progress)


def base_gguf(layout: DataLayout, manifest: AdapterManifest) -> Path | None:
    """The GGUF an adapter's base names (one of ours, Ollama's, or a file), or None for a folder base."""
    from backend.training.base_models import named_gguf

    gguf = named_gguf(manifest.base["reference"], layout)
    if gguf is None:
        reference = Path(manifest.base["reference"]).expanduser()
        gguf = reference if reference.is_file() and reference.suffix == ".gguf" else None
    return gguf


def _merge_folder_base(layout: DataLayout, adapter: str, output: Path) -> MergeReport:
    from peft import PeftModel

    from backend.training.base_models import load_model_and_tokenizer, resolve_base

    manifest = AdapterStore(layout).get(adapter)
    base = resolve_base(manifest.base["reference"], layout)
    if base.sha256 != manifest.base["sha256"]:
        raise ExportError(f"{adapter} was trained on a different base than {manifest.base['reference']} is now.")
    model, tokenizer = load_model_and_tokenizer(base)
    merged = PeftModel.from_pretrained(model, AdapterStore(layout).path(adapter)).merge_and_unload()
    tools = llama_tools_dir()
    partial = output.with_name(f".{output.name}.partial")
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=".merged-") as folder:  # the full-precision model
        merged.save_pretrained(folder, safe_serialization=True)
        tokenizer.save_pretrained(folder)
        completed = subprocess.run(llama_tool_command(tools, "convert_hf_to_gguf.py", [folder, "--outtype", "f16",
                                                                                       "--outfile", str(partial)]),
                                   capture_output=True, text=True,
                                   env={**os.environ, "PYTHONPATH": str(tools / "gguf-py")}, timeout=3600)
    if completed.returncode != 0 or not partial.exists():
        partial.unlink(missing_ok=True)
        raise ExportError("Converting the merged model to GGUF failed: " + completed.stderr.strip()[-400:])
    partial.replace(output)
    return MergeReport(merged=-1, bytes=output.stat().st_size)
