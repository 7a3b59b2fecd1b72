"""Deploy an adapter to the inference engine as a named model: base + ADAPTER, through the Ollama API.

A deploy either produces a model whose output differs from the base's on a fixed-seed smoke prompt,
or fails with the reason: it never leaves a model that silently answers like the base.
"""

from __future__ import annotations

from typing import Any

import ollama

from backend.config import DataLayout
from backend.errors import CancelledError, OrchMindError
from backend.inference.model_store import validate_name
from backend.jobs import Steps
from backend.training.adapters import AdapterStore

SMOKE_PROMPT = "Tell me something about yourself."
SMOKE_OPTIONS = {"temperature": 0, "seed": 0, "num_predict": 32}


class DeployError(OrchMindError):
    code = "deploy_failed"


def deploy_adapter(client: ollama.Client, layout: DataLayout, adapter: str, model_name: str,
                   base_model: str | None = None, smoke_prompt: str = SMOKE_PROMPT, steps: Steps | None = None) -> dict[str, Any]:
    """Create ``model_name`` (base + adapter) in the engine and check that it answers unlike the base.
    Cancelled (``steps``) after the model was created, it is removed again: nothing half-deployed stays."""
    steps = steps or Steps()
    validate_name(model_name)
    store = AdapterStore(layout)
    manifest = store.get(adapter)
    gguf = store.path(adapter) / "adapter.gguf"
    if not gguf.exists():
        raise DeployError(f"{adapter} has no GGUF adapter file; export it again.")
    base = base_model or manifest.base["reference"]
    steps("uploading the adapter", 0, 4)
    try:
        digest = client.create_blob(gguf)
        steps("creating the model", 1, 4)
        client.create(model=model_name, from_=base, adapters={"adapter.gguf": digest}, stream=False,
                      system=manifest.provenance.get("system_prompt") or None)
    except ollama.ResponseError as exc:
        raise DeployError(f"The engine refused the model: {exc.error}") from exc
    try:
        steps("asking the base model", 2, 4)
        reference = client.generate(model=base, prompt=smoke_prompt, options=SMOKE_OPTIONS).response
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
        raise DeployError("The deployed model answers exactly like the base model, so the adapter is not active; "
                          "the model was removed. Check that the adapter matches this base.")
    return {"model": model_name, "base": base, "smoke": {"prompt": smoke_prompt, "base": reference, "adapted": adapted}}
