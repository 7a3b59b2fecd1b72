"""How long to train and how hard, chosen from the data: the plan shown before a run is the run.

Epochs alone are the wrong unit for a personal set. 90 conversations at batch 8 for 2 epochs is about
20 optimizer steps, and a LoRA at a cautious learning rate barely moves in 20 steps (issue 16: 0 of 5
held-out replies in the learned voice; 6 epochs at lr 1e-3, batch 4 gave 5 of 5). So the plan
aims at a number of optimizer steps, repeating a small set as often as it takes (up to a limit) and
passing over a large one once, and relies on early stopping against the held-out conversations to
stop before a small set is learned by heart. Anything the user sets explicitly is kept.

Pure functions: the bridge's preview, ``prepare_run`` and the tests all call ``plan_training`` with
the dataset's numbers and get the same plan; ``prepare_run`` writes it into the run's config, so the
trainer executes exactly what was shown and a resume sees the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from backend.training.config import TrainConfig
from backend.training.trainability import estimate_training

TARGET_STEPS = 100      # optimizer steps a small set gets: a LoRA picks up a voice and facts in fewer (bench/personal.py)
MAX_EPOCHS = 12         # never more passes than this over a tiny set (early stopping usually ends sooner)
STEP_CEILING = 3000     # a large set is not repeated; past this many steps one pass is cut short
EVALUATIONS = 12        # validation measurements over a run: the early-stopping resolution
MIN_EVAL_EVERY = 5
PATIENCE = 3            # evaluations in a row without a new best before stopping


def default_learning_rate(parameters: int, steps: int) -> float:
    """Peak LoRA learning rate: 1e-3 for models up to half a billion parameters, lower for larger ones
    (they move further per step), and lower again for long runs, where small steps add up."""
    base = 1e-3 if parameters <= 600_000_000 else 5e-4 if parameters <= 3_000_000_000 else 2e-4
    return base * min(1.0, math.sqrt(600 / max(steps, 1)))


@dataclass(frozen=True)
class TrainingPlan:
    samples: int
    batch_size: int
    grad_accum: int
    steps_per_epoch: int
    steps: int
    epochs: int
    learning_rate: float
    warmup_steps: int
    eval_every: int
    patience: int
    tokens: int              # tokens processed over the whole plan (before any early stop)
    estimated_minutes: float
    memory_bytes: int
    fits_ram: bool
    tokens_per_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_training(config: TrainConfig, train_samples: int, train_tokens: int, model_info: dict[str, Any],
                  measured_tokens_per_s: float | None = None) -> TrainingPlan:
    """The run ``config`` asks for on a training split of ``train_samples`` samples and ``train_tokens``
    tokens; fields left at ``None`` (auto) in the config are chosen here. The time estimate uses
    ``measured_tokens_per_s`` (this machine's last run on this base) when there is one."""
    samples = max(train_samples, 1)
    per_step = config.batch_size * config.grad_accum
    steps_per_epoch = math.ceil(samples / per_step)
    if config.max_steps is not None:
        steps = config.max_steps
    elif config.epochs is not None:
        steps = steps_per_epoch * config.epochs
    else:
        epochs = min(MAX_EPOCHS, max(1, math.ceil(TARGET_STEPS / steps_per_epoch)))
        steps = min(steps_per_epoch * epochs, max(STEP_CEILING, TARGET_STEPS))
    epochs = math.ceil(steps / steps_per_epoch)
    parameters = int(model_info.get("parameters") or 0) or 134_515_008
    learning_rate = config.learning_rate if config.learning_rate is not None else default_learning_rate(parameters, steps)
    warmup = config.warmup_steps if config.warmup_steps is not None else min(20, max(1, steps // 20))
    eval_every = config.eval_every if config.eval_every is not None else max(MIN_EVAL_EVERY, steps // EVALUATIONS)
    tokens = round(train_tokens / samples * min(steps * per_step, samples * epochs))
    estimate = estimate_training(model_info, tokens, 1, config.batch_size, config.max_tokens, measured_tokens_per_s)
    return TrainingPlan(samples=train_samples, batch_size=config.batch_size, grad_accum=config.grad_accum,
                        steps_per_epoch=steps_per_epoch, steps=steps, epochs=epochs, learning_rate=learning_rate,
                        warmup_steps=warmup, eval_every=eval_every, patience=config.patience, tokens=tokens,
                        estimated_minutes=estimate.minutes, memory_bytes=estimate.memory_bytes, fits_ram=estimate.fits_ram,
                        tokens_per_s=estimate.tokens_per_s)


def resolved(config: TrainConfig, plan: TrainingPlan) -> TrainConfig:
    """The config with every automatic choice written in, as the trainer runs it."""
    return config.model_copy(update={"max_steps": plan.steps, "epochs": plan.epochs, "learning_rate": plan.learning_rate,
                                     "warmup_steps": plan.warmup_steps, "eval_every": plan.eval_every})
