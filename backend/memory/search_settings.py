"""Search tuning knobs, in one place (tests and the benchmark change them at run time)."""

RRF_K = 60  # reciprocal rank fusion constant: 60 is the value from the original RRF paper
# Below this, an exact NumPy product (about 5 ms at 50k vectors here) beats a DuckDB HNSW query (about
# 30 ms, mostly per-query overhead); the matrix then costs up to ~770 MB at 384 dimensions, so past it
# the approximate index takes over. bench/memory.py measures both.
HNSW_MIN_VECTORS = 500_000
HNSW_EF_SEARCH = 128
SNIPPET_CHARS = 240
