"""One training run's folder (``jobs/train-<id>``): the only place that names its files.

A run describes itself (config, plan, data statistics, prompts, samples) before training starts,
and the trainer adds checkpoints, the best adapter, the final adapter, its evaluation and history;
the CLI, the bridge, export and resume read them through this type instead of joining names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.training.config import TrainConfig


@dataclass(frozen=True)
class RunFolder:
    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    # files written when the run is prepared
    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def plan_path(self) -> Path:
        return self.path / "plan.json"

    @property
    def dataset_path(self) -> Path:
        return self.path / "dataset.json"

    @property
    def prompts_path(self) -> Path:
        return self.path / "prompts.json"

    def samples_path(self, split: str) -> Path:
        """``train`` or ``validation`` samples, one JSON object a line."""
        return self.path / f"{split}.jsonl"

    # written by the trainer
    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    def best_adapter_path(self, step: int) -> Path:
        return self.path / "best" / f"adapter-{step:06d}.safetensors"

    @property
    def adapter_dir(self) -> Path:
        return self.path / "adapter"

    @property
    def evaluation_path(self) -> Path:
        return self.path / "evaluation.json"

    @property
    def history_path(self) -> Path:
        return self.path / "history.json"

    @property
    def gguf_path(self) -> Path:
        return self.path / "adapter.gguf"

    # reading
    def is_run(self) -> bool:
        return self.config_path.exists()

    def config(self) -> TrainConfig:
        return TrainConfig.model_validate_json(self.config_path.read_text())

    def label(self) -> dict[str, Any]:
        """What a list of runs shows (adapter name, base), read leniently: runs from older versions may
        lack fields a current ``TrainConfig`` requires, and must still be listed."""
        stored = json.loads(self.config_path.read_text())
        return {"adapter_name": stored.get("adapter_name"), "base": stored.get("base")}

    def plan(self) -> dict[str, Any]:
        return json.loads(self.plan_path.read_text())

    def dataset_stats(self) -> dict[str, Any]:
        return json.loads(self.dataset_path.read_text())

    def prompts(self) -> list[str]:
        return json.loads(self.prompts_path.read_text()) if self.prompts_path.exists() else []

    def evaluation(self) -> dict[str, Any] | None:
        return json.loads(self.evaluation_path.read_text()) if self.evaluation_path.exists() else None

    def history(self) -> dict[str, Any] | None:
        return json.loads(self.history_path.read_text()) if self.history_path.exists() else None

    def finished(self) -> bool:
        return (self.adapter_dir / "adapter_model.safetensors").exists()
