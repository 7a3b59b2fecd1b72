"""The LoRA trainer, run as a subprocess: ``python -m backend.training.trainer JOB_DIR``.

Readable top to bottom: load the base, wrap it with LoRA, measure the base on the validation set,
train with length-grouped batches (short chat turns are not padded to the longest sample in the
whole set), checkpoint, evaluate base vs fine-tune, save the adapter. Every event is one JSON line
on stdout (``progress``, ``eval``, ``checkpoint``, ``result``, ``error``). SIGTERM (cancel) finishes
the current step, writes a checkpoint and exits; ``--resume`` continues from the latest checkpoint
with the same data order and RNG state, so the result equals an uninterrupted run.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from backend.config import PRIVATE_UMASK
from backend.errors import OrchMindError
from backend.training.checkpoints import latest_checkpoint, load_checkpoint, save_checkpoint
from backend.training.config import NoTrainingData, QuantizationUnavailable, TrainConfig
from backend.training.precision import FrozenBf16Weights, resolve_precision
from backend.training.run_folder import RunFolder
from backend.training.sharding import (
    adapter_state,
    is_sharded,
    load_adapter_state,
    load_optimizer_state,
    make_accelerator,
    optimizer_state,
    sharded_parameters,
    trainable_state,
)

IGNORE_INDEX = -100
# Below this batch width (tokens) plain matmul attention beats PyTorch's CPU flash attention, whose
# backward is slow for short sequences; above it, flash attention wins and keeps memory linear.
# Measured on 2 cores, bf16 autocast, 9 heads of 64: 64 tokens 1.9 vs 3.6 ms, 128: 5.7 vs 9.4 ms,
# 256: 22 vs 18 ms, 512: 103 vs 64 ms (fwd+bwd). Chat turns are mostly short, so this matters.
SHORT_ATTENTION_TOKENS = 192


def emit(event: dict[str, Any]) -> None:
    if _MAIN_PROCESS:
        print(json.dumps(event), flush=True)


_MAIN_PROCESS = os.environ.get("RANK", "0") == "0"  # only rank 0 reports under `accelerate launch`


def read_samples(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def batch_plan(samples: list[dict[str, Any]], batch_size: int, epoch: int, seed: int) -> list[list[int]]:
    """Length-grouped batches for one epoch, deterministic in (seed, epoch): shuffle, sort within
    mega-batches of 32 batches by length, then shuffle the batch order."""
    rng = random.Random(seed * 1000 + epoch)
    order = list(range(len(samples)))
    rng.shuffle(order)
    mega = batch_size * 32
    batches = []
    for start in range(0, len(order), mega):
        group = sorted(order[start:start + mega], key=lambda i: len(samples[i]["input_ids"]))
        batches += [group[i:i + batch_size] for i in range(0, len(group), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(samples: list[dict[str, Any]], pad_id: int, device: Any) -> dict[str, Any]:
    import torch

    width = max(len(s["input_ids"]) for s in samples)
    ids = torch.full((len(samples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(samples), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(samples), width), dtype=torch.long)
    for row, sample in enumerate(samples):
        n = len(sample["input_ids"])
        ids[row, :n] = torch.tensor(sample["input_ids"])
        labels[row, :n] = torch.tensor(sample["labels"])
        mask[row, :n] = 1
    return {"input_ids": ids.to(device), "labels": labels.to(device), "attention_mask": mask.to(device), "tokens": int(mask.sum())}


def pack(lengths: list[int], capacity: int) -> list[list[int]]:
    """First-fit decreasing: rows of sample indices whose lengths add up to at most ``capacity``
    (a sample longer than that gets a row of its own). Deterministic in the input order."""
    rows: list[list[int]] = []
    room: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        row = next((r for r, free in enumerate(room) if free >= lengths[index]), None)
        if row is None:
            rows.append([index])
            room.append(capacity - lengths[index])
        else:
            rows[row].append(index)
            room[row] -= lengths[index]
    return rows


def collate_packed(samples: list[dict[str, Any]], pad_id: int, device: Any, capacity: int) -> dict[str, Any]:
    """Several samples per row, each with positions from 0 and no attention across them.

    With ``attention_mask`` None and ``position_ids`` restarting at 0 for every sample, transformers
    builds a block-diagonal causal mask (its packed-sequence support), so each sample sees only
    itself, as in its own row; the padding at the end of a row is one more such block, unlabelled.
    The first token of every sample is unlabelled too, so nothing is learned across a boundary.
    """
    import torch

    rows = pack([len(s["input_ids"]) for s in samples], capacity)
    width = max(sum(len(samples[i]["input_ids"]) for i in row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    tokens = 0
    for r, row in enumerate(rows):
        at = 0
        for i in row:
            n = len(samples[i]["input_ids"])
            ids[r, at:at + n] = torch.tensor(samples[i]["input_ids"])
            labels[r, at + 1:at + n] = torch.tensor(samples[i]["labels"][1:])
            positions[r, at:at + n] = torch.arange(n)
            at += n
        positions[r, at:] = torch.arange(width - at)
        tokens += at
    return {"input_ids": ids.to(device), "labels": labels.to(device), "attention_mask": None,
            "position_ids": positions.to(device), "tokens": tokens}


def labelled_loss(model: Any, batch: dict[str, Any], *, through_wrapper: bool = False) -> tuple[Any, int]:
    """Summed cross-entropy over the labelled (assistant) tokens only, and how many there were.

    The vocabulary projection runs only on the positions that carry a label: chat prompts are most of
    the tokens, so this skips most of the largest matrix product and never materialises the
    (batch, length, vocabulary) logits. Under DDP (``through_wrapper``) the top-level forward must
    run for gradients to be synchronised, so there the full logits are computed.
    """
    import torch

    labels = batch["labels"][:, 1:]
    keep = labels != IGNORE_INDEX
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"], "use_cache": False}
    if batch.get("position_ids") is not None:
        inputs["position_ids"] = batch["position_ids"]
    if through_wrapper:
        logits = model(**inputs).logits[:, :-1]
        selected = logits[keep]
    else:
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        hidden = base.get_decoder()(**inputs).last_hidden_state
        selected = base.get_output_embeddings()(hidden[:, :-1][keep])
    loss = torch.nn.functional.cross_entropy(selected.float(), labels[keep], reduction="sum")
    return loss, int(keep.sum())


def choose_attention(model: Any, width: int, device: Any) -> None:
    """Run this batch with the attention kernel that is fastest for its width on this device."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    wanted = "eager" if device.type == "cpu" and width <= SHORT_ATTENTION_TOKENS else "sdpa"
    if base.config._attn_implementation != wanted:
        base.set_attn_implementation(wanted)


