"""Training benchmark: our trainer vs plain transformers.Trainer + peft with batch 1 (the original
app's setup), same base (SmolLM2-135M), same data, same LoRA, one epoch each, measured in one run.

    python bench/training.py [--quick] --json

Keys: tokps_vs_baseline (ours / baseline real tokens per second, goal >= 1.5), val_loss and
val_loss_baseline (the same held-out split, same masking), peak_rss_vs_baseline (ours / baseline),
goal_met. Then today's trainer against its previous state, one seed, at the product's default batch
size: tokps_bf16_weights_vs_fp32 and peak_rss_bf16_weights_vs_fp32 (frozen base weights stored in
bf16 vs fp32 weights cast by autocast on every matmul), tokps_packed_vs_unpacked (several samples
per row, attention kept inside each), tokps_auto_vs_fp32 (the default precision against no autocast),
with each variant's figures under ``variants``. Each side runs once per seed (LoRA initialisation and data order; --seeds, default 3): the
keys are means over the seeds, val_loss_difference is ours minus the baseline seed by seed (mean and
standard error), and every run is in the JSON. On a few dozen validation conversations one seed's
loss moves by more than the difference being measured, so a single run would decide nothing.

Ours runs at batch 2 (length-grouped), the baseline at batch 1. Each side gets the learning rate that
suits its batch size (the baseline's for batch 1; ours scaled linearly: square-root scaling, the rule
derived for Adam, trained clearly worse at these few steps) and a warmup over about the same number of
samples. Ours trains with its default precision (`auto`: bf16 autocast over fp32 weights on CPUs with
AMX or CUDA, else fp32) and its attention choice (plain matmul attention for short batches on CPU);
both sides are evaluated in fp32 by the same code. Each side runs in a fresh process so its peak RSS
is its own; larger batches hold more activations, so ours peaks higher.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import statistics
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
OURS_BATCH = int(os.environ.get("BENCH_OURS_BATCH", "2"))  # env overrides are for exploring, not for the record
OURS_LR = float(os.environ.get("BENCH_OURS_LR", BASELINE_LR * OURS_BATCH))  # linear scaling of the learning rate with the batch size (Goyal et al., 2017)
BASELINE_WARMUP = 5  # steps of batch 1: 5 samples
OURS_WARMUP = max(1, round(BASELINE_WARMUP / OURS_BATCH))  # about the same number of samples warmed up


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


def variant_dir(job_dir: Path, name: str, **overrides: object) -> Path:
    """A copy of a prepared run (same data, same seed) whose config differs only in ``overrides``."""
    import shutil

    from backend.training.config import TrainConfig

    target = job_dir.with_name(f"{job_dir.name}-{name}")
    shutil.copytree(job_dir, target, ignore=shutil.ignore_patterns("checkpoints", "best", "adapter"))
    config = TrainConfig.model_validate_json((job_dir / "config.json").read_text())
    (target / "config.json").write_text(config.model_copy(update=overrides).model_dump_json(indent=2))
    return target


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
    from transformers import Trainer, TrainingArguments, set_seed

    from backend.training.base_models import BaseModel, load_model_and_tokenizer
    from backend.training.config import TrainConfig
    from backend.training.trainer import evaluate, read_samples

    config = TrainConfig.model_validate_json((job_dir / "config.json").read_text())
    set_seed(config.seed)  # before the LoRA weights are drawn, as our trainer does; Trainer seeds only later
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
    parser.add_argument("--seeds", type=int, default=3, help="Runs per side, each with its own seed; results are averaged.")
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

    runs: dict[str, list[dict]] = {"baseline": [], "ours": []}
    with tempfile.TemporaryDirectory() as home:
        layout = DataLayout(Path(home))
        for seed in range(42, 42 + args.seeds):
            config = TrainConfig(epochs=1, batch_size=OURS_BATCH, learning_rate=OURS_LR, warmup_steps=OURS_WARMUP, eval_every=10_000,
                                 checkpoint_every=10_000, sample_prompts=0, seed=seed, **LORA)
            job_dir = prepare_run(layout, config, conversations(80 if args.quick else 240))
            for side in ("baseline", "ours"):
                runs[side].append({"seed": seed, **run_side(side, job_dir)})
        # Today's trainer against the one before it, at the product's default batch size (one seed each:
        # speed hardly depends on it): frozen weights in bf16 vs fp32 under autocast, and packing.
        config = TrainConfig(epochs=1, eval_every=10_000, checkpoint_every=10_000, sample_prompts=0, seed=42, **LORA)
        job_dir = prepare_run(layout, config, conversations(80 if args.quick else 240))
        planned = json.loads((job_dir / "config.json").read_text())
        # bf16 weights against fp32 weights both under bf16 autocast (forced, so the ratio exists on any
        # CPU); "current" is the defaults (precision auto), against plain fp32.
        variants = {name: run_side("ours", variant_dir(job_dir, name, **overrides)) for name, overrides in (
            ("fp32", {"precision": "fp32"}), ("fp32_frozen_weights", {"precision": "bf16-mixed", "bf16_base_weights": False}),
            ("bf16_weights", {"precision": "bf16-mixed"}), ("current", {}), ("packed", {"packing": True}))}

    def mean(side: str, key: str) -> float:
        return statistics.fmean(run[key] for run in runs[side])

    result: dict = {
        "quick": args.quick, "seeds": args.seeds,
        "tokps_bf16_weights_vs_fp32": round(variants["bf16_weights"]["tokens_per_s"] / variants["fp32_frozen_weights"]["tokens_per_s"], 3),
        "peak_rss_bf16_weights_vs_fp32": round(variants["bf16_weights"]["peak_rss_mb"] / variants["fp32_frozen_weights"]["peak_rss_mb"], 3),
        "tokps_packed_vs_unpacked": round(variants["packed"]["tokens_per_s"] / variants["current"]["tokens_per_s"], 3),
        # what precision auto chose here against plain fp32 (no autocast at all)
        "tokps_auto_vs_fp32": round(variants["current"]["tokens_per_s"] / variants["fp32"]["tokens_per_s"], 3),
        "variants": {**variants, "batch_size": planned["batch_size"], "learning_rate": planned["learning_rate"]},
        "cuda": "not measured: this benchmark trains on the CPU (CUDA figures: bench/personal.py on a GPU machine)",
    }
    result["auto_precision"] = variants["current"]["precision"]
    if args.seeds:  # --seeds 0 measures only today's trainer against its previous state
        tokps = mean("ours", "tokens_per_s") / mean("baseline", "tokens_per_s")
        # A seed sets both sides' LoRA initialisation and shuffling, so pair them by seed: mean difference and its standard error.
        differences = [o["val_loss"] - b["val_loss"] for o, b in zip(runs["ours"], runs["baseline"])]
        spread = statistics.stdev(differences) / math.sqrt(len(differences)) if len(differences) > 1 else None
        val_loss, val_loss_baseline = mean("ours", "val_loss"), mean("baseline", "val_loss")
        result.update({
            "tokps_vs_baseline": round(tokps, 2), "val_loss": round(val_loss, 4), "val_loss_baseline": round(val_loss_baseline, 4),
            "peak_rss_vs_baseline": round(max(r["peak_rss_mb"] for r in runs["ours"]) / max(r["peak_rss_mb"] for r in runs["baseline"]), 3),
            "val_loss_difference": {"mean": round(statistics.fmean(differences), 4), "standard_error": spread and round(spread, 4)},
            "goal_met": tokps >= 1.5 and val_loss <= val_loss_baseline,
            "batch_size": {"ours": OURS_BATCH, "baseline": 1},
            "learning_rate": {"ours": OURS_LR, "baseline": BASELINE_LR}, "warmup_steps": {"ours": OURS_WARMUP, "baseline": BASELINE_WARMUP},
            "runs": runs,
        })
    print(json.dumps(result, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
