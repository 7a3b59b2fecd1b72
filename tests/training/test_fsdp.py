"""The trainer sharded with FSDP through `accelerate launch`: two CPU processes over gloo on 127.0.0.1.

This is how a base too large for one GPU trains across several (``runs.distributed_command``); here
the packaged model on CPU processes, so it is tested without GPUs: stopped after a few steps, resumed
from the gathered checkpoint, finished with the adapter written once.
"""

import json
import os
import subprocess

import pytest
from safetensors.torch import load_file

from backend.training.config import TrainConfig
from backend.training.runs import distributed_command, prepare_run
from tests.training.conftest import pirate_conversations


def _launch(job_dir, resume):
    command = distributed_command(job_dir, resume=resume, processes=2, strategy="fsdp", cpu=True)
    completed = subprocess.run(command, capture_output=True, text=True, timeout=900, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert completed.returncode == 0, completed.stderr[-4000:]
    return [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]


@pytest.mark.slow
def test_the_trainer_trains_sharded_with_fsdp_on_two_processes_and_resumes(layout, base_in_layout):
    config = TrainConfig(epochs=1, batch_size=4, rank=4, alpha=8, learning_rate=2e-3, eval_every=100, checkpoint_every=2,
                         sample_prompts=0, validation_percent=10, stop_after_steps=3)
    job_dir = prepare_run(layout, config, pirate_conversations(48))

    first = _launch(job_dir, resume=False)
    assert [e["step"] for e in first if e["type"] == "stopped"] == [3]
    assert not [e for e in first if e["type"] == "result"]
    saved = load_file(str(job_dir / "checkpoints" / "step_000003" / "adapter.safetensors"))
    assert saved and all(name.endswith(("lora_A.weight", "lora_B.weight")) for name in saved)
    rank = 4
    assert all(rank in tensor.shape for tensor in saved.values()), "whole LoRA matrices, not one process's shard"

    config_path = job_dir / "config.json"
    config_path.write_text(json.dumps({**json.loads(config_path.read_text()), "stop_after_steps": None}))
    second = _launch(job_dir, resume=True)
    assert [e["completed"] for e in second if e.get("status") == "resumed"] == [3]
    results = [e for e in second if e["type"] == "result"]
    assert len(results) == 1, "only the main process reports"
    evaluation = results[0]["evaluation"]
    assert evaluation["hardware"]["processes"] == 2 and evaluation["hardware"]["sharded_parameters"] > 0
    assert evaluation["eval_loss"] < 0.5 * evaluation["base_eval_loss"]
    adapter = load_file(str(job_dir / "adapter" / "adapter_model.safetensors"))
    assert adapter.keys() == saved.keys() and all(adapter[k].shape == saved[k].shape for k in saved)