def evaluate(model: Any, samples: list[dict[str, Any]], pad_id: int, device: Any, batch_size: int,
             on_batch: Callable[[], None] | None = None, *, sharded: bool = False) -> float | None:
    """Mean loss per labelled token. ``sharded`` (FSDP): every process runs the same batches through
    the top-level forward, which gathers each layer's weights as it goes."""
    import torch

    if not samples:
        return None
    model = getattr(model, "module", model)  # under DDP: evaluation needs no gradient sync, so skip the wrapper
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(samples), batch_size):
            batch = collate(samples[start:start + batch_size], pad_id, device)
            choose_attention(model, batch["input_ids"].shape[1], device)
            loss, n = labelled_loss(model, batch, through_wrapper=sharded)
            total, count = total + float(loss), count + n
            if on_batch:
                on_batch()
    model.train()
    return total / max(count, 1)


def sample_replies(model: Any, tokenizer: Any, prompts: list[list[dict[str, str]]], device: Any,
                   max_new_tokens: int = 48, on_reply: Callable[[], None] | None = None, *, sharded: bool = False) -> list[str]:
    """Greedy replies to each chat (rendered with the model's own template), the model left in training mode.
    ``sharded``: every process generates the same replies, in step (each token gathers the weights)."""
    import torch

    replies = []
    model.eval()
    with torch.no_grad():
        for messages in prompts:
            ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
            output = model.generate(**{k: v.to(device) for k, v in ids.items()}, max_new_tokens=max_new_tokens, do_sample=False,
                                    pad_token_id=tokenizer.pad_token_id, synced_gpus=sharded)
            replies.append(tokenizer.decode(output[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip())
            if on_reply:
                on_reply()
    model.train()
    return replies


class StopFlag:
    def __init__(self) -> None:
        self.requested = False
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, *_: Any) -> None:
        self.requested = True


def shard_plan(plan: list[list[int]], rank: int, world: int) -> list[list[int]]:
    """This process's share of the batches. Every process must run the same number of backward passes
    (each one all-reduces under DDP), so the plan is padded by wrapping around, as DistributedSampler does."""
    padded = plan + plan[: (-len(plan)) % world]
    return padded[rank::world]


def run(job_dir: Path, resume: bool) -> None:
    import torch
    from peft import LoraConfig, get_peft_model

    from backend.training.base_models import BaseModel, load_model_and_tokenizer

    stop = StopFlag()
    run_folder = RunFolder(job_dir)
    config = run_folder.config()
    train_samples = read_samples(run_folder.samples_path("train"))
    validation = read_samples(run_folder.samples_path("validation"))
    prompts = run_folder.prompts()
    if not train_samples:
        raise NoTrainingData("There are no training samples: select conversations with replies to learn from.")

    torch.manual_seed(config.seed)
    random.seed(config.seed)
    emit({"type": "progress", "status": "loading base model", "completed": 0, "total": 0})
    base = BaseModel(config.base, Path(config.base_gguf) if config.base_gguf else None, Path(config.base_hf_dir), config.base_sha256)
    try:
        model, tokenizer = load_model_and_tokenizer(base, quantization=config.quantization, dtype=config.dtype)
    except ImportError as exc:  # bitsandbytes (or what it needs) is missing: say so, never train unquantized instead
        raise QuantizationUnavailable(f"The base cannot load in {config.quantization}: {exc}. Install bitsandbytes, "
                                      "or train without quantization.") from exc
    if config.quantization != "none":
        from peft import prepare_model_for_kbit_training

        if not any(type(module).__name__ in ("Linear4bit", "Linear8bitLt") for module in model.modules()):
            raise QuantizationUnavailable(f"The base did not load in {config.quantization}: bitsandbytes is missing or "
                                          "does not work on this machine. Train without quantization instead.")
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.gradient_checkpointing)
    elif config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    targets: Any = "all-linear" if config.target_modules == ["all-linear"] else config.target_modules
    model = get_peft_model(model, LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout,
                                             target_modules=targets, task_type="CAUSAL_LM"))
    accelerator = make_accelerator()
    sharded = is_sharded(accelerator)
    global _MAIN_PROCESS
    _MAIN_PROCESS = accelerator.is_main_process
    device = accelerator.device
    trainable = [p for p in model.parameters() if p.requires_grad]
    if device.type == "cuda" and config.quantization != "none":  # QLoRA: optimizer state paged to host memory under pressure
        import bitsandbytes

        optimizer = bitsandbytes.optim.PagedAdamW32bit(trainable, lr=config.learning_rate or 1e-3, weight_decay=0.0)
    else:
        optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate or 1e-3, weight_decay=0.0)
    # Under `accelerate launch` each process takes every n-th batch of the same deterministic plan.
    shard = (accelerator.process_index, accelerator.num_processes)
    micro_per_epoch = math.ceil(math.ceil(len(train_samples) / config.batch_size) / shard[1])
    steps_per_epoch = math.ceil(micro_per_epoch / config.grad_accum)
    # prepare_run writes the plan's numbers in (steps of one process; with n processes a step takes n
    # times the samples, so the same passes over the data take 1/n of the steps); a run prepared
    # before plans existed has epochs only.
    single_process_steps = math.ceil(math.ceil(len(train_samples) / config.batch_size) / config.grad_accum)
    total_steps = math.ceil(config.max_steps * steps_per_epoch / single_process_steps) if config.max_steps \
        else steps_per_epoch * (config.epochs or 1)
    epochs = math.ceil(total_steps / steps_per_epoch)
    warmup = config.warmup_steps or 0
    eval_every = config.eval_every or 10

    def lr_lambda(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
    precision = resolve_precision(config.precision, config.quantization)
    if config.quantization == "none" and not sharded:  # FSDP moves each layer's shard to its GPU itself
        model.to(device)  # the bf16 copies are made where the weights train (a GPU's memory, or the CPU)
    frozen = FrozenBf16Weights(model) if precision == "bf16-mixed" and config.quantization == "none" \
        and config.bf16_base_weights and not sharded else None  # FSDP keeps its own copies
    fp32 = frozen.full_precision if frozen else nullcontext  # evaluation always in fp32
    model, optimizer = accelerator.prepare(model, optimizer)
    pad_id = tokenizer.pad_token_id
    checkpoints = run_folder.checkpoints_dir
    history: dict[str, Any] = {"train": [], "eval": [], "base_eval_loss": None, "best": None}
    start_step = 0

    if resume and (latest := latest_checkpoint(checkpoints)) is not None:
        saved_adapter, state, meta = load_checkpoint(latest)
        load_adapter_state(accelerator.unwrap_model(model), saved_adapter)
        load_optimizer_state(accelerator.unwrap_model(model), optimizer, state["optimizer"], sharded)
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        random.setstate((state["python_rng"][0], tuple(state["python_rng"][1]), state["python_rng"][2]))
        history, start_step = meta["history"], meta["step"]
        # The curves so far, so a resumed run's chart continues instead of starting from its checkpoint.
        emit({"type": "history", "train": history["train"], "eval": [[0, history["base_eval_loss"]], *history["eval"]]})
        emit({"type": "progress", "status": "resumed", "completed": start_step, "total": total_steps})
    else:
        with accelerator.unwrap_model(model).disable_adapter(), fp32():
            history["base_eval_loss"] = evaluate(model, validation, pad_id, device, config.batch_size, sharded=sharded)
        emit({"type": "eval", "step": 0, "eval_loss": history["base_eval_loss"], "base": True})

    plans = {epoch: shard_plan(batch_plan(train_samples, config.batch_size, epoch, config.seed), *shard)
             for epoch in range(epochs)}

    def micro_batches(step: int) -> Iterator[list[dict[str, Any]]]:
        epoch, within = divmod(step, steps_per_epoch)
        plan = plans[epoch]
        for index in range(within * config.grad_accum, min((within + 1) * config.grad_accum, len(plan))):
            yield [train_samples[i] for i in plan[index]]

    def checkpoint(step: int) -> None:
        unwrapped = accelerator.unwrap_model(model)
        adapter, optimizer_saved = adapter_state(unwrapped), optimizer_state(unwrapped, optimizer, sharded)  # every process
        if not accelerator.is_main_process:
            return
        python_state = random.getstate()
        state = {"optimizer": optimizer_saved, "scheduler": scheduler.state_dict(), "torch_rng": torch.get_rng_state(),
                 "python_rng": [python_state[0], list(python_state[1]), python_state[2]]}
        path = save_checkpoint(checkpoints, step, adapter, state,
                               {"history": history, "config": config.model_dump()})
        emit({"type": "checkpoint", "step": step, "path": path.name})

    autocast_device = "cuda" if torch.cuda.is_available() else "cpu"
    hardware = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    if accelerator.num_processes > 1:
        hardware = f"{accelerator.num_processes} x {hardware}, {'sharded (FSDP)' if sharded else 'data-parallel'}"
    history["hardware"] = {"device": device.type, "name": hardware, "precision": precision, "quantization": config.quantization,
                           "processes": accelerator.num_processes, "sharded_parameters": sharded_parameters(model)}
    emit({"type": "progress", "status": f"training on {hardware} ({precision})", "completed": start_step, "total": total_steps,
          "precision": precision, "device": device.type, "hardware": hardware,
          "bf16_base_weights": frozen.count if frozen else 0})
    model.train()
    started, tokens_seen, rate = time.time(), 0, 0.0
    last_step = start_step if history.get("stopped_early") else total_steps  # a resumed run that had already converged
    for step in range(start_step, last_step):
        step_loss, step_tokens = 0.0, 0
        batches = list(micro_batches(step))
        step_labelled = max(1, sum(1 for b in batches for s in b for label in s["labels"][1:] if label != IGNORE_INDEX))
        for batch_samples in batches:
            batch = (collate_packed(batch_samples, pad_id, device, config.max_tokens) if config.packing
                     else collate(batch_samples, pad_id, device))
            choose_attention(accelerator.unwrap_model(model), batch["input_ids"].shape[1], device)
            with torch.autocast(autocast_device, dtype=torch.bfloat16, enabled=precision == "bf16-mixed"):
                loss_sum, _ = labelled_loss(model, batch, through_wrapper=accelerator.num_processes > 1)
            loss = loss_sum / step_labelled  # the step's mean over every labelled token, whatever the split
            accelerator.backward(loss)
            step_loss += float(loss)
            step_tokens += batch["tokens"]
        accelerator.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        tokens_seen += step_tokens
        elapsed = time.time() - started
        done = step + 1
        history["train"].append([done, step_loss])
        rate = tokens_seen / max(elapsed, 1e-9)
        emit({"type": "progress", "status": "training", "completed": done, "total": total_steps, "loss": round(step_loss, 5),
              "learning_rate": scheduler.get_last_lr()[0], "epoch": round(done / steps_per_epoch, 3),
              "tokens_per_s": round(rate, 1), "eta_s": round(elapsed / (done - start_step) * (total_steps - done), 1)})
        converged = False
        if done % eval_every == 0 or done == total_steps:
            with fp32():
                eval_loss = evaluate(model, validation, pad_id, device, config.batch_size, sharded=sharded)
            history["eval"].append([done, eval_loss])
            emit({"type": "eval", "step": done, "eval_loss": eval_loss})
            if eval_loss is not None:
                converged = keep_best(job_dir, history, done, eval_loss, accelerator.unwrap_model(model), config.patience)
        stopping = stop.requested or (config.stop_after_steps is not None and done >= config.stop_after_steps)
        if done % config.checkpoint_every == 0 or done == total_steps or stopping or converged:
            checkpoint(done)
        if converged and done < total_steps:
            history["stopped_early"] = done
            emit({"type": "early_stop", "step": done, "best_step": history["best"]["step"], "total": total_steps})
            break
        if stopping and done < total_steps:
            emit({"type": "stopped", "step": done})
            return

    accelerator.wait_for_everyone()
    if accelerator.is_main_process or sharded:  # a sharded model evaluates and is gathered by every process together
        with fp32():
            finish(job_dir, config, accelerator.unwrap_model(model), tokenizer, validation, prompts, history, device, rate,
                   sharded=sharded)


def best_path(job_dir: Path, step: int) -> Path:
    return RunFolder(job_dir).best_adapter_path(step)


def keep_best(job_dir: Path, history: dict[str, Any], step: int, eval_loss: float, model: Any, patience: int) -> bool:
    """Record a new best validation loss (saving that adapter, small: LoRA weights only) and say whether
    the run has gone ``patience`` measurements without one, i.e. it is now learning its training set
    by heart rather than anything that carries over to held-out conversations."""
    from safetensors.torch import save_file

    best = history.get("best")
    if best is None or eval_loss < best["eval_loss"] * (1 - 1e-3):
        weights = adapter_state(model)  # every process: gathered under FSDP
        if _MAIN_PROCESS:
            path = best_path(job_dir, step)
            path.parent.mkdir(exist_ok=True)
            partial = path.with_suffix(".partial")
            save_file(weights, str(partial))
            partial.replace(path)
            for old in path.parent.glob("adapter-*.safetensors"):
                if old != path:
                    old.unlink()
        history["best"] = {"step": step, "eval_loss": eval_loss}
        return False
    measured_since = sum(1 for s, loss in history["eval"] if s > best["step"] and loss is not None)
    return patience > 0 and measured_since >= patience


def restore_best(job_dir: Path, history: dict[str, Any], model: Any) -> None:
    """Put the best adapter back when the last steps made it worse on held-out conversations."""
    from safetensors.torch import load_file

    best = history.get("best")
    last = history["eval"][-1] if history["eval"] else None
    if best is None or last is None or last[0] == best["step"] or not best_path(job_dir, best["step"]).exists():
        return
    load_adapter_state(model, load_file(str(best_path(job_dir, best["step"]))))
    emit({"type": "progress", "status": f"kept the best adapter (step {best['step']})", "completed": 0, "total": 0})


def peak_memory() -> dict[str, int | None]:
    """This process's peak resident memory and (on CUDA) the most GPU memory torch reserved."""
    import torch

    from backend.model_loading import peak_rss_bytes

    vram = int(torch.cuda.max_memory_reserved()) if torch.cuda.is_available() else None
    return {"peak_rss_bytes": peak_rss_bytes(), "peak_vram_bytes": vram}


def finish(job_dir: Path, config: TrainConfig, model: Any, tokenizer: Any, validation: list[dict[str, Any]],
           prompts: list[list[dict[str, str]]], history: dict[str, Any], device: Any, tokens_per_s: float,
           *, sharded: bool = False) -> None:
    """Keep the best adapter, evaluate base vs fine-tune on the same held-out split and prompts, then save it
    (``sharded``: every process runs this together; the main one writes)."""
    restore_best(job_dir, history, model)
    # Progress by unit of work (a validation batch, a sample reply): this takes minutes on a CPU.
    units = {"total": math.ceil(len(validation) / config.batch_size) + 2 * len(prompts), "done": 0}

    def tick() -> None:
        units["done"] += 1
        emit({"type": "progress", "status": "evaluating", "completed": units["done"], "total": units["total"]})

    emit({"type": "progress", "status": "evaluating", "completed": 0, "total": units["total"]})
    tuned_loss = evaluate(model, validation, tokenizer.pad_token_id, device, config.batch_size, on_batch=tick, sharded=sharded)
    tuned_replies = sample_replies(model, tokenizer, prompts, device, on_reply=tick, sharded=sharded)
    with model.disable_adapter():
        base_replies = sample_replies(model, tokenizer, prompts, device, on_reply=tick, sharded=sharded)
    base_loss = history["base_eval_loss"]
    evaluation = {
        "base_eval_loss": base_loss, "eval_loss": tuned_loss,
        "base_perplexity": math.exp(base_loss) if base_loss is not None else None,
        "perplexity": math.exp(tuned_loss) if tuned_loss is not None else None,
        "samples": [{"prompt": p[-1]["content"], "base": b, "fine_tuned": t} for p, b, t in zip(prompts, base_replies, tuned_replies)],
        "tokens_per_s": tokens_per_s,
        "steps_run": history["train"][-1][0] if history["train"] else 0, "planned_steps": config.max_steps,
        "best_step": (history.get("best") or {}).get("step"), "stopped_early": history.get("stopped_early"),
        "hardware": history.get("hardware"),
        "measured": peak_memory(),  # what the plan's estimates are checked against
    }
    output = RunFolder(job_dir).adapter_dir
    weights = trainable_state(model) if sharded else None  # every process: gathered under FSDP
    if not _MAIN_PROCESS:
        return
    model.save_pretrained(output, safe_serialization=True, state_dict=weights)
    RunFolder(job_dir).evaluation_path.write_text(json.dumps(evaluation, indent=2))
    RunFolder(job_dir).history_path.write_text(json.dumps(history))
    emit({"type": "result", "adapter_dir": str(output), "evaluation": evaluation, "history": history})


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m backend.training.trainer JOB_DIR [--resume]", file=sys.stderr)
        return 2
    os.umask(PRIVATE_UMASK)  # checkpoints and adapters hold what was learned from a person's chats
    try:
        run(Path(argv[0]), "--resume" in argv)
    except OrchMindError as exc:
        emit({"type": "error", "code": exc.code, "message": exc.message})
        return 1
    except Exception:  # noqa: BLE001 - the process edge: the traceback to stderr (the log), a stable message to the job
        traceback.print_exc()
        emit({"type": "error", "code": "internal_error",
              "message": "Training stopped because of an error inside Orch-Mind; details are in the log. "
                         "The last checkpoint is kept: Resume continues from it."})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
