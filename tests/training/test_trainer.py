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
    record, straight_events = train(straight)
    assert record.state == "succeeded", record.error
    evaluating = [(e["completed"], e["total"]) for e in straight_events if e.get("status") == "evaluating"]
    assert evaluating[0][0] == 0 and evaluating[-1][0] == evaluating[-1][1] > 0, "the final evaluation shows progress to its end"

    interrupted = prepare_run(layout, TrainConfig(**{**SMALL, "stop_after_steps": 3}), conversations)
    first, events = train(interrupted)
    assert first.result.get("stopped") and any(e["type"] == "stopped" for e in events)
    assert latest_checkpoint(interrupted / "checkpoints").name == "step_000003"
    config = json.loads((interrupted / "config.json").read_text())
    (interrupted / "config.json").write_text(json.dumps({**config, "stop_after_steps": None}))
    resumed, resumed_events = train(interrupted, resume=True)
    assert resumed.state == "succeeded", resumed.error
    [history] = [e for e in resumed_events if e["type"] == "history"]
    assert [step for step, _ in history["train"]] == [1, 2, 3], "the chart of a resumed run starts with its curve so far"
    assert history["eval"][0] == [0, pytest.approx(record.result["evaluation"]["base_eval_loss"])], "from the base model's loss"

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


@pytest.fixture(scope="module")
def smollm2_lora(shared_base):
    from peft import LoraConfig, get_peft_model

    from backend.training.base_models import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(shared_base)
    torch.manual_seed(0)
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    for name, parameter in model.named_parameters():
        if "lora_B" in name:  # a LoRA that already changes something, so the comparison covers its path
            torch.nn.init.normal_(parameter, std=0.02)
    return model.eval(), tokenizer


def chat_samples(tokenizer, count):
    from backend.training.dataset import DatasetOptions, build_dataset

    dataset = build_dataset(tokenizer, pirate_conversations(count), DatasetOptions(validation_percent=0))
    return [{"input_ids": s.input_ids, "labels": s.labels} for s in dataset.train]


@pytest.mark.parametrize("kernel", ["eager", "sdpa"])
def test_a_packed_batch_has_the_loss_of_the_same_samples_unpacked(smollm2_lora, kernel):
    from backend.training.trainer import collate, collate_packed, labelled_loss

    model, tokenizer = smollm2_lora
    samples = chat_samples(tokenizer, 5)
    cpu = torch.device("cpu")
    packed = collate_packed(samples, tokenizer.pad_token_id, cpu, capacity=3 * len(samples[0]["input_ids"]))
    unpacked = collate(samples, tokenizer.pad_token_id, cpu)
    assert packed["input_ids"].shape[0] < len(samples), "several samples share a row"
    assert packed["tokens"] == unpacked["tokens"]
    model.get_base_model().set_attn_implementation(kernel)
    with torch.no_grad():
        loss_packed, n_packed = labelled_loss(model, packed)
        loss_unpacked, n_unpacked = labelled_loss(model, unpacked)
    assert n_packed == n_unpacked
    assert float(loss_packed) == pytest.approx(float(loss_unpacked), rel=1e-5), "no attention crosses a sample boundary"


def test_frozen_bf16_weights_train_as_autocast_does_and_evaluate_in_fp32(smollm2_lora, tmp_path):
    from backend.training.precision import FrozenBf16Weights
    from backend.training.trainer import collate, labelled_loss

    model, tokenizer = smollm2_lora
    batch = collate(chat_samples(tokenizer, 3), tokenizer.pad_token_id, torch.device("cpu"))
    model.get_base_model().set_attn_implementation("eager")

    def loss(autocast: bool) -> float:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            return float(labelled_loss(model, batch)[0])

    fp32_before, mixed_before = loss(False), loss(True)
    frozen = FrozenBf16Weights(model)
    try:
        q_proj = model.get_base_model().model.layers[0].self_attn.q_proj
        assert frozen.count == 30 * 7 and q_proj.base_layer.weight.dtype == torch.bfloat16
        assert q_proj.lora_A["default"].weight.dtype == torch.float32, "the trained weights stay fp32"
        assert loss(True) == pytest.approx(mixed_before, rel=1e-6), "the same matmuls as autocast over fp32 weights"
        with frozen.full_precision():
            assert q_proj.base_layer.weight.dtype == torch.float32
            assert loss(False) == fp32_before, "evaluation sees the exact fp32 weights"
        assert q_proj.base_layer.weight.dtype == torch.bfloat16
        with frozen.full_precision():  # the mapped pages were given back after the first evaluation
            assert loss(False) == fp32_before, "and read again, exactly, for the next one"
    finally:
        frozen._use([weight.clone() for weight in frozen._fp32])  # leave the shared model in fp32, as it was


def noise_conversations(n: int) -> list:
    """Nothing to generalise: each answer is a random number, so learning the training answers by heart
    makes held-out answers less likely after the format has been learned."""
    import random

    from backend.training.dataset import SourceConversation, Turn

    rng = random.Random(3)
    return [SourceConversation(f"noise-{i}", f"N {i}", None, (Turn("user", "Tell me a number."),
                                                              Turn("assistant", f"{rng.randint(10**7, 10**8)}")))
            for i in range(n)]


@pytest.mark.slow
def test_training_stops_early_on_a_rising_validation_loss_and_keeps_the_best_adapter(layout, base_in_layout):
    config = TrainConfig(max_steps=60, learning_rate=8e-3, eval_every=2, patience=2, rank=8, alpha=16, sample_prompts=0,
                         validation_percent=30, batch_size=4)
    job_dir = prepare_run(layout, config, noise_conversations(24))
    record, events = train(job_dir)
    assert record.state == "succeeded", record.error
    stop = next(e for e in events if e["type"] == "early_stop")
    evaluation = record.result["evaluation"]
    assert stop["step"] < 60 and evaluation["stopped_early"] == stop["step"] and evaluation["steps_run"] == stop["step"]
    measured = dict((step, loss) for step, loss in record.result["history"]["eval"])
    best_step = evaluation["best_step"]
    assert measured[best_step] <= min(measured.values()) * (1 + 1e-3) and stop["step"] - best_step == 2 * 2, "two checks without a new best"
    assert evaluation["eval_loss"] == pytest.approx(measured[best_step], rel=1e-5), "the adapter kept is the best one"
    assert evaluation["eval_loss"] < min(loss for step, loss in measured.items() if step > best_step)
