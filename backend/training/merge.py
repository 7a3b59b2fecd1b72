"""Merge adapters trained on the same base into one (federated learning, by hand).

peft's ``add_weighted_adapter`` with ``cat``, ``svd``, ``ties`` or ``dare_ties`` combines the low-rank
*updates* (B·A): ``cat`` exactly (the merged update is the weighted sum), the others through an SVD
of that sum. The original app averaged the A and B matrices separately, which is not the average of
the updates (mean(B)·mean(A) != mean(B·A)); peft's ``linear`` does the same and is offered only as a
cheap option for adapters of equal rank.
The merged adapter records its provenance (sources with their hashes, weights, method) and how it
and each input score on the user's own validation data.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Literal

from backend.config import DataLayout
from backend.errors import Incompatible, OrchMindError, ValidationError
from backend.training.adapters import AdapterManifest, AdapterStore, validate_adapter_name

MergeMethod = Literal["linear", "svd", "cat", "ties", "dare_ties"]
METHODS = ("linear", "svd", "cat", "ties", "dare_ties")
DEFAULT_METHOD: MergeMethod = "ties"  # for the CLI, the bridge and the UI


class MergeError(OrchMindError):
    code = "merge_failed"


class BadMergeRequest(ValidationError, MergeError):
    pass


class IncompatibleAdapters(Incompatible, MergeError):
    pass


def check_compatible(manifests: list[AdapterManifest], method: str, weights: list[float]) -> None:
    if len(manifests) < 2:
        raise BadMergeRequest("Choose at least two adapters to merge.")
    if method not in METHODS:
        raise BadMergeRequest(f"Unknown merge method {method!r}; use one of {', '.join(METHODS)}.")
    if len(weights) != len(manifests) or any(w <= 0 for w in weights):
        raise BadMergeRequest("Give one positive weight per adapter.")
    bases = {m.base["sha256"] for m in manifests}
    if len(bases) != 1:
        raise IncompatibleAdapters("These adapters were trained on different base models and cannot be merged: "
                                   + ", ".join(f"{m.name} ({m.base['reference']})" for m in manifests))
    if method == "linear" and len({m.rank for m in manifests}) != 1:
        raise IncompatibleAdapters("The linear method needs adapters of the same rank; use svd, cat or ties.")


def merge_adapters(layout: DataLayout, names: list[str], output: str, *, method: MergeMethod = DEFAULT_METHOD,
                   weights: list[float] | None = None, density: float = 0.5,
                   validation: list[dict[str, Any]] | None = None) -> AdapterManifest:
    """Merge ``names`` into a new stored adapter ``output`` (safetensors + GGUF + manifest)."""
    from peft import PeftModel

    from backend.training.base_models import load_model_and_tokenizer, resolve_base
    from backend.training.export import adapter_to_gguf
    from backend.training.trainer import evaluate

    store = AdapterStore(layout)
    validate_adapter_name(output)
    manifests = [store.get(validate_adapter_name(name)) for name in names]
    weights = weights or [1.0 / len(names)] * len(names)
    check_compatible(manifests, method, weights)
    base = resolve_base(manifests[0].base["reference"], layout)
    if base.sha256 != manifests[0].base["sha256"]:
        raise IncompatibleAdapters(
            f"The base {manifests[0].base['reference']!r} here is not the one these adapters were trained on.")
    model, tokenizer = load_model_and_tokenizer(base)
    slots = [f"input{i}" for i in range(len(names))]
    peft_model = PeftModel.from_pretrained(model, store.path(names[0]), adapter_name=slots[0])
    for slot, name in zip(slots[1:], names[1:]):
        peft_model.load_adapter(store.path(name), adapter_name=slot)
    options: dict[str, Any] = {"density": density} if method in ("ties", "dare_ties") else {}
    if method == "ties":
        options["majority_sign_method"] = "total"
    try:
        peft_model.add_weighted_adapter(adapters=slots, weights=weights, adapter_name="merged", combination_type=method, **options)
    except ValueError as exc:
        raise MergeError(f"peft refused the merge: {exc}") from exc

    scores: dict[str, float | None] = {}
    if validation:
        import torch

        for slot, name in zip([*slots, "merged"], [*names, output]):
            peft_model.set_adapter(slot)
            scores[name] = evaluate(peft_model, validation, tokenizer.pad_token_id, torch.device("cpu"), 8)
    peft_model.set_adapter("merged")
    with tempfile.TemporaryDirectory(dir=layout.adapters_dir) as work:
        peft_model.save_pretrained(work, selected_adapters=["merged"], safe_serialization=True)
        saved = Path(work) / "merged"
        gguf = adapter_to_gguf(saved, base.hf_dir, Path(work) / "adapter.gguf")
        config = json.loads((saved / "adapter_config.json").read_text())
        manifest = store.save(output, saved, gguf, {
            "base": manifests[0].base, "rank": int(config["r"]), "alpha": int(config["lora_alpha"]),
            "target_modules": sorted(config["target_modules"]) if isinstance(config["target_modules"], list) else [config["target_modules"]],
            "description": f"{method} merge of " + ", ".join(names),
            "metrics": {"eval_loss": scores.get(output), "inputs_eval_loss": {n: scores.get(n) for n in names}} if scores else {},
            "provenance": {"kind": "merged", "method": method, "weights": weights, "density": options.get("density"),
                           "sources": [{"name": m.name, "adapter_sha256": m.files["adapter_model.safetensors"]["sha256"],
                                        "provenance": m.provenance} for m in manifests],
                           "system_prompt": manifests[0].provenance.get("system_prompt")},
        })
    return manifest


def merge_scored_on_memory(layout: DataLayout, names: list[str], output: str, *, method: MergeMethod = DEFAULT_METHOD,
                           weights: list[float] | None = None, density: float = 0.5) -> AdapterManifest:
    """Merge, scoring the inputs and the result on the validation split of the user's own memory."""
    from backend.config import load_settings
    from backend.memory.store import get_store
    from backend.training.dataset import DatasetOptions
    from backend.training.runs import validation_samples
    from backend.training.sources import conversations_from_memory

    first = AdapterStore(layout).get(names[0])
    validation = validation_samples(layout, first.base["reference"], conversations_from_memory(get_store(layout)),
                                    DatasetOptions(system_prompt=load_settings(layout).system_prompt))
    return merge_adapters(layout, names, output, method=method, weights=weights, density=density, validation=validation)
