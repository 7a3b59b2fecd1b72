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
