"""Start, resume and follow training runs: each run is a folder in the data dir's ``jobs/``.

The dataset is built here, in the app (which owns the memory database), and written to the run
folder as token ids; the trainer subprocess reads only that folder, so a crash or cancel in the
trainer can never touch the app or the database, and a resume sees exactly the same data.
"""

from __future__ import annotations

import json
import math
import os
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from backend.config import DataLayout
from backend.errors import NotFoundError
from backend.jobs import JobContext, Steps, run_json_lines_subprocess
from backend.training.base_models import BaseModel, resolve_base
from backend.training.checkpoints import latest_checkpoint
from backend.training.config import NoTrainingData, TrainConfig, TrainingDoesNotFit, TrainingError
from backend.training.dataset import Dataset, DatasetOptions, SourceConversation, build_dataset
from backend.training.plan import TrainingPlan, plan_training, resolved
from backend.training.run_folder import RunFolder


def trainer_command(job_dir: Path, resume: bool) -> list[str]:
    """The trainer runs as ``python -m backend.training.trainer``; in the bundled app the executable
    itself takes the ``trainer`` subcommand (sys.frozen)."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "trainer", str(job_dir)] + (["--resume"] if resume else [])
    return [sys.executable, "-m", "backend.training.trainer", str(job_dir)] + (["--resume"] if resume else [])


def distributed_command(job_dir: Path, *, resume: bool, processes: int, strategy: str = "fsdp", cpu: bool = False,
                        port: int | None = None) -> list[str]:
    """The same trainer across ``processes`` devices through ``accelerate launch``: ``fsdp`` shards the
    base, the LoRA weights and the optimizer state across them (FSDP2, whole decoder layers as units,
    full state dicts gathered for checkpoints and the adapter), so a base too large for one GPU trains on
    several; ``ddp`` keeps a whole copy on each. ``cpu``: CPU processes over gloo (how it is tested)."""
    from backend.loopback_server import free_port

    command = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(processes),
               "--num_machines", "1", "--main_process_ip", "127.0.0.1", "--main_process_port", str(port or free_port()),
               "--mixed_precision", "no"]
    if strategy == "ddp":
        command.append("--cpu" if cpu else "--multi_gpu")
    if strategy == "fsdp":
        command += ["--use_fsdp", "--fsdp_version", "2", "--fsdp_auto_wrap_policy", "TRANSFORMER_BASED_WRAP",
                    "--fsdp_state_dict_type", "FULL_STATE_DICT", "--fsdp_reshard_after_forward", "true",
                    "--fsdp_cpu_ram_efficient_loading", "false"]
    elif strategy != "ddp":
        raise ValueError(f"unknown strategy {strategy!r}")
    return command + ["-m", "backend.training.trainer", str(job_dir)] + (["--resume"] if resume else [])


def options_for(config: TrainConfig) -> DatasetOptions:
    """The data selection a config implies when no filters are given (all conversations)."""
    return DatasetOptions(voice=config.voice, max_tokens=config.max_tokens, validation_percent=config.validation_percent,
                          system_prompt=config.system_prompt)


def _counting(steps: Steps) -> Callable[[int, int], None]:
    def conversation(done: int, total: int) -> None:
        if done % max(1, total // 50) == 0:  # at most ~50 events, however many conversations
            steps("reading conversations", done, total)
    return conversation


def _dataset(layout: DataLayout, config: TrainConfig, conversations: Sequence[SourceConversation], options: DatasetOptions,
             steps: Steps, *, allow_paths: bool = True) -> tuple[BaseModel, Dataset]:
    from transformers import AutoTokenizer

    steps("preparing the base model")  # the first time for a base: converted from its GGUF, tensor by tensor

    def converting(done: int, total: int) -> None:
        if done % max(1, total // 50) == 0 or done == total:  # at most ~50 events, a cancel point at each
            steps("preparing the base model", done, total)

    base = resolve_base(config.base, layout, allow_paths=allow_paths, on_progress=converting)
    steps("loading the tokenizer")
    tokenizer = AutoTokenizer.from_pretrained(base.hf_dir)
    dataset = build_dataset(tokenizer, conversations, options, _counting(steps))
    steps("planning")
    return base, dataset


def prepare_run(layout: DataLayout, config: TrainConfig, conversations: Sequence[SourceConversation],
                options: DatasetOptions | None = None, context: JobContext | None = None) -> Path:
    options = options or options_for(config)
    base, dataset = _dataset(layout, config, conversations, options, Steps(context))
    config = config.model_copy(update={"base_hf_dir": str(base.hf_dir), "base_sha256": base.sha256,
                                       "base_gguf": str(base.gguf_path or "")})
    if not dataset.train:
        raise NoTrainingData("No training samples: import conversations (or chat) first, or loosen the filters.")
    plan = _plan(layout, config, base, dataset)
    if not plan.fits_ram:
        raise TrainingDoesNotFit(plan.advice or "This run does not fit in this machine's free memory.")
    config = resolved(config, plan)
    job_dir = layout.run_dir(f"train-{uuid.uuid4().hex[:10]}")
    job_dir.mkdir(parents=True)
    run = RunFolder(job_dir)
    run.config_path.write_text(config.model_dump_json(indent=2))
    run.plan_path.write_text(json.dumps(plan.to_dict(), indent=2))
    for name, samples in (("train", dataset.train), ("validation", dataset.validation)):
        with run.samples_path(name).open("w") as handle:
            for sample in samples:
                handle.write(json.dumps({"conversation_id": sample.conversation_id, "input_ids": sample.input_ids,
                                         "labels": sample.labels}) + "\n")
    prompts = [sample.prompt for sample in dataset.validation[: config.sample_prompts]]
    run.prompts_path.write_text(json.dumps(prompts))
    run.dataset_path.write_text(json.dumps(asdict(dataset.stats), indent=2))
    return job_dir


PREVIEW_SAMPLES = 3


def preview_run(layout: DataLayout, config: TrainConfig, conversations: Sequence[SourceConversation],
                options: DatasetOptions, *, allow_paths: bool = True, context: JobContext | None = None) -> dict[str, Any]:
    """What a run with ``config`` would train, without training: the dataset's totals (with any exchange
    split or left out, by name), the first samples exactly as trained, and the plan with its estimates.
    Under a job (``context``) it reports each step and stops at the next one when cancelled."""
    base, dataset = _dataset(layout, config, conversations, options, Steps(context), allow_paths=allow_paths)
    info = base_info(base)
    plan = _plan(layout, config, base, dataset)
    samples = [{"text": s.text, "tokens": len(s.input_ids), "trained_tokens": s.trained_tokens}
               for s in dataset.train[:PREVIEW_SAMPLES]]
    return {"stats": asdict(dataset.stats), "samples": samples, "plan": plan.to_dict(),
            "base_model": {k: info.get(k) for k in ("architecture", "parameter_label", "quantization")}}


def base_info(base: BaseModel) -> dict[str, Any]:
    """What the plan's estimates need of the base: its GGUF metadata (size, quantization) and its
    transformers config (hidden size, layers, MLP size, heads, vocabulary)."""
    from backend.inference.gguf_info import read_gguf_info

    info: dict[str, Any] = read_gguf_info(base.gguf_path).to_dict() if base.gguf_path else {}
    try:
        config = json.loads((base.hf_dir / "config.json").read_text())
    except (OSError, ValueError):
        config = {}
    config = config.get("text_config", config)  # multimodal configs nest the text model's
    for key in ("hidden_size", "num_hidden_layers", "intermediate_size", "num_attention_heads", "vocab_size"):
        if isinstance(config.get(key), int):
            info[key] = config[key]
    if not info.get("parameters"):
        info["parameters"] = _parameters_of_folder(base.hf_dir)
    return info


def _parameters_of_folder(folder: Path) -> int:
    from safetensors import safe_open

    total = 0
    for weights in sorted(folder.glob("*.safetensors")):
        with safe_open(str(weights), "pt") as handle:
            for name in handle.keys():  # noqa: SIM118 - safe_open has keys(), not iteration
                total += math.prod(handle.get_slice(name).get_shape())
    return total


def _plan(layout: DataLayout, config: TrainConfig, base: BaseModel, dataset: Dataset) -> TrainingPlan:
    return plan_training(config, len(dataset.train), sum(len(s.input_ids) for s in dataset.train), base_info(base),
                         measured_throughput(layout, base.sha256),
                         longest=max((len(s.input_ids) for s in dataset.train), default=None),
                         validation_tokens=sum(len(s.input_ids) for s in dataset.validation))


def measured_throughput(layout: DataLayout, base_sha256: str) -> float | None:
    """Training tokens per second of this machine's latest finished run on this base, if any."""
    finished = [RunFolder(path) for path in layout.run_dirs() if RunFolder(path).evaluation_path.exists()]
    for run in sorted(finished, key=lambda r: r.evaluation_path.stat().st_mtime, reverse=True):
        try:
            config = json.loads(run.config_path.read_text())
            rate = (run.evaluation() or {}).get("tokens_per_s")
        except (OSError, ValueError):
            continue
        if config.get("base_sha256") == base_sha256 and isinstance(rate, (int, float)) and rate > 0:
            return float(rate)
    return None


