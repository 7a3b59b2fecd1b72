"""Any model people add can be a training base where transformers reads its architecture; the rest
are refused before training starts, and the cost is estimated up front."""

from __future__ import annotations

import json

import pytest

from backend.jobs import JobRegistry
from backend.training.config import TrainConfig
from backend.training.runs import prepare_run, run_training
from backend.training.trainability import estimate_training, training_support
from tests.conftest import linked_base
from tests.training.conftest import pirate_conversations


@pytest.mark.parametrize("architecture", ["llama", "gemma3", "qwen2", "qwen3", "phi3", "gemma2", "qwen2moe"])
def test_architectures_transformers_reads_are_trainable(architecture):
    assert training_support({"architecture": architecture, "quantization": "Q4_K_M"}) is None


@pytest.mark.parametrize("info, reason", [
    ({"architecture": "clip", "quantization": "F16"}, "cannot be loaded for training"),
    ({"architecture": "rwkv6", "quantization": "Q4_0"}, "chat with it works"),
    ({"architecture": "bert", "quantization": "F16", "embedding_model": True, "name": "nomic-embed"}, "embedding model"),
    ({"architecture": "llama", "quantization": "unknown"}, "dequantised"),
])
def test_untrainable_bases_say_why(info, reason):
    assert reason in training_support(info)


def test_estimates_grow_with_the_model_and_the_data():
    small = {"parameters": 135_000_000, "embedding_length": 576, "block_count": 30}
    big = {"parameters": 3_000_000_000, "embedding_length": 3072, "block_count": 28}
    assert estimate_training(big, 10_000, 2, 8, 512).minutes > 10 * estimate_training(small, 10_000, 2, 8, 512).minutes
    assert estimate_training(small, 20_000, 2, 8, 512).minutes == pytest.approx(2 * estimate_training(small, 10_000, 2, 8, 512).minutes, rel=0.1)
    assert estimate_training(big, 10_000, 2, 8, 512).memory_bytes > 12e9


@pytest.fixture
def gemma_in_layout(layout, gemma_base):
    with linked_base(layout, gemma_base) as base:
        yield base


@pytest.mark.slow
def test_a_few_steps_on_gemma(layout, gemma_in_layout, gemma_gguf):
    """A second architecture through the real trainer: Gemma 3 (no chat template of its own)."""
    config = TrainConfig(base=str(gemma_gguf), epochs=1, batch_size=4, rank=4, alpha=8, learning_rate=1e-3, eval_every=100,
                         checkpoint_every=100, sample_prompts=0, validation_percent=20, stop_after_steps=3)
    job_dir = prepare_run(layout, config, pirate_conversations(24))
    registry = JobRegistry()
    record = registry.wait(registry.start("train", "gemma", lambda ctx: run_training(ctx, job_dir)), timeout=900)
    assert record.state == "succeeded", record.error
    assert record.result.get("stopped"), "it stopped after the 3 steps asked for"
    from transformers import AutoTokenizer

    first = json.loads((job_dir / "train.jsonl").read_text().splitlines()[0])
    text = AutoTokenizer.from_pretrained(gemma_in_layout.hf_dir).decode(first["input_ids"])
    assert "<start_of_turn>model\nArr matey" in text, "rendered in Gemma's turn format, as the engine answers"
