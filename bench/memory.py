"""Memory benchmark: import overhead vs raw encode, re-import speed-up, search latency vs NumPy.

    python bench/memory.py [--quick] --json

Every ratio compares two things measured in this same run on this machine:
- import_vs_encode: first import of a generated export / SentenceTransformer.encode of the same chunk
  texts (goal <= 1.10: parsing, chunking and DuckDB writes add at most 10%).
- reimport_speedup: first import / re-import of the unchanged export (goal >= 20).
- exact_vs_numpy: our exact top-10 (cached vector index + chunk lookup in DuckDB) / a bare NumPy
  brute-force top-10 on the same vectors; duckdb_scan_ms is the filtered path (a DuckDB scan).
- hnsw_speedup and hnsw_recall_at_10: exact / HNSW latency, and recall of HNSW vs exact, at the
  largest size (HNSW is forced on here; the app uses it only past HNSW_MIN_VECTORS). Building it for
  1M chunks took over 19 minutes on 2 cores: --no-hnsw skips it.
- hybrid_vs_numpy: hybrid search (the UI's default and what chat retrieves with: query embedding,
  semantic top-k, BM25 keywords, fusion and the hits' rows) / the NumPy top-k, at the largest size
  (goal <= 5 at 100k chunks; exact_vs_numpy goal <= 1.5).
- search_after_chat_turn_ms / search_after_full_reload_ms: the first hybrid search after a chat turn
  was synced to memory (the vector index replaces that conversation's rows) / after a change that
  reloads every vector (as after an import).
Search sizes are synthetic stores: clustered unit vectors, and chunk text of 40 words drawn from a
40,000-word vocabulary with Zipf frequencies (as words in real text are), so keyword postings have
realistic lengths. --quick: 500 conversations imported, search at 10k and 100k chunks; the full run:
5,000 conversations, search at 10k, 100k and 1M (--sizes and --no-import choose parts). Each size's
figures are also printed to stderr as soon as they are measured.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from backend.importers import chatgpt  # noqa: E402
from backend.memory import search_settings  # noqa: E402
from backend.memory.chunking import text_hash  # noqa: E402
from backend.memory.embeddings import get_embedder  # noqa: E402
from backend.memory.ingest import Chunker, import_path  # noqa: E402
from backend.memory.keyword_index import rebuild_keyword_index, refresh_keyword_index  # noqa: E402
from backend.memory.search import MemorySearch, SearchFilters  # noqa: E402
from backend.memory.store import MemoryStore  # noqa: E402
from backend.memory.vector_index import bump_generation  # noqa: E402
from tests.export_factory import ChatGPTConversation, write_chatgpt_export  # noqa: E402

WORDS = ("garden river bread tax guitar python marathon cat lisbon solar chess tomato violin budget "
         "mountain recipe kernel poem winter travel doctor sleep coffee paint rocket novel").split()
VOCABULARY = 40_000
WORDS_PER_CHUNK = 40
HYBRID_QUERIES = ["garden bread river", "violin winter poem", "tax budget doctor", "kernel python rocket",
                  "coffee and sleep", "chess openings for a novel"]


def vocabulary(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Pseudo-words with Zipf probabilities; the real WORDS sit at ranks 40, 80, … so queries match
    moderately common terms."""
    syllables = ["ka", "lo", "mi", "ne", "ru", "ta", "vi", "so", "pe", "du", "ga", "ri", "fo", "ze", "bu", "ha"]
    words = ["".join(syllables[(i >> (4 * j)) % 16] for j in range(1 + i % 3)) + f"{i % 97}" for i in range(VOCABULARY)]
    for rank, word in enumerate(WORDS):
        words[40 * (rank + 1)] = word
    weights = 1.0 / np.arange(1, VOCABULARY + 1) ** 1.07
    return np.array(words), weights / weights.sum()


