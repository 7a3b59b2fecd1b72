"""Synthetic adapters: random, finite LoRA weights of exactly the shapes a base model expects.

For benchmarks and load tests of the network (a 100 MB adapter in a second, no training run). They
pass every verification a trained adapter passes, and carry ``provenance.synthetic`` so nobody
mistakes one for a trained model.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from backend.config import DataLayout
from backend.p2p.verify import base_shapes
from backend.training.adapters import AdapterManifest, AdapterStore
from backend.training.base_models import BaseModel

ALL_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def synthetic_adapter(layout: DataLayout, name: str, base: BaseModel, rank: int = 8,
                      modules: tuple[str, ...] = ALL_MODULES, seed: int = 0) -> AdapterManifest:
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    tensors = {}
    for module, shape in base_shapes(base.hf_dir).items():
        if module.rsplit(".", 1)[-1] in modules and module.startswith("model.layers."):
            out_features, in_features = shape[:2]
            prefix = f"base_model.model.{module}"
            tensors[f"{prefix}.lora_A.weight"] = (rng.standard_normal((rank, in_features)) * 0.01).astype(np.float32)
            tensors[f"{prefix}.lora_B.weight"] = (rng.standard_normal((out_features, rank)) * 0.01).astype(np.float32)
    with tempfile.TemporaryDirectory(dir=layout.root) as scratch:
        folder = Path(scratch)
        save_file(tensors, str(folder / "adapter_model.safetensors"))
        (folder / "adapter_config.json").write_text(json.dumps(
            {"peft_type": "LORA", "r": rank, "lora_alpha": 2 * rank, "target_modules": list(modules),
             "base_model_name_or_path": base.reference, "task_type": "CAUSAL_LM"}))
        return AdapterStore(layout).save(name, folder, None, {
            "base": base.identity(), "rank": rank, "alpha": 2 * rank, "target_modules": list(modules),
            "description": "synthetic adapter (random weights) for network tests", "provenance": {"synthetic": True}})
