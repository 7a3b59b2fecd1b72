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
Replies come from the app's own path: the run saved as an adapter, deployed to the embedded engine
(llama.cpp, the GGUF LoRA), asked through the Ollama API with the app's system prompt, temperature 0,
up to 160 new tokens.
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
    answer = api.training_start(adapter_name="personal")
    if not answer["ok"]:
        raise SystemExit(f"training_start failed: {answer['error']}")
    record = api._jobs.wait(answer["data"]["job_id"])
    if record.state != "succeeded":
        raise SystemExit(f"training {record.state}: {record.error}")
    return record.result, plan or {}, (time.time() - started) / 60


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
    args = parser.parse_args()
    count, style_prompts = (80, 16) if args.quick else (300, 40)

    import torch

    with tempfile.TemporaryDirectory(prefix="orch-personal-") as tmp:
        home = Path(tmp)
        os.environ["ORCH_MIND_HOME"] = str(home)
        from backend.config import DataLayout, load_settings

        started = time.time()
        result, plan, train_minutes = train_with_defaults(home, count)
        peak_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        job_dir = Path(result["job_dir"])
        evaluation = result["evaluation"]
        style = held_out_prompts(style_prompts)
        facts = fact_questions()
        system_prompt = load_settings(DataLayout.current()).system_prompt
        base, tuned = replies(job_dir, [p for _, p in style] + [q for q, _ in facts], system_prompt)
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
        "gpu": "cuda" if torch.cuda.is_available() else "none: no GPU on this machine, CPU figures only",
        "examples": [{"prompt": p, "base": b[:300], "tuned": t[:300]}
                     for p, b, t in list(zip([p for _, p in style], base, tuned))[:3]
                     + list(zip([q for q, _ in facts], base[n:], tuned[n:]))[:3]],
    }
    report["goal_met"] = all(report[k] >= v for k, v in GOALS.items()) and (not args.quick or minutes <= 15)
    print(json.dumps(report, indent=2 if not args.json else None, ensure_ascii=False))


if __name__ == "__main__":
    main()