def numpy_top_k(matrix: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    """Brute-force cosine top-k on normalised vectors: the baseline."""
    scores = matrix @ query
    top = np.argpartition(-scores, min(k, len(scores) - 1))[:k]
    return top[np.argsort(-scores[top])]


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def generate_export(path: Path, conversations: int, seed: int = 7) -> Path:
    rng = random.Random(seed)
    items = []
    for i in range(conversations):
        conversation = ChatGPTConversation(f"Conversation {i}", f"bench-{i}", 1_600_000_000 + i * 3600)
        for _turn in range(2):
            conversation.add("user", " ".join(sentence(rng, rng.randint(6, 16)) for _ in range(rng.randint(1, 3))))
            conversation.add("assistant", " ".join(sentence(rng, rng.randint(8, 20)) for _ in range(rng.randint(2, 6))))
        items.append(conversation)
    return write_chatgpt_export(path, items)


def write_big_export(path: Path, conversations: int, tool_output_bytes: int, seed: int = 11) -> Path:
    """A conversations.json written one conversation at a time (the bench never holds it whole): each
    has two exchanges and, when ``tool_output_bytes`` > 0, a code-execution output of that size, as
    real exports grow with tool output that is kept out of memory."""
    rng = random.Random(seed)
    filler = " ".join(WORDS[:200])
    with path.open("w") as handle:
        handle.write("[")
        for i in range(conversations):
            conversation = ChatGPTConversation(f"Conversation {i}", f"big-{i}", 1_600_000_000 + i * 3600)
            conversation.add("user", " ".join(sentence(rng, rng.randint(6, 16)) for _ in range(2)))
            if tool_output_bytes:
                conversation.add("assistant", {"content_type": "code", "language": "python", "text": "print(data)"}, recipient="python")
                output = (filler * (tool_output_bytes // len(filler) + 1))[:tool_output_bytes]
                conversation.add("tool", {"content_type": "execution_output", "text": output}, author={"role": "tool", "name": "python", "metadata": {}})
            conversation.add("assistant", " ".join(sentence(rng, rng.randint(8, 20)) for _ in range(3)))
            handle.write(("," if i else "") + json.dumps(conversation.to_dict()))
        handle.write("]")
    return path


IMPORT_CHILD = """
import resource, sys
from backend.memory.embeddings import get_embedder
from backend.memory.ingest import import_path
from backend.memory.store import MemoryStore
result = import_path(MemoryStore(sys.argv[2]), sys.argv[1], get_embedder())
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, result.chunks)
"""


def import_peak_rss_mb(export: Path, database: Path) -> tuple[int, int]:
    """Peak RSS (MB) of a fresh process importing ``export``, and the memory chunks it stored."""
    completed = subprocess.run([sys.executable, "-c", IMPORT_CHILD, str(export), str(database)], check=True, capture_output=True,
                               text=True, cwd=Path(__file__).resolve().parent.parent)
    peak, messages = completed.stdout.split()[-2:]
    return int(peak), int(messages)


def bench_big_import(workdir: Path, gigabytes: float, conversations: int) -> dict[str, float]:
    """Import peak memory of a multi-gigabyte export against the same conversations without the bulk."""
    per_conversation = int(gigabytes * 1024**3 / conversations)
    big = write_big_export(workdir / "big.json", conversations, per_conversation)
    small = write_big_export(workdir / "small.json", conversations, 0)
    started = time.perf_counter()
    big_peak, big_chunks = import_peak_rss_mb(big, workdir / "big.duckdb")
    big_seconds = time.perf_counter() - started
    small_peak, small_chunks = import_peak_rss_mb(small, workdir / "small.duckdb")
    assert big_chunks == small_chunks, "the bulk is tool output, kept out of memory"
    return {"export_gb": round(big.stat().st_size / 1024**3, 2), "conversations": conversations, "import_s": round(big_seconds, 1),
            "peak_rss_mb": big_peak, "same_without_bulk_peak_rss_mb": small_peak,
            "peak_rss_vs_without_bulk": round(big_peak / small_peak, 2)}


def chunk_texts_of(path: Path, embedder) -> list[str]:
    """The distinct chunk texts the import embeds (the same chunker, in the embedder's tokens)."""
    chunker = Chunker.for_embedder(embedder)
    texts: dict[str, str] = {}
    for conversation in chatgpt.iter_conversations(path):
        for _, _, chunk in chunker.chunks_of(conversation):
            texts[text_hash(chunk)] = chunk
    return list(texts.values())


def bench_import(workdir: Path, conversations: int) -> dict[str, float]:
    export = generate_export(workdir / "export.zip", conversations)
    embedder = get_embedder()
    texts = chunk_texts_of(export, embedder)
    embedder.embed(texts[:64])  # warm-up, shared by both sides
    started = time.perf_counter()
    embedder.embed(texts)
    encode_s = time.perf_counter() - started

    store = MemoryStore(workdir / "memory.duckdb")
    started = time.perf_counter()
    first = import_path(store, export, embedder)
    import_s = time.perf_counter() - started
    started = time.perf_counter()
    again = import_path(store, export, embedder)
    reimport_s = time.perf_counter() - started
    assert again.unchanged == conversations and again.vectors_embedded == 0
    store.close()
    return {
        "conversations": conversations, "chunks": first.chunks, "encode_s": round(encode_s, 3),
        "import_s": round(import_s, 3), "reimport_s": round(reimport_s, 3),
        "import_vs_encode": round(import_s / encode_s, 3), "reimport_speedup": round(import_s / reimport_s, 1),
    }


def synthetic_store(path: Path, n: int, dim: int, rng: np.random.Generator) -> tuple[MemoryStore, np.ndarray]:
    """n chunks with clustered unit vectors (real embeddings cluster too) and keyword text."""
    centers = rng.standard_normal((256, dim)).astype(np.float32)
    vectors = centers[rng.integers(0, 256, n)] + 0.6 * rng.standard_normal((n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store = MemoryStore(path)
    db = store.cursor()
    db.execute(f"CREATE TABLE embeddings (text_hash VARCHAR PRIMARY KEY, vector FLOAT[{dim}] NOT NULL)")
    db.execute("INSERT INTO embedding_space VALUES ('all-MiniLM-L6-v2', ?)", [dim])
    words, probabilities = vocabulary(rng)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        ids = [f"h{i}" for i in range(start, stop)]
        drawn = words[rng.choice(VOCABULARY, size=(stop - start, WORDS_PER_CHUNK), p=probabilities)]
        texts = [" ".join(row) for row in drawn]
        embeddings_rows = pa.table({"text_hash": ids, "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors[start:stop].ravel()), dim)})  # noqa: F841
        chunk_rows = pa.table({"id": [f"c{i}" for i in range(start, stop)], "conversation_id": ["bench"] * (stop - start),  # noqa: F841
                               "message_id": ["m"] * (stop - start), "source_id": ["bench"] * (stop - start),
                               "position": [0] * (stop - start), "role": ["user"] * (stop - start),
                               "created_at": [None] * (stop - start), "text": texts, "text_hash": ids})
        db.execute("INSERT INTO embeddings SELECT * FROM embeddings_rows")
        db.execute("INSERT INTO chunks SELECT id, conversation_id, message_id, source_id, position, role, created_at::TIMESTAMP, text, text_hash FROM chunk_rows")
    db.execute("INSERT INTO conversations VALUES ('bench', 'bench', 'bench', 'Bench', NULL, NULL, 'x', 0, now())")
    return store, vectors


def median_ms(function, repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        timings.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(timings), 3)


def chat_turn_search_ms(store: MemoryStore, searcher: MemorySearch, vectors: np.ndarray) -> tuple[float, float]:
    """The first hybrid search after a chat turn was synced to memory (one conversation's chunk
    replaced: the vector index updates those rows), and after a change that reloads every vector."""
    db = store.cursor()
    db.execute("INSERT OR REPLACE INTO conversations VALUES ('bench-chat', 'bench', 'bench-chat', 'Chat', NULL, NULL, 'x', 0, now())")
    timings = {"turn": [], "reload": []}
    for turn in range(6):
        kind = "turn" if turn % 2 == 0 else "reload"
        with store.write_lock:
            db.execute("DELETE FROM chunks WHERE conversation_id = 'bench-chat'")
            db.execute("INSERT OR REPLACE INTO embeddings VALUES (?, ?)", [f"chat-{turn}", vectors[turn].tolist()])
            db.execute("INSERT INTO chunks VALUES (?, 'bench-chat', 'm', 'bench', 0, 'assistant', NULL, ?, ?)",
                       [f"chat-{turn}", f"turn {turn} about the tomato and the fern", f"chat-{turn}"])
        if kind == "turn":
            refresh_keyword_index(store, {"bench-chat"})  # what a chat turn's sync does
        else:
            refresh_keyword_index(store, {"bench-chat"})
            with store.write_lock:
                bump_generation(store)  # as after an import: everything may have changed
        started = time.perf_counter()
        searcher.search("tomato fern", 10, "hybrid")
        timings[kind].append((time.perf_counter() - started) * 1000)
    return round(statistics.median(timings["turn"]), 1), round(statistics.median(timings["reload"]), 1)


def bench_search(workdir: Path, sizes: list[int], queries: int, hnsw: bool = True) -> list[dict[str, float]]:
    rng = np.random.default_rng(3)
    embedder = get_embedder()
    results = []
    default_hnsw_min = search_settings.HNSW_MIN_VECTORS
    for n in sizes:
        store, vectors = synthetic_store(workdir / f"search-{n}.duckdb", n, embedder.dimension, rng)
        searcher = MemorySearch(store, embedder)
        probes = vectors[rng.integers(0, n, queries)] + 0.1 * rng.standard_normal((queries, embedder.dimension)).astype(np.float32)
        probes /= np.linalg.norm(probes, axis=1, keepdims=True)
        ids = np.array([f"c{i}" for i in range(n)])
        numpy_ms = median_ms(lambda vectors=vectors, probes=probes: [numpy_top_k(vectors, q, 10) for q in probes], 3) / queries
        search_settings.HNSW_MIN_VECTORS = n + 1  # exact at every size here; the app's own choice is measured below
        bump_generation(store)
        exact_ms = median_ms(lambda s=searcher, probes=probes: [s.nearest(q, 10) for q in probes], 3) / queries  # cached index
        assert searcher.index.kind == "numpy"
        everything = SearchFilters(roles=("user",))  # matches every chunk, but forces the DuckDB scan
        scanned = probes if n < 1_000_000 else probes[:5]  # a scan of 1M chunks takes seconds
        scan_ms = median_ms(lambda s=searcher, f=everything, probes=scanned: [s.nearest(q, 10, f) for q in probes], 3 if n < 1_000_000 else 1) / len(scanned)
        exact_sets = [{c for c, _ in searcher.nearest(q, 10)} for q in probes]
        numpy_agree = np.mean([len(exact_sets[i] & set(ids[numpy_top_k(vectors, q, 10)])) / 10 for i, q in enumerate(probes)])
        started = time.perf_counter()
        rebuild_keyword_index(store)  # as after an import; it also tells the vector index to reload
        keyword_rebuild_s = time.perf_counter() - started
        hnsw_figures = {}
        if hnsw:
            search_settings.HNSW_MIN_VECTORS = 1  # HNSW forced, at every size
            started = time.perf_counter()
            searcher.nearest(probes[0], 10)
            build_s = time.perf_counter() - started
            assert searcher.index.kind == "hnsw"
            hnsw_ms = median_ms(lambda s=searcher, probes=probes: [s.nearest(q, 10) for q in probes], 3) / queries
            recall = np.mean([len({c for c, _ in searcher.nearest(q, 10)} & exact_sets[i]) / 10 for i, q in enumerate(probes)])
            hnsw_figures = {"hnsw_ms": round(hnsw_ms, 3), "hnsw_build_s": round(build_s, 2), "hnsw_speedup": round(exact_ms / hnsw_ms, 2),
                            "hnsw_recall_at_10": round(float(recall), 3)}
        search_settings.HNSW_MIN_VECTORS = default_hnsw_min  # hybrid runs as the app does
        if n < default_hnsw_min:
            bump_generation(store)  # back to exact; past the threshold the HNSW index just built is the app's own
        hybrid_ms = hybrid_median_ms(searcher)
        hybrid_index = searcher.index.kind
        extra = {}
        if hybrid_index == "hnsw":  # what exact search would give at this size, for the README's choice
            search_settings.HNSW_MIN_VECTORS = n + 1
            bump_generation(store)
            extra["hybrid_exact_ms"] = hybrid_median_ms(searcher)
            extra["hybrid_exact_vs_numpy"] = round(extra["hybrid_exact_ms"] / numpy_ms, 2)
        after_turn, after_reload = chat_turn_search_ms(store, searcher, vectors)  # (exact past the threshold too)
        search_settings.HNSW_MIN_VECTORS = default_hnsw_min
        results.append({
            "chunks": n, "numpy_ms": round(numpy_ms, 3), "exact_ms": round(exact_ms, 3), "duckdb_scan_ms": round(scan_ms, 3),
            **hnsw_figures,
            "hybrid_ms": hybrid_ms, "hybrid_vs_numpy": round(hybrid_ms / numpy_ms, 2), "hybrid_index": hybrid_index, **extra,
            "keyword_rebuild_s": round(keyword_rebuild_s, 1),
            "exact_vs_numpy": round(exact_ms / numpy_ms, 2),
            "exact_agrees_with_numpy": round(float(numpy_agree), 3),
            "search_after_chat_turn_ms": after_turn, "search_after_full_reload_ms": after_reload,
        })
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)  # a long run's sizes survive a stop
        store.close()
    return results


def hybrid_median_ms(searcher: MemorySearch) -> float:
    for query in HYBRID_QUERIES:  # warm: the first search loads the indexes
        searcher.search(query, 10, "hybrid")
    return statistics.median(median_ms(lambda s=searcher, q=query: s.search(q, 10, "hybrid"), 3) for query in HYBRID_QUERIES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="Small sizes: a few minutes on 2 cores.")
    parser.add_argument("--json", action="store_true", help="Print only the JSON result.")
    parser.add_argument("--sizes", type=str, default=None, help="Search sizes, comma-separated (default: by --quick).")
    parser.add_argument("--no-import", action="store_true", help="Skip the import measurement.")
    parser.add_argument("--no-hnsw", action="store_true", help="Skip the forced-HNSW measurement (its build takes over 15 min at 1M).")
    parser.add_argument("--big-export-gb", type=float, default=None,
                        help="Also import an export of this size and report its peak memory (the full run: 2).")
    args = parser.parse_args()
    big_gb = args.big_export_gb if args.big_export_gb is not None else (0 if args.quick else 2)
    conversations = 500 if args.quick else 5000
    sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    if args.sizes:
        sizes = [int(size) for size in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        big = bench_big_import(workdir, big_gb, 5000) if big_gb else None
        importing = None if args.no_import else bench_import(workdir, conversations)
        searching = bench_search(workdir, sizes, 20 if args.quick else 50, hnsw=not args.no_hnsw)
    largest = searching[-1]
    result = {
        "quick": args.quick,
        **({"import_vs_encode": importing["import_vs_encode"], "reimport_speedup": importing["reimport_speedup"],
            "import": importing} if importing else {}),
        "exact_vs_numpy": largest["exact_vs_numpy"], "hybrid_vs_numpy": largest["hybrid_vs_numpy"],
        "hnsw_recall_at_10": largest.get("hnsw_recall_at_10"), "hnsw_speedup": largest.get("hnsw_speedup"), "search": searching,
        **({"big_import": big, "big_import_peak_rss_vs_without_bulk": big["peak_rss_vs_without_bulk"]} if big else {}),
    }
    print(json.dumps(result, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
