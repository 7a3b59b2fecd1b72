"""Deploy an adapter to the inference engine as a named model, through the Ollama API.

Two routes. **Adapter**: the base model plus the GGUF LoRA (``ADAPTER``), small and quick; the
embedded engine and Ollama before v0.34.1 take it. **Merged**: the adapter folded into its base GGUF
tensor by tensor (``merged_gguf``), uploaded as a model of its own, for an engine that refuses
adapters at ``/api/create`` (current Ollama is reported to) or accepts one and then answers as if it
were not there. The merged model's size is said before it is built, and the result says which
route was taken.

A deploy either produces a model whose output differs from the base's on a fixed-seed smoke prompt,
or fails with the reason: it never leaves a model that silently answers like the base.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import ollama

from backend.config import DataLayout
from backend.errors import CancelledError, OrchMindError
from backend.inference.model_store import validate_name
from backend.jobs import Steps
from backend.training.adapters import AdapterManifest, AdapterStore

SMOKE_PROMPT = "Tell me something about yourself."
SMOKE_OPTIONS = {"temperature": 0, "seed": 0, "num_predict": 32}
# How an engine says it takes no adapters: an error that names them, or "not implemented".
REFUSAL_STATUSES = {400, 405, 422, 501}


class DeployError(OrchMindError):
    code = "deploy_failed"


class AdapterIgnored(DeployError):
    """The engine created the model but it answers exactly like its base."""


def refuses_adapters(error: ollama.ResponseError) -> bool:
    return error.status_code == 501 or (error.status_code in REFUSAL_STATUSES and "adapter" in str(error.error).lower())


def deploy_adapter(client: ollama.Client, layout: DataLayout, adapter: str, model_name: str,
                   base_model: str | None = None, smoke_prompt: str = SMOKE_PROMPT, steps: Steps | None = None,
                   route: str = "auto") -> dict[str, Any]:
    """Create ``model_name`` in the engine and check that it answers unlike the base. ``route``:
    ``auto`` (the adapter, else merged), ``adapter`` or ``merged``. Cancelled (``steps``) after the
    model was created, it is removed again: nothing half-deployed stays."""
    if route not in ("auto", "adapter", "merged"):
        raise DeployError(f"Unknown deploy route {route!r}; use auto, adapter or merged.")
    steps = steps or Steps()
    validate_name(model_name)
    store = AdapterStore(layout)
    manifest = store.get(adapter)
    gguf = store.path(adapter) / "adapter.gguf"
    if not gguf.exists():
        raise DeployError(f"{adapter} has no GGUF adapter file; export it again.")
    base = base_model or manifest.base["reference"]
    system = manifest.provenance.get("system_prompt") or None
    refusal = None
    if route in ("auto", "adapter"):
        steps("uploading the adapter", 0, 4)
        try:
            digest = client.create_blob(gguf)
            steps("creating the model", 1, 4)
            client.create(model=model_name, from_=base, adapters={"adapter.gguf": digest}, stream=False, system=system)
            return {**_checked(client, model_name, base, system, smoke_prompt, steps), "route": "adapter"}
        except ollama.ResponseError as exc:
            if route == "adapter" or not refuses_adapters(exc):
                raise DeployError(f"The engine refused the model: {exc.error}") from exc
            refusal = f"the engine refused the adapter ({exc.error})"
        except AdapterIgnored as exc:
            if route == "adapter":
                raise
            refusal = f"the engine ignored the adapter ({exc.message})"
    result = _deploy_merged(client, layout, adapter, manifest, model_name, base, system, smoke_prompt, steps)
    return {**result, "route": "merged", "why_merged": refusal}


def _deploy_merged(client: ollama.Client, layout: DataLayout, adapter: str, manifest: AdapterManifest, model_name: str,
                   base: str, system: str | None, smoke_prompt: str, steps: Steps) -> dict[str, Any]:
    from backend.training.export import base_gguf, merge_to_gguf

    base_file = base_gguf(layout, manifest)
    size = base_file.stat().st_size if base_file else 0
    steps(f"building a merged model: {size / 1e9:.1f} GB", 0, 4)  # its size, said before the work
    with tempfile.TemporaryDirectory(dir=layout.models_dir if layout.models_dir.exists() else None,
                                     prefix=".deploy-") as folder:
        merged = Path(folder) / "model.gguf"
        report = merge_to_gguf(layout, adapter, merged, lambda done, total: steps("merging the adapter into its base", done, total))
        steps("uploading the merged model", 1, 4)
        try:
            digest = client.create_blob(merged)
            steps("creating the model", 1, 4)
            client.create(model=model_name, files={"model.gguf": digest}, stream=False, system=system)
        except ollama.ResponseError as exc:
            raise DeployError(f"The engine refused the merged model: {exc.error}") from exc
    result = _checked(client, model_name, base, system, smoke_prompt, steps)
    return {**result, "merged": report.to_dict()}


def _checked(client: ollama.Client, model_name: str, base: str, system: str | None, smoke_prompt: str,
             steps: Steps) -> dict[str, Any]:
    """Ask the base (with the system prompt the new model carries, so that alone cannot make the
    answers differ) and the new model the smoke prompt; a model that answers like its base is removed."""
    try:
        steps("asking the base model", 2, 4)
        reference = client.generate(model=base, prompt=smoke_prompt, system=system, options=SMOKE_OPTIONS).response
        steps("asking the new model", 3, 4)
        adapted = client.generate(model=model_name, prompt=smoke_prompt, options=SMOKE_OPTIONS).response
        steps("checking its answer", 4, 4)
    except ollama.ResponseError as exc:
        client.delete(model_name)
        raise DeployError(f"The deployed model does not answer: {exc.error}") from exc
    except CancelledError:
        client.delete(model_name)
        raise
    if adapted == reference:
        client.delete(model_name)
        raise AdapterIgnored("The deployed model answers exactly like the base model, so the adapter is not active; "
                             "the model was removed. Check that the adapter matches this base.")
    return {"model": model_name, "base": base, "smoke": {"prompt": smoke_prompt, "base": reference, "adapted": adapted}}
