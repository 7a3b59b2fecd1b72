"""A training run's configuration: validated, saved beside its checkpoints, so a run describes itself."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from backend.config import DEFAULT_SYSTEM_PROMPT
from backend.errors import NoData, OrchMindError


class TrainingError(OrchMindError):
    code = "training"


class NoTrainingData(NoData, TrainingError):
    pass


class TrainingDoesNotFit(TrainingError):
    """The run would need more memory than this machine has free, even with the smallest micro-batch."""

    code = "does_not_fit"


class QuantizationUnavailable(TrainingError):
    """The base cannot load in the requested 4/8-bit form here; we never train unquantised instead."""

    code = "quantization"


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base: str = Field("smollm2", description="Base model: one of your models, an Ollama model, a .gguf file or a model folder.")
    base_hf_dir: str = Field("", description="Resolved transformers folder of the base (filled in at start).")
    base_sha256: str = Field("", description="SHA-256 of the base weights (filled in at start).")
    base_gguf: str = Field("", description="The GGUF the engine serves for this base, if any (filled in at start).")
    epochs: int | None = Field(None, ge=1, le=100, description="Passes over the training data (None: chosen from the data size).")
    max_steps: int | None = Field(None, ge=1, le=1_000_000, description="Optimizer steps (None: chosen from the data size; written in at start).")
    rank: int = Field(8, ge=1, le=256, description="LoRA rank: capacity of the adapter (8-16 suits small models).")
    alpha: int = Field(16, ge=1, le=1024, description="LoRA scaling; about twice the rank is a good default.")
    dropout: float = Field(0.05, ge=0.0, le=0.5, description="LoRA dropout, against over-fitting small datasets.")
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
                                      description="Which linear layers get adapters ('all-linear' for all).")
    learning_rate: float | None = Field(None, gt=0, le=1e-2, description="Peak learning rate (AdamW; None: chosen from the model and the number of steps).")
    warmup_steps: int | None = Field(None, ge=0, le=10_000, description="Steps of linear warm-up (None: 5% of the steps).")
    batch_size: int = Field(4, ge=1, le=512, description="Samples per micro-batch.")
    grad_accum: int = Field(1, ge=1, le=256, description="Micro-batches per optimizer step.")
    max_tokens: int = Field(512, ge=32, le=32768, description="Longest sample in tokens.")
    seed: int = Field(42, ge=0, le=2**31 - 1)
    eval_every: int | None = Field(None, ge=1, le=100_000, description="Steps between validation-loss measurements (None: about 12 in a run).")
    patience: int = Field(3, ge=0, le=1000, description="Stop after this many validation measurements in a row without a new best (0: never stop early); the best adapter is kept either way.")
    checkpoint_every: int = Field(10, ge=1, le=100_000, description="Steps between checkpoints (resume points).")
    packing: bool = Field(False, description="Put several short samples in one row (attention kept inside each sample).")
    gradient_checkpointing: bool = Field(False, description="Trade compute for memory on long samples.")
    quantization: Literal["auto", "none", "4bit", "8bit"] = Field(
        "auto", description="bitsandbytes QLoRA (4bit) or 8-bit base; auto: 4bit for bases of about 1B parameters and up on a "
                            "CUDA GPU, none elsewhere (written in at start).")
    dtype: Literal["float32", "bfloat16"] = Field("float32", description="Training dtype for the base weights.")
    precision: Literal["auto", "fp32", "bf16-mixed"] = Field(
        "auto", description="Compute precision: bf16 autocast with fp32 weights where the hardware does bf16 natively "
                            "(recent CUDA GPUs, CPUs with AMX), else fp32.")
    bf16_base_weights: bool = Field(True, description="Under bf16 autocast, keep the frozen base weights in bf16 (faster, half the "
                                                      "memory; evaluation still runs in fp32).")
    voice: Literal["assistant", "user"] = Field("assistant", description="Learn the assistant's answers, or write like you.")
    validation_percent: int = Field(10, ge=0, le=50)
    system_prompt: str = Field(DEFAULT_SYSTEM_PROMPT, max_length=4000, description="Rendered into every sample; deploy sets it on the model.")
    sample_prompts: int = Field(3, ge=0, le=10, description="Validation prompts answered by base and fine-tune for comparison.")
    processes: int = Field(1, ge=1, le=64, description="GPUs the run is sharded across with FSDP (chosen at start: more than "
                                                        "one when the base does not fit one GPU).")
    stop_after_steps: int | None = Field(None, ge=1, description="Stop (with a checkpoint) after this step, as a cancel would.")
    adapter_name: str = Field("my-adapter", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

    @model_validator(mode="after")
    def _alpha_reasonable(self) -> TrainConfig:
        if self.alpha > 16 * self.rank:
            raise ValueError("alpha is more than 16x the rank; that scales the update so far it usually diverges")
        return self

