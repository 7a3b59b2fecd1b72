"""Inference benchmark: our engine + ollama client vs llama-cpp-python called directly.

    python bench/inference.py [--quick] --json

Same GGUF (SmolLM2-135M Q4_1), same prompt, same greedy settings, same thread count, one run
(the direct side in a fresh process of its own, as the server side is):
- tokps_vs_direct: generation tokens/s through server + client / direct tokens/s (goal >= 0.9).
- ttft_overhead_ms: median time to first token through server + client minus direct (goal <= 50).
- rag: a retrieval-augmented turn broken down (retrieve, prompt build, first token).
- v1_tokps_vs_direct: the same generation through the OpenAI-compatible API and the official
  ``openai`` client / direct tokens/s (goal >= 0.9).
- concurrent8_tokps_vs_single: aggregate tokens/s of 8 streaming clients at once / one client alone
  (reported; one model serves one generation at a time, in arrival order).
- blob_upload_peak_rss_mb: peak RSS of an engine process (its own process, no model loaded) while a
  1 GB blob is uploaded to it (goal <= 200), and its RSS before the upload.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import ollama  # noqa: E402

from backend.config import DataLayout  # noqa: E402
from backend.inference.default_models import default_chat_gguf  # noqa: E402
from backend.inference.engine import EmbeddedEngine  # noqa: E402
from backend.inference.llama_runner import LlamaRunner  # noqa: E402

PROMPT = [{"role": "user", "content": "Write a short story about a lighthouse keeper who befriends a seagull."}]


def run_direct(llama, tokens: int) -> tuple[float, float]:
    started = time.perf_counter()
    first = None
    count = 0
    for chunk in llama.create_chat_completion(messages=PROMPT, stream=True, max_tokens=tokens, temperature=0, seed=1):
        if chunk["choices"][0].get("delta", {}).get("content"):
            count += 1
            first = first or time.perf_counter()
    end = time.perf_counter()
    return (first - started) * 1000, (count - 1) / (end - first)


def run_client(client: ollama.Client, tokens: int) -> tuple[float, float]:
    started = time.perf_counter()
    first = None
    for part in client.chat(model="smollm2", messages=PROMPT, stream=True, options={"num_predict": tokens, "temperature": 0, "seed": 1}):
        if part.message.content:
            first = first or time.perf_counter()
        if part.done:
            count = part.eval_count  # records may carry several tokens; the done record counts them
    end = time.perf_counter()
    return (first - started) * 1000, (count - 1) / (end - first)


def run_openai(oai, tokens: int) -> tuple[float, float]:
    started = time.perf_counter()
    first = None
    count = 0
    for chunk in oai.chat.completions.create(model="smollm2", messages=PROMPT, stream=True, max_tokens=tokens, temperature=0,
                                             seed=1, stream_options={"include_usage": True}):
        if chunk.choices and chunk.choices[0].delta.content:
            first = first or time.perf_counter()
        if chunk.usage:
            count = chunk.usage.completion_tokens
    end = time.perf_counter()
    return (first - started) * 1000, (count - 1) / (end - first)


def concurrent_tokps(client: ollama.Client, clients: int, tokens: int) -> float:
    """Aggregate generated tokens/s of ``clients`` streaming at once (wall time to the last one)."""
    counts: list[int] = []

    def one(index: int) -> None:
        for part in client.chat(model="smollm2", messages=[{"role": "user", "content": f"Tell story number {index} about a fox."}],
                                stream=True, options={"num_predict": tokens, "temperature": 0, "seed": index}):
            if part.done:
                counts.append(part.eval_count)

    started = time.perf_counter()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - started)


def blob_server() -> None:
    """An engine in its own process (no model loaded), for the upload's memory figure."""
    with tempfile.TemporaryDirectory() as home:
        engine = EmbeddedEngine(DataLayout(Path(home))).start()
        print(engine.host, flush=True)
        sys.stdin.read()
        engine.stop()


