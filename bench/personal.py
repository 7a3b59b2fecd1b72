"""Personal-model benchmark: does the Train button, with its defaults, give a person a model that
learned their facts and their assistant's voice?

    python bench/personal.py [--quick] --json

A generated personal corpus (bench/personal_corpus.py: one fictional person, recurring people, pets,
places, work and preferences, an assistant voice with fixed habits, a quarter in Portuguese; 300
conversations of 2–8 turns, 80 with --quick) is imported as a ChatGPT export into a fresh data dir
and trained through the bridge's ``training_start`` with nothing but an adapter name: exactly what the
Train button sends by default, on the default base (SmolLM2-135M-Instruct).

Keys:
- ``ppl_reduction``: 1 − tuned/base perplexity on the run's own held-out conversations (the figure
  the app shows; goal ≥ 0.30).
- ``style_hit_rate``: share of held-out prompts (first messages of conversations that were never
  imported) whose greedy reply opens with a learned greeting and carries a learned sign-off
  (``shows_the_voice``; goal ≥ 0.8); ``style_hit_rate_base`` is the base model's.
- ``fact_recall`` / ``fact_recall_base``: share of held-out questions about recurring facts (worded
  differently from the training conversations) whose greedy reply contains the fact; the tuned model
  answers without memory (no retrieval), only from what it learned.
- ``minutes`` (import to adapter), ``train_minutes``, ``peak_rss_mb`` (the trainer process),
  ``plan`` (what the defaults chose), ``steps_run``, ``best_step``, ``gpu``.
- ``hardware``: where the trainer ran (device, its name, precision, quantization), as it recorded it.
Replies come from the app's own path: the run saved as an adapter, deployed to the embedded engine
(llama.cpp, the GGUF LoRA), asked through the Ollama API with the app's system prompt, temperature 0,
up to 160 new tokens.

``--training-stack-only`` is for a machine that carries only the training stack (the lent GPU
machine: no DuckDB, embedding model or llama.cpp there): the export goes through the same ChatGPT
importer straight into training conversations, without the memory store (so the held-out split is
drawn from other ids), and replies come from transformers' greedy generation of the same adapter.
``--quantization 4bit`` (bench-only, not the Train button's default) trains a QLoRA run: the base in
4-bit NF4 through bitsandbytes; the run fails rather than fall back to full precision.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench.personal_corpus import corpus, fact_questions, held_out_prompts, recalls, shows_the_voice, write_chatgpt_export  # noqa: E402

GOALS = {"ppl_reduction": 0.30, "style_hit_rate": 0.8}


def train_with_defaults(home: Path, count: int) -> tuple[dict, dict, float]:
    from app.main import build_api
    from backend.config import DataLayout
    from backend.memory.embeddings import get_embedder
    from backend.memory.ingest import import_path
    from backend.memory.store import get_store

    layout = DataLayout.current()
    export = write_chatgpt_export(corpus(count), home / "conversations.json")
    import_path(get_store(layout), export, get_embedder())
    api, _ = build_api("bench", layout)
    plan = None

    def on_event(event: dict) -> None:
        nonlocal plan
        if event.get("type") == "run_started":
            plan = event["plan"]
        elif event.get("type") == "progress" and event.get("loss") is not None and event["completed"] % 20 == 0:
            print(f"  step {event['completed']}/{event['total']} loss {event['loss']:.3f} {event['tokens_per_s']:.0f} tok/s",
                  file=sys.stderr)
        elif event.get("type") in ("eval", "early_stop"):
            print(f"  {event}", file=sys.stderr)

    api._jobs.subscribe(on_event)
    started = time.time()
    answer = api.training_start({"adapter_name": "personal"})
    if not answer["ok"]:
        raise SystemExit(f"training_start failed: {answer['error']}")
    record = api._jobs.wait(answer["data"]["job_id"])
    if record.state != "succeeded":
        raise SystemExit(f"training {record.state}: {record.error}")
    return record.result, plan or {}, (time.time() - started) / 60


def train_training_stack_only(home: Path, count: int, quantization: str) -> tuple[dict, dict, float]:
    """The export parsed by the ChatGPT importer into trainable turns (what the memory store keeps
    for training), then the default TrainConfig through prepare_run and the trainer process."""
    import subprocess

    from backend.config import DataLayout
    from backend.importers.chatgpt import iter_conversations
    from backend.training.config import TrainConfig
    from backend.training.dataset import SourceConversation, Turn
    from backend.training.runs import prepare_run, trainer_command

    layout = DataLayout.current()
    export = write_chatgpt_export(corpus(count), home / "conversations.json")
    conversations = [
        SourceConversation(item.external_id, item.title, item.created_at,
                           tuple(Turn(m.role, m.text) for m in item.messages if m.trainable and m.on_active_branch))
        for item in iter_conversations(export)]
    started = time.time()
    job_dir = prepare_run(layout, TrainConfig(adapter_name="personal", quantization=quantization), conversations)
    plan = json.loads((job_dir / "plan.json").read_text())
    result = None
    with subprocess.Popen(trainer_command(job_dir, resume=False), stdout=subprocess.PIPE, text=True,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"}) as process:
        for line in process.stdout:
            event = json.loads(line) if line.startswith("{") else {}
            if event.get("type") == "result":
                result = event
            elif event.get("type") in ("eval", "early_stop", "error") or "training on" in str(event.get("status")):
                print(f"  {event}", file=sys.stderr)
    if result is None:
        raise SystemExit(f"training failed (exit {process.returncode})")
    return {"job_dir": str(job_dir), **result}, plan, (time.time() - started) / 60


def generated_replies(job_dir: Path, prompts: list[str], system_prompt: str) -> tuple[list[str], list[str]]:
    """Greedy replies of the base and of the adapter through transformers (batched, left-padded)."""
    import torch
    from peft import PeftModel

    from backend.training.base_models import BaseModel, load_model_and_tokenizer
    from backend.training.config import TrainConfig

    config = TrainConfig.model_validate_json((job_dir / "config.json").read_text())
    model, tokenizer = load_model_and_tokenizer(BaseModel(config.base, None, Path(config.base_hf_dir), config.base_sha256))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = PeftModel.from_pretrained(model.to(device), str(job_dir / "adapter")).eval()
    tokenizer.padding_side = "left"
    chats = [tokenizer.apply_chat_template([{"role": "system", "content": system_prompt}, {"role": "user", "content": p}],
                                           add_generation_prompt=True, tokenize=False) for p in prompts]

    def generate() -> list[str]:
        batch = tokenizer(chats, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        with torch.no_grad():
            output = model.generate(**batch, max_new_tokens=160, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        return [text.strip() for text in tokenizer.batch_decode(output[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)]

    tuned = generate()
    with model.disable_adapter():
        base = generate()
    return base, tuned


def replies(job_dir: Path, prompts: list[str], system_prompt: str) -> tuple[list[str], list[str]]:
    """Greedy replies of the base and of the fine-tune, the way a user gets them: the run saved as an
    adapter (safetensors + GGUF), deployed to the embedded engine as a model, asked through the
    Ollama API."""
    import ollama

    from backend.config import DataLayout
    from backend.inference.engine import EmbeddedEngine
    from backend.training.deploy import deploy_adapter
    from backend.training.export import export_run

    layout = DataLayout.current()
    export_run(layout, job_dir, "personal")
    engine = EmbeddedEngine(layout).start()
    try:
        client = ollama.Client(host=engine.host)
        deploy_adapter(client, layout, "personal", "personal")
        options = {"temperature": 0, "seed": 0, "num_predict": 160}

        def ask(model: str, prompt: str) -> str:
            messages = [{"role": "system", "content": system_prompt}, {"role": "user", "content": prompt}]
            return client.chat(model=model, messages=messages, options=options).message.content or ""

        return [ask("smollm2", p) for p in prompts], [ask("personal", p) for p in prompts]
    finally:
        engine.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="80 conversations instead of 300 (within 15 minutes on 2 cores).")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--training-stack-only", action="store_true",
                        help="No memory store or engine on this machine: import straight to training, replies from transformers.")
    parser.add_argument("--quantization", choices=("none", "4bit"), default="none",
                        help="Bench-only: 4bit trains a QLoRA run (the Train button's default is none).")
    args = parser.parse_args()
    count, style_prompts = (80, 16) if args.quick else (300, 40)

    import torch

    with tempfile.TemporaryDirectory(prefix="orch-personal-") as tmp:
        home = Path(tmp)
        os.environ["ORCH_MIND_HOME"] = str(home)
        from backend.config import DataLayout, load_settings

        started = time.time()
        if args.training_stack_only:
            result, plan, train_minutes = train_training_stack_only(home, count, args.quantization)
        else:
            if args.quantization != "none":
                parser.error("--quantization is measured with --training-stack-only")
            result, plan, train_minutes = train_with_defaults(home, count)
        peak_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        job_dir = Path(result["job_dir"])
        evaluation = result["evaluation"]
        style = held_out_prompts(style_prompts)
        facts = fact_questions()
        system_prompt = load_settings(DataLayout.current()).system_prompt
        ask = generated_replies if args.training_stack_only else replies
        base, tuned = ask(job_dir, [p for _, p in style] + [q for q, _ in facts], system_prompt)
        minutes = (time.time() - started) / 60

    n = len(style)
    report = {
        "conversations": count, "quick": args.quick,
        "ppl_base": round(evaluation["base_perplexity"], 3), "ppl_tuned": round(evaluation["perplexity"], 3),
        "ppl_reduction": round(1 - evaluation["perplexity"] / evaluation["base_perplexity"], 4),
        "style_hit_rate": round(sum(map(shows_the_voice, tuned[:n])) / n, 3),
        "style_hit_rate_base": round(sum(map(shows_the_voice, base[:n])) / n, 3),
        "fact_recall": round(sum(recalls(r, a) for r, (_, a) in zip(tuned[n:], facts)) / len(facts), 3),
        "fact_recall_base": round(sum(recalls(r, a) for r, (_, a) in zip(base[n:], facts)) / len(facts), 3),
        "minutes": round(minutes, 2), "train_minutes": round(train_minutes, 2), "peak_rss_mb": round(peak_rss_mb, 1),
        "plan": {k: plan.get(k) for k in ("samples", "batch_size", "steps", "epochs", "learning_rate", "eval_every", "estimated_minutes")},
        "steps_run": evaluation.get("steps_run"), "best_step": evaluation.get("best_step"),
        "stopped_early": evaluation.get("stopped_early"), "tokens_per_s": round(evaluation.get("tokens_per_s") or 0, 1),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none: no GPU on this machine, CPU figures only",
        "hardware": evaluation.get("hardware"), "quantization": args.quantization,
        "replies_from": "transformers generate" if args.training_stack_only else "embedded engine (llama.cpp) via the Ollama API",
        "examples": [{"prompt": p, "base": b[:300], "tuned": t[:300]}
                     for p, b, t in list(zip([p for _, p in style], base, tuned))[:3]
                     + list(zip([q for q, _ in facts], base[n:], tuned[n:]))[:3]],
    }
    report["goal_met"] = all(report[k] >= v for k, v in GOALS.items()) and (not args.quick or minutes <= 15)
    print(json.dumps(report, indent=2 if not args.json else None, ensure_ascii=False))


if __name__ == "__main__":
    main()
