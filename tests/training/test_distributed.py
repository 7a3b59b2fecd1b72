"""The same trainer under torchrun: two CPU processes (DDP over gloo on 127.0.0.1), sharded data.

This is the path `accelerate launch --multi_gpu` takes on GPUs (README); here it runs on CPU so it
is tested without one.
"""

import json
import math
import os
import subprocess
import sys

import pytest

from backend.loopback_server import free_port
from backend.training.config import TrainConfig
from backend.training.runs import prepare_run
from tests.training.conftest import pirate_conversations


@pytest.mark.slow
def test_the_trainer_runs_data_parallel_on_two_processes(layout, base_in_layout):
    config = TrainConfig(epochs=1, batch_size=4, rank=4, alpha=8, learning_rate=2e-3, eval_every=100, checkpoint_every=5,
                         sample_prompts=0, validation_percent=10)
    job_dir = prepare_run(layout, config, pirate_conversations(64))
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(free_port()), "-m", "backend.training.trainer", str(job_dir)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=900,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert completed.returncode == 0, completed.stderr[-4000:]
    events = [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]
    results = [e for e in events if e["type"] == "result"]
    assert len(results) == 1, "only the main process reports"
    steps = [e for e in events if e["type"] == "progress" and e.get("status") == "training"]
    train_samples = sum(1 for _ in (job_dir / "train.jsonl").open())
    assert steps[-1]["total"] == math.ceil(math.ceil(train_samples / 4) / 2), "each process takes half of the batches"
    evaluation = results[0]["evaluation"]
    assert evaluation["eval_loss"] < 0.5 * evaluation["base_eval_loss"]
    assert (job_dir / "adapter" / "adapter_model.safetensors").exists()