def blob_upload_rss(size_mb: int = 1024) -> dict[str, float]:
    import httpx
    import psutil

    chunk = os.urandom(1 << 20)
    hasher = hashlib.sha256()
    for _ in range(size_mb):
        hasher.update(chunk)
    server = subprocess.Popen([sys.executable, __file__, "--blob-server"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        host = server.stdout.readline().strip()
        process = psutil.Process(server.pid)
        before = process.memory_info().rss / 2**20
        peak = before
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, process.memory_info().rss / 2**20)
                done.wait(0.005)

        sampler = threading.Thread(target=sample)
        sampler.start()
        started = time.perf_counter()
        response = httpx.post(f"{host}/api/blobs/sha256:{hasher.hexdigest()}", content=(chunk for _ in range(size_mb)), timeout=600)
        seconds = time.perf_counter() - started
        done.set()
        sampler.join()
        response.raise_for_status()
    finally:
        server.stdin.close()
        server.wait(timeout=60)
    return {"blob_upload_peak_rss_mb": round(peak, 1), "blob_engine_rss_before_mb": round(before, 1),
            "blob_upload_mb_per_s": round(size_mb / seconds, 1)}


def direct_baseline(tokens: int, repeats: int) -> None:
    from llama_cpp import Llama

    threads = LlamaRunner()._threads
    llama = Llama(model_path=str(default_chat_gguf()), n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False)
    run_direct(llama, 8)
    print(json.dumps([run_direct(llama, tokens) for _ in range(repeats)]))


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--direct-baseline":
        direct_baseline(int(sys.argv[2]), int(sys.argv[3]))
        return
    if sys.argv[1:] == ["--blob-server"]:
        blob_server()
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    tokens, repeats = (64, 3) if args.quick else (256, 7)
    threads = LlamaRunner()._threads
    # The direct baseline runs in its own process: two llama.cpp instances in one process make their
    # spinning thread pools compete for the cores, which would handicap whichever runs second.
    direct_runs = json.loads(subprocess.run(
        [sys.executable, __file__, "--direct-baseline", str(tokens), str(repeats)],
        check=True, capture_output=True, text=True).stdout)
    with tempfile.TemporaryDirectory() as home:
        engine = EmbeddedEngine(DataLayout(Path(home))).start()
        client = ollama.Client(host=engine.host)
        run_client(client, 8)  # load + warm-up
        client_runs = [run_client(client, tokens) for _ in range(repeats)]
        import openai

        oai = openai.OpenAI(base_url=engine.host + "/v1", api_key="unused")
        run_openai(oai, 8)
        v1_runs = [run_openai(oai, tokens) for _ in range(repeats)]
        single = statistics.median(concurrent_tokps(client, 1, tokens) for _ in range(2))
        eight = concurrent_tokps(client, 8, tokens)
        rag = rag_breakdown(Path(home), client)
        engine.stop()
    blob = blob_upload_rss()
    direct_ttft = statistics.median(r[0] for r in direct_runs)
    client_ttft = statistics.median(r[0] for r in client_runs)
    direct_tokps = statistics.median(r[1] for r in direct_runs)
    client_tokps = statistics.median(r[1] for r in client_runs)
    v1_tokps = statistics.median(r[1] for r in v1_runs)
    result = {
        "quick": args.quick, "tokens": tokens, "repeats": repeats, "threads": threads,
        "tokps_vs_direct": round(client_tokps / direct_tokps, 3), "ttft_overhead_ms": round(client_ttft - direct_ttft, 1),
        "direct": {"tokps": round(direct_tokps, 1), "ttft_ms": round(direct_ttft, 1)},
        "server_client": {"tokps": round(client_tokps, 1), "ttft_ms": round(client_ttft, 1)},
        "v1_tokps_vs_direct": round(v1_tokps / direct_tokps, 3),
        "v1_openai_client": {"tokps": round(v1_tokps, 1), "ttft_ms": round(statistics.median(r[0] for r in v1_runs), 1)},
        "concurrent8_tokps_vs_single": round(eight / single, 3),
        "concurrent": {"single_tokps": round(single, 1), "eight_clients_tokps": round(eight, 1)},
        **blob,
        "rag": rag,
    }
    print(json.dumps(result, indent=None if args.json else 2))


def rag_breakdown(home: Path, client: ollama.Client) -> dict[str, float]:
    """One memory-augmented turn: retrieve, build the prompt, first token."""
    from backend.chat.prompting import build_messages
    from backend.memory.embeddings import get_embedder
    from backend.memory.ingest import import_path
    from backend.memory.search import MemorySearch
    from backend.memory.store import MemoryStore
    from tests.export_factory import simple_conversation, write_chatgpt_export

    export = write_chatgpt_export(home / "export.zip", [
        simple_conversation(f"Note {i}", f"Remember fact number {i}: the locker code is {1000 + i}.", "Noted.", f"f{i}") for i in range(200)])
    store = MemoryStore(home / "rag.duckdb")
    embedder = get_embedder()
    import_path(store, export, embedder)
    searcher = MemorySearch(store, embedder)
    question = "What is the locker code in fact number 42?"
    started = time.perf_counter()
    hits = searcher.search(question, 5)
    retrieved = time.perf_counter()
    messages, _used = build_messages("You are helpful.", [], question, hits, context_tokens=2048)
    built = time.perf_counter()
    for part in client.chat(model="smollm2", messages=messages, stream=True, options={"num_predict": 4, "temperature": 0}):
        if part.message.content:
            break
    first = time.perf_counter()
    store.close()
    return {"retrieve_ms": round((retrieved - started) * 1000, 1), "prompt_build_ms": round((built - retrieved) * 1000, 2),
            "first_token_ms": round((first - built) * 1000, 1)}


if __name__ == "__main__":
    main()
