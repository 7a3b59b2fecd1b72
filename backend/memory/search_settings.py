"""Search tuning knobs, in one place (tests and the benchmark change them at run time)."""

RRF_K = 60  # reciprocal rank fusion constant: 60 is the value from the original RRF paper
# Below this, search is exact: one NumPy product over every vector, about 9 ms per 100k chunks here and
# 1.5 KB of RAM per chunk at 384 dimensions (3 GB at 2M). DuckDB's HNSW index (vss) answers in about
# 55 ms whatever the size (per-query overhead), so it cannot be much faster than exact search below
# millions of chunks, and building it for 1M chunks took over 19 minutes on 2 cores (not finished when
# stopped; bench/memory.py, 2026-11-30), to be redone after every import. Past 2M chunks the matrix
# no longer fits a typical desktop's spare memory and the approximate index takes over.
HNSW_MIN_VECTORS = 2_000_000
HNSW_EF_SEARCH = 128
SNIPPET_CHARS = 240

# Hybrid search (issue 27; chosen on the dev histories of bench/memory_quality.py, see its results file).
TIME_HINTS = True        # read "in May 2023", "the week before my trip", "now" out of the query (memory.time_hints)
CANDIDATES = 50          # each ranking's depth, and the pool the second stage reorders
# Reciprocal rank fusion weights per ranking: the query's meaning, its words, the same two inside the
# window the query names (searched on their own), the fused candidates said inside that window, the
# event a relative window hangs on, the speaker (a question about "I/my" prefers what the person said),
# the date (newest first, for "now" questions; up to the end of the time asked about, latest first,
# for "in May 2023").
# Chosen by `bench/memory_quality.py --quick --tune` on its dev histories (2026-12-06): recall@5 0.44 -> 0.51,
# @10 0.54 -> 0.62 against all weights 1 (speaker and as_of 0.5); the held-out figures are in bench/results/.
FUSION_WEIGHTS = {"semantic": 1.0, "keyword": 1.0, "window_semantic": 0.5, "window_keyword": 1.0, "in_window": 1.0,
                  "anchor": 1.0, "speaker": 1.0, "recency": 1.0, "as_of": 2.0}