def validation_samples(layout: DataLayout, base_reference: str, conversations: Sequence[SourceConversation],
                       options: DatasetOptions) -> list[dict[str, Any]]:
    """The held-out split of the user's data, as the trainer's evaluation reads it."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_base(base_reference, layout).hf_dir)
    dataset = build_dataset(tokenizer, conversations, options)
    return [{"input_ids": s.input_ids, "labels": s.labels} for s in dataset.validation]


def run_training(context: JobContext, job_dir: Path, resume: bool = False) -> dict[str, Any]:
    if resume and latest_checkpoint(RunFolder(job_dir).checkpoints_dir) is None:
        raise TrainingError(f"{job_dir.name} has no checkpoint to resume from; start it again instead.")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
    processes = RunFolder(job_dir).config().processes
    command = distributed_command(job_dir, resume=resume, processes=processes) if processes > 1 else trainer_command(job_dir, resume)
    result = run_json_lines_subprocess(context, command, env=env)
    if result is None:
        return {"job_dir": str(job_dir), "stopped": True}
    return {"job_dir": str(job_dir), **result}


def find_run(layout: DataLayout, name: str) -> Path:
    try:
        path = layout.run_dir(name)
    except ValueError:
        raise NotFoundError(f"No training run {name!r}.") from None
    if not RunFolder(path).is_run():
        raise NotFoundError(f"No training run {name!r}.")
    return path
