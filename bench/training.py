"""Training benchmark: our trainer vs plain transformers.Trainer + peft with batch 1 (the original
app's setup), same base (SmolLM2-135M), same data, same LoRA, one epoch each, measured in one run.

    python bench/training.py [--quick] --json

Keys: tokps_vs_baseline (ours / baseline real tokens per second, goal >= 1.5), val_loss and
val_loss_baseline (the same held-out split, same masking), peak_rss_vs_baseline (ours / baseline).
Each side runs in a fresh process so its peak RSS is its own. Each side gets the learning rate that
suits its batch size (the baseline's for batch 1; ours scaled linearly by 4), and a warmup over about
the same number of samples (5 steps of 1, 1 step of 4); all are in the JSON. Ours trains with its
default precision (`auto`: bf16 autocast with fp32 weights on CPUs with AVX512-BF16/AMX, else fp32;
the precision used is in the JSON); both sides are evaluated in fp32 with the same code.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

LORA = {"rank": 8, "alpha": 16}
BASELINE_LR = 5e-4  # for batch 1
OURS_BATCH = int(os.environ.get("BENCH_OURS_BATCH", "4"))  # env overrides are for exploring, not for the record
OURS_LR = float(os.environ.get("BENCH_OURS_LR", BASELINE_LR * OURS_BATCH))  # linear scaling of the learning rate with the batch size (Goyal et al., 2017)
BASELINE_WARMUP = 5  # steps of batch 1: 5 samples
OURS_WARMUP = 1  # one step of batch 4: about the same number of samples warmed up


def conversations(n: int):
    from backend.training.dataset import SourceConversation, Turn

    rng = random.Random(5)
    items = []
    for i in range(n):
        a, b = rng.randint(1, 99), rng.randint(1, 99)
        filler = " ".join(rng.choice(["please", "quickly", "now", "kindly", "for my homework"]) for _ in range(rng.randint(0, 12)))
        items.append(SourceConversation(f"b{i}", f"Sum {i}", None, (
            Turn("user", f"What is {a} plus {b}? {filler}".strip()),
            Turn("assistant", f"Arr matey, {a} plus {b} be {a + b}! " + "Yo ho ho. " * rng.randint(0, 6)))))
    return items


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def side_ours(job_dir: Path) -> None:
    import contextlib
    import io

    from backend.training import trainer

    buffer = io.StringIO()
    started = time.time()
    with contextlib.redirect_stdout(buffer):
        trainer.run(job_dir, resume=False)
    events = [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]
    result = next(e for e in events if e["type"] == "result")
    training = [e for e in events if e.get("status") == "training"]
    precision = next((e["precision"] for e in events if "precision" in e), "fp32")
    print(json.dumps({"tokens_per_s": training[-1]["tokens_per_s"], "val_loss": result["evaluation"]["eval_loss"], "precision": precision,
                      "base_val_loss": result["evaluation"]["base_eval_loss"], "seconds": round(time.time() - started, 1),
                      "peak_rss_mb": round(peak_rss_mb(), 1)}))


def side_baseline(job_dir: Path) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Trainer, TrainingArguments

    from backend.training.base_models import BaseModel, load_model_and_tokenizer
    from backend.training.config import TrainConfig
    from backend.training.trainer import evaluate, read_samples

    config = TrainConfig.model_validate_json((job_dir / "config.json").read_text())
    model, tokenizer = load_model_and_tokenizer(BaseModel(config.base, None, Path(config.base_hf_dir), config.base_sha256))
    model = get_peft_model(model, LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout,
                                             target_modules=config.target_modules, task_type="CAUSAL_LM"))
    train = read_samples(job_dir / "train.jsonl")
    validation = read_samples(job_dir / "validation.jsonl")

    class Rows(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(train)

        def __getitem__(self, index: int) -> dict:
            return {"input_ids": torch.tensor(train[index]["input_ids"]), "labels": torch.tensor(train[index]["labels"]),
                    "attention_mask": torch.ones(len(train[index]["input_ids"]), dtype=torch.long)}

    args = TrainingArguments(output_dir=str(job_dir / "baseline"), per_device_train_batch_size=1, num_train_epochs=1,
                             learning_rate=BASELINE_LR, warmup_steps=BASELINE_WARMUP, logging_steps=50,
                             save_strategy="no", report_to=[], use_cpu=True, seed=config.seed, disable_tqdm=True)
    started = time.time()
    Trainer(model=model, args=args, train_dataset=Rows()).train()
    seconds = time.time() - started
    tokens = sum(len(s["input_ids"]) for s in train)
    val_loss = evaluate(model, validation, tokenizer.pad_token_id, torch.device("cpu"), 8)
    print(json.dumps({"tokens_per_s": round(tokens / seconds, 1), "val_loss": val_loss, "seconds": round(seconds, 1),
                      "peak_rss_mb": round(peak_rss_mb(), 1)}))


def run_side(side: str, job_dir: Path) -> dict:
    completed = subprocess.run([sys.executable, __file__, "--side", side, str(job_dir)], capture_output=True, text=True)
    if completed.returncode != 0:
        raise SystemExit(f"{side} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="80 conversations instead of 240.")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--side", choices=["ours", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("job_dir", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        (side_ours if args.side == "ours" else side_baseline)(Path(args.job_dir))
        return
    from backend.config import DataLayout
    from backend.training.config import TrainConfig
    from backend.training.runs import prepare_run

    with tempfile.TemporaryDirectory() as home:
        layout = DataLayout(Path(home))
        config = TrainConfig(epochs=1, batch_size=OURS_BATCH, learning_rate=OURS_LR, warmup_steps=OURS_WARMUP, eval_every=10_000,
                             checkpoint_every=10_000, sample_prompts=0, **LORA)
        job_dir = prepare_run(layout, config, conversations(80 if args.quick else 240))
        baseline = run_side("baseline", job_dir)
        ours = run_side("ours", job_dir)
    result = {
        "quick": args.quick,
        "tokps_vs_baseline": round(ours["tokens_per_s"] / baseline["tokens_per_s"], 2),
        "val_loss": round(ours["val_loss"], 4), "val_loss_baseline": round(baseline["val_loss"], 4),
        "peak_rss_vs_baseline": round(ours["peak_rss_mb"] / baseline["peak_rss_mb"], 3),
        "learning_rate": {"ours": OURS_LR, "baseline": BASELINE_LR}, "warmup_steps": {"ours": OURS_WARMUP, "baseline": BASELINE_WARMUP}, "ours": ours, "baseline": baseline, "cuda": "not measured: no GPU was lent to this session",
    }
    print(json.dumps(result, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
