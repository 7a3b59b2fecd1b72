"""How long to train and how hard, chosen from the data: the plan shown before a run is the run.

Epochs alone are the wrong unit for a personal set. 90 conversations at batch 8 for 2 epochs is about
20 optimizer steps, and a LoRA at a cautious learning rate barely moves in 20 steps (issue 16: 0 of 5
held-out replies in the learned voice; 6 epochs at lr 1e-3, batch 4 gave 5 of 5). So the plan
aims at a number of optimizer steps, repeating a small set as often as it takes (up to a limit) and
passing over a large one once, and relies on early stopping against the held-out conversations to
stop before a small set is learned by heart. Anything the user sets explicitly is kept.

Given the same machine (its GPU and free memory, or those passed in), the bridge's preview,
``prepare_run`` and the tests all call ``plan_training`` with the dataset's numbers and get the same
plan; ``prepare_run`` writes it into the run's config, so the
trainer executes exactly what was shown and a resume sees the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from backend.training.config import TrainConfig
from backend.training.trainability import ModelShape, TrainingEstimate, estimate_training

TARGET_STEPS = 100      # optimizer steps a small set gets: a LoRA picks up a voice and facts in fewer (bench/personal.py)
MAX_EPOCHS = 12         # never more passes than this over a tiny set (early stopping usually ends sooner)
STEP_CEILING = 3000     # a large set is not repeated; past this many steps one pass is cut short
EVALUATIONS = 12        # validation measurements over a run: the early-stopping resolution
MIN_EVAL_EVERY = 5
PATIENCE = 3            # evaluations in a row without a new best before stopping
QLORA_MIN_PARAMETERS = 900_000_000  # on a CUDA GPU, bases from about 1B parameters train in 4 bits by default


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
    memory_bytes: int        # the memory that decides whether it fits: VRAM on a GPU, RAM elsewhere
    fits_ram: bool           # fits this machine's free memory
    tokens_per_s: float
    path: str = "cpu-fp32"   # what will run (see trainability.TrainingEstimate.path)
    processes: int = 1       # GPUs the base is sharded across (FSDP through accelerate launch)
    quantization: str = "none"
    gradient_checkpointing: bool = False
    ram_bytes: int = 0
    vram_bytes: int | None = None
    disk_bytes: int = 0      # checkpoints and the adapter this run writes
    advice: str | None = None  # when it does not fit: what would

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_training(config: TrainConfig, train_samples: int, train_tokens: int, model_info: dict[str, Any],
                  measured_tokens_per_s: float | None = None, *, longest: int | None = None, validation_tokens: int = 0,
                  device: str | None = None, free_ram: int | None = None, free_vram: int | None = None,
                  gpus: int | None = None) -> TrainingPlan:
    """The run ``config`` asks for on a training split of ``train_samples`` samples and ``train_tokens``
    tokens (``longest``: the longest sample); fields left at ``None``/``auto`` in the config are chosen
    here. The path (GPU QLoRA, CPU) and the micro-batch are chosen from this machine's free memory:
    gradient checkpointing and then smaller micro-batches (more of them per step, the same optimizer
    step) until the estimate fits; with several GPUs, a base that fits none of them alone is sharded
    across all of them (FSDP, bf16); ``advice`` says what would when even that does not. ``device``,
    ``free_ram``, ``free_vram`` (per GPU), ``gpus``: plan for another machine (tests, "what would a GPU need")."""
    import torch

    from backend.training.precision import resolve_precision

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    samples = max(train_samples, 1)
    parameters = int(model_info.get("parameters") or 0) or 134_515_008
    quantization = config.quantization if config.quantization != "auto" else \
        ("4bit" if device == "cuda" and parameters >= QLORA_MIN_PARAMETERS else "none")
    checkpointing = config.gradient_checkpointing or quantization == "4bit" and device == "cuda"
    batch, accumulate = config.batch_size, config.grad_accum
    per_step = batch * accumulate
    steps_per_epoch = math.ceil(samples / per_step)
    if config.max_steps is not None:
        steps = config.max_steps
    elif config.epochs is not None:
        steps = steps_per_epoch * config.epochs
    else:
        epochs = min(MAX_EPOCHS, max(1, math.ceil(TARGET_STEPS / steps_per_epoch)))
        steps = min(steps_per_epoch * epochs, max(STEP_CEILING, TARGET_STEPS))
    epochs = math.ceil(steps / steps_per_epoch)
    learning_rate = config.learning_rate if config.learning_rate is not None else default_learning_rate(parameters, steps)
    warmup = config.warmup_steps if config.warmup_steps is not None else min(20, max(1, steps // 20))
    eval_every = config.eval_every if config.eval_every is not None else max(MIN_EVAL_EVERY, steps // EVALUATIONS)
    tokens = round(train_tokens / samples * min(steps * per_step, samples * epochs))
    this_machine = "cuda" if torch.cuda.is_available() else "cpu"
    precision = resolve_precision(config.precision, quantization) if device == this_machine else \
        ("bf16-mixed" if device == "cuda" and quantization == "none" else "fp32")  # planning for another machine

    gpus = (torch.cuda.device_count() if device == this_machine == "cuda" else 1) if gpus is None else gpus
    shards = 1

    def estimate(micro: int, checkpoint: bool) -> TrainingEstimate:
        return estimate_training(model_info, tokens, 1, micro, config.max_tokens, measured_tokens_per_s, longest=longest,
                                 quantization=quantization, gradient_checkpointing=checkpoint, device=device, precision=precision,
                                 validation_tokens=validation_tokens, evaluations=2 + steps // eval_every, rank=config.rank,
                                 free_ram=free_ram, free_vram=free_vram, shards=shards)

    def fit(batch: int, accumulate: int, checkpointing: bool) -> tuple[TrainingEstimate, int, int, bool]:
        chosen = estimate(batch, checkpointing)
        if not chosen.fits and not checkpointing:
            checkpointing = True
            chosen = estimate(batch, checkpointing)
        while not chosen.fits and batch > 1 and batch % 2 == 0:
            batch, accumulate = batch // 2, accumulate * 2
            chosen = estimate(batch, checkpointing)
        return chosen, batch, accumulate, checkpointing

    chosen, batch, accumulate, checkpointing = fit(batch, accumulate, checkpointing)
    if not chosen.fits and device == "cuda" and gpus > 1 and config.quantization in ("auto", "none"):
        # Too big for one GPU: shard the bf16 base across all of them (4-bit bases are not sharded).
        single = quantization, precision
        shards, quantization, precision = gpus, "none", "bf16-mixed"
        sharded = fit(config.batch_size, config.grad_accum, config.gradient_checkpointing)
        if sharded[0].fits:
            chosen, batch, accumulate, checkpointing = sharded
        else:
            shards, (quantization, precision) = 1, single
    shape = ModelShape.from_info(model_info)
    lora_bytes = config.rank * 2 * shape.hidden * shape.layers * 4 * 4  # q,k,v,o: A and B in fp32
    checkpoints = math.ceil(steps / config.checkpoint_every)
    return TrainingPlan(samples=train_samples, batch_size=batch, grad_accum=accumulate,
                        steps_per_epoch=steps_per_epoch, steps=steps, epochs=epochs, learning_rate=learning_rate,
                        warmup_steps=warmup, eval_every=eval_every, patience=config.patience, tokens=tokens,
                        estimated_minutes=chosen.minutes, memory_bytes=chosen.memory_bytes, fits_ram=chosen.fits,
                        tokens_per_s=chosen.tokens_per_s, path=chosen.path, processes=shards, quantization=quantization,
                        gradient_checkpointing=checkpointing, ram_bytes=chosen.ram_bytes, vram_bytes=chosen.vram_bytes,
                        # a checkpoint holds the adapter and Adam's moments; at most a few are kept, the best adapter beside them
                        disk_bytes=lora_bytes * 3 * min(checkpoints, 3) + lora_bytes * 3,
                        advice=None if chosen.fits else _advice(chosen, parameters, device, quantization, free_ram, free_vram))


def _advice(estimate: TrainingEstimate, parameters: int, device: str, quantization: str,
            free_ram: int | None, free_vram: int | None) -> str:
    import psutil

    from backend.training.trainability import free_vram_bytes

    if device == "cuda":
        free, where = (free_vram_bytes() if free_vram is None else free_vram), "GPU memory"
    else:
        free, where = (psutil.virtual_memory().available if free_ram is None else free_ram), "memory"
    smaller = max(0.1, parameters * free / max(estimate.memory_bytes, 1) / 1e9)
    options = [f"a base of at most about {smaller:.1f}B parameters"]
    if quantization == "none":
        options.append("4-bit training (--quantization 4bit)")
    if device == "cpu":
        options.append("a machine with a CUDA GPU")
    options.append("shorter samples (--max-tokens)")
    return (f"This run needs about {estimate.memory_bytes / 1e9:.1f} GB of {where} and {free / 1e9:.1f} GB is free. "
            f"It would fit with {', or '.join(options)}; or close other programs.")


def resolved(config: TrainConfig, plan: TrainingPlan) -> TrainConfig:
    """The config with every automatic choice written in, as the trainer runs it."""
    return config.model_copy(update={"max_steps": plan.steps, "epochs": plan.epochs, "learning_rate": plan.learning_rate,
                                     "warmup_steps": plan.warmup_steps, "eval_every": plan.eval_every,
                                     "quantization": plan.quantization, "gradient_checkpointing": plan.gradient_checkpointing,
                                     "batch_size": plan.batch_size, "grad_accum": plan.grad_accum, "processes": plan.processes})
