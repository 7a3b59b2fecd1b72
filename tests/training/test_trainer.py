"""Real LoRA training of SmolLM2 on the CPU, in the trainer subprocess, through the job registry."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from backend.jobs import JobRegistry
from backend.training.checkpoints import latest_checkpoint
from backend.training.config import TrainConfig
from backend.training.runs import prepare_run, run_training
from tests.training.conftest import pirate_conversations

SMALL = dict(epochs=1, batch_size=8, rank=4, alpha=8, learning_rate=1e-3, eval_every=100, checkpoint_every=100,
             sample_prompts=0, validation_percent=10)


def train(job_dir, resume=False):
    registry = JobRegistry()
    events = []
    registry.subscribe(events.append)
    job_id = registry.start("train", "t", lambda ctx: run_training(ctx, job_dir, resume))
    return registry.wait(job_id, timeout=600), events


@pytest.mark.slow
def test_training_beats_the_base_model_on_held_out_data(layout, base_in_layout):
    job_dir = prepare_run(layout, TrainConfig(**{**SMALL, "rank": 8, "alpha": 16, "sample_prompts": 2, "eval_every": 5}), pirate_conversations(120))
    record, events = train(job_dir)
    assert record.state == "succeeded", record.error
    evaluation = record.result["evaluation"]
    assert evaluation["eval_loss"] < 0.5 * evaluation["base_eval_loss"]
    assert evaluation["perplexity"] < evaluation["base_perplexity"]
    assert any("Arr matey" in s["fine_tuned"] for s in evaluation["samples"])
    assert not any("Arr matey" in s["base"] for s in evaluation["samples"])
    progress = [e for e in events if e["type"] == "progress" and e["status"] == "training"]
    assert progress[-1]["completed"] == progress[-1]["total"] and {"loss", "learning_rate", "tokens_per_s", "eta_s", "epoch"} <= set(progress[-1])
    assert [e for e in events if e["type"] == "eval"], "validation loss is reported during training"
    assert (job_dir / "adapter" / "adapter_model.safetensors").exists()


@pytest.mark.slow
def test_cancel_and_resume_equals_an_uninterrupted_run(layout, base_in_layout):
    conversations = pirate_conversations(56)
    straight = prepare_run(layout, TrainConfig(**SMALL), conversations)
    record, _ = train(straight)
    assert record.state == "succeeded", record.error

    interrupted = prepare_run(layout, TrainConfig(**{**SMALL, "stop_after_steps": 3}), conversations)
    first, events = train(interrupted)
    assert first.result.get("stopped") and any(e["type"] == "stopped" for e in events)
    assert latest_checkpoint(interrupted / "checkpoints").name == "step_000003"
    config = json.loads((interrupted / "config.json").read_text())
    (interrupted / "config.json").write_text(json.dumps({**config, "stop_after_steps": None}))
    resumed, _ = train(interrupted, resume=True)
    assert resumed.state == "succeeded", resumed.error

    a = load_file(str(straight / "adapter" / "adapter_model.safetensors"))
    b = load_file(str(interrupted / "adapter" / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6), key
    assert record.result["history"]["train"] == resumed.result["history"]["train"]


@pytest.mark.slow
def test_corrupted_checkpoint_gives_a_clear_error(layout, base_in_layout):
    job_dir = prepare_run(layout, TrainConfig(**{**SMALL, "stop_after_steps": 2}), pirate_conversations(40))
    train(job_dir)
    checkpoint = latest_checkpoint(job_dir / "checkpoints")
    data = bytearray((checkpoint / "adapter.safetensors").read_bytes())
    data[-10:] = b"0123456789"
    (checkpoint / "adapter.safetensors").write_bytes(bytes(data))
    record, _ = train(job_dir, resume=True)
    assert record.state == "failed"
    assert record.error["code"] == "checkpoint_corrupted" and "Delete that folder" in record.error["message"]


@pytest.mark.slow
def test_cancel_from_the_registry_keeps_a_checkpoint(layout, base_in_layout):
    job_dir = prepare_run(layout, TrainConfig(**{**SMALL, "epochs": 20}), pirate_conversations(40))
    registry = JobRegistry()
    seen = []

    def on_event(event):
        seen.append(event)
        if event["type"] == "progress" and event.get("completed") == 2 and event.get("status") == "training":
            registry.cancel(event["job_id"])

    registry.subscribe(on_event)
    job_id = registry.start("train", "t", lambda ctx: run_training(ctx, job_dir))
    record = registry.wait(job_id, timeout=600)
    assert record.state == "cancelled"
    assert latest_checkpoint(job_dir / "checkpoints") is not None, "cancel writes a checkpoint to resume from"


def test_resume_without_checkpoint_is_refused(layout, base_in_layout):
    job_dir = prepare_run(layout, TrainConfig(**SMALL), pirate_conversations(16))
    shutil.rmtree(job_dir / "checkpoints", ignore_errors=True)
    record, _ = train(job_dir, resume=True)
    assert record.state == "failed" and "no checkpoint" in record.error["message"]


@pytest.mark.slow
def test_gradient_checkpointing_trains(layout, base_in_layout):
    job_dir = prepare_run(layout, TrainConfig(**{**SMALL, "gradient_checkpointing": True, "stop_after_steps": 2}), pirate_conversations(40))
    record, events = train(job_dir)
    assert record.result.get("stopped")
    losses = [e["loss"] for e in events if e["type"] == "progress" and e.get("status") == "training"]
    assert len(losses) == 2 and all(loss > 0 for loss in losses)


def test_short_batches_use_matmul_attention_on_cpu_with_the_same_loss():
    from transformers import LlamaConfig, LlamaForCausalLM

    from backend.training.trainer import SHORT_ATTENTION_TOKENS, choose_attention, collate, labelled_loss

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2)).eval()
    cpu = torch.device("cpu")
    samples = [{"input_ids": list(range(1, n)), "labels": [-100] * 5 + list(range(6, n))} for n in (40, 29)]
    batch = collate(samples, 0, cpu)
    losses = {}
    for width in (batch["input_ids"].shape[1], SHORT_ATTENTION_TOKENS + 1):
        choose_attention(model, width, cpu)
        with torch.no_grad():
            losses[model.config._attn_implementation] = float(labelled_loss(model, batch)[0])
    assert set(losses) == {"eager", "sdpa"}, "the kernel follows the batch width"
    assert losses["eager"] == pytest.approx(losses["sdpa"], rel=1e-5), "switching kernels does not change the loss"
