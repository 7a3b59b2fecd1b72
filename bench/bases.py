"""Real bases: what preparing and training a base of N parameters costs, against what the app said first.

    python bench/bases.py [--quick] [--sizes 0.135b,0.5b,1.2b,3b] [--steps 3] --json

Per base (the packaged SmolLM2-135M; synthetic llama GGUFs of 0.5B and 1.2B, and 3B without
--quick: random weights, SmolLM2's tokenizer, llama.cpp's converter, q8_0): ``prepare_s``,
``prepare_peak_rss_gb`` (the preparation in a child process of its own), ``cache_gb`` (the prepared
folder), the goal ``prepare_peak_rss_gb <= 0.25 x bf16 size + 1 GB``; then a few training steps with
the product's defaults through the real trainer subprocess: ``train_peak_rss_gb``,
``train_peak_vram_gb`` (CUDA only), ``tokens_per_s``, and ``estimate_vs_measured`` (the plan's
estimate shown before the run divided by what the run measured, for peak memory and for the run's
wall time from process start to the saved adapter; goal within 0.75-1.25). Everything lives in a temporary folder that is removed at the end.
On a lent GPU, ``--sizes 8b`` runs an 8B-class base (QLoRA is then the default path).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHAPES = {"0.3b": "0.3b-llama", "0.5b": "0.5b-llama", "1.2b": "1.2b-llama", "3b": "3b-llama", "8b": "8b-llama"}
PREPARE = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from backend.model_loading import peak_rss_bytes
    from backend.training.base_preparation import prepare_base
    started = time.time()
    prepare_base(Path(sys.argv[1]), Path(sys.argv[2]))
    print(json.dumps({"seconds": time.time() - started, "peak": peak_rss_bytes()}))
""")


def conversations(n: int):
    from backend.training.dataset import SourceConversation, Turn

    rng = random.Random(3)
    words = "lisbon tram garden tomato guitar marathon sourdough kayak budget chess piano".split()
    items = []
    for i in range(n):
        topic = " ".join(rng.choice(words) for _ in range(rng.randint(20, 60)))
        items.append(SourceConversation(f"c{i}", f"Talk {i}", None, (
            Turn("user", f"Tell me about {topic}?"), Turn("assistant", f"Sure: {topic}. " * rng.randint(2, 5)))))
    return items


def bench_base(label: str, gguf: Path, work: Path, steps: int) -> dict:
    from backend.config import DataLayout
    from backend.training.base_models import file_sha256
    from backend.training.base_preparation import preparation_cost
    from backend.training.config import TrainConfig
    from backend.training.run_folder import RunFolder
    from backend.training.runs import prepare_run, trainer_command

    layout = DataLayout(work / f"home-{label}")
    cost = preparation_cost(gguf)
    cache = layout.hf_base_dir(file_sha256(gguf))
    cache.parent.mkdir(parents=True, exist_ok=True)
    child = subprocess.run([sys.executable, "-c", PREPARE, str(gguf), str(cache)], capture_output=True, text=True,
                           cwd=Path(__file__).resolve().parent.parent)
    if child.returncode != 0:
        raise RuntimeError(child.stderr[-3000:])
    prepared = json.loads(child.stdout.strip().splitlines()[-1])
    bf16_gb = cost.parameters * 2 / 1e9
    row = {"base": label, "parameters": cost.parameters, "gguf_gb": round(gguf.stat().st_size / 1e9, 3),
           "prepare_s": round(prepared["seconds"], 1), "prepare_peak_rss_gb": round(prepared["peak"] / 1e9, 3),
           "prepare_estimate_vs_measured": round(cost.peak_ram_bytes / prepared["peak"], 2),
           "prepare_goal_gb": round(0.25 * bf16_gb + 1.0737, 3),
           "cache_gb": round(sum(f.stat().st_size for f in cache.iterdir()) / 1e9, 3)}
    row["prepare_goal_met"] = row["prepare_peak_rss_gb"] <= row["prepare_goal_gb"]

    config = TrainConfig(base=str(gguf), max_steps=steps, sample_prompts=0, validation_percent=10, checkpoint_every=1000)
    job_dir = prepare_run(layout, config, conversations(40))
    plan = RunFolder(job_dir).plan()
    started = time.time()
    run = subprocess.run(trainer_command(job_dir, resume=False), capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    wall = time.time() - started
    events = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    result = next((e for e in events if e["type"] == "result"), None)
    if result is None:
        raise RuntimeError(run.stderr[-3000:])
    evaluation = result["evaluation"]
    measured = evaluation["measured"]
    training = [e for e in events if e.get("status") == "training"]
    row.update({
        "path": plan.get("path"), "train_steps": len(training), "tokens_per_s": evaluation["tokens_per_s"],
        "train_peak_rss_gb": round(measured["peak_rss_bytes"] / 1e9, 3),
        "train_peak_vram_gb": round(measured["peak_vram_bytes"] / 1e9, 3) if measured.get("peak_vram_bytes") else None,
        "estimate_vs_measured": {
            "ram": round(plan.get("ram_bytes", plan["memory_bytes"]) / measured["peak_rss_bytes"], 2),
            "vram": round(plan["vram_bytes"] / measured["peak_vram_bytes"], 2) if measured.get("peak_vram_bytes") and plan.get("vram_bytes") else None,
            "minutes": round(plan["estimated_minutes"] * 60 / wall, 2)},
        "train_wall_s": round(wall, 1)})
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="135M, 0.5B and 1.2B only (3B takes about 10 minutes more on 2 cores).")
    parser.add_argument("--sizes", default=None, help="Comma-separated: 0.135b (the packaged model), 0.3b, 0.5b, 1.2b, 3b, 8b.")
    parser.add_argument("--steps", type=int, default=3, help="Training steps per base (the first includes warm-up).")
    parser.add_argument("--json", action="store_true", help="Print the results as JSON.")
    args = parser.parse_args()
    sizes = (args.sizes or ("0.135b,0.5b,1.2b" if args.quick else "0.135b,0.5b,1.2b,3b")).split(",")

    from backend.inference.default_models import default_chat_gguf
    from backend.training.synthetic_base import write_synthetic_gguf

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-bases-") as folder:
        work = Path(folder)
        for size in sizes:
            if size == "0.135b":
                gguf = default_chat_gguf()
            else:
                built = time.time()
                gguf = write_synthetic_gguf(work / f"{size}.gguf", SHAPES[size])
                print(f"built {size} in {time.time() - built:.0f} s", file=sys.stderr)
            rows.append(bench_base(size, gguf, work, args.steps))
            print(json.dumps(rows[-1]), file=sys.stderr)
            if size != "0.135b":
                gguf.unlink()
    report = {"bases": rows, "goals": {
        "prepare_peak_within_bound": all(r["prepare_goal_met"] for r in rows),
        "estimates_within_25_percent": all(0.75 <= v <= 1.25 for r in rows for v in r["estimate_vs_measured"].values() if v is not None)}}
    print(json.dumps(report, indent=2) if args.json else report)


if __name__ == "__main__":
    main()
