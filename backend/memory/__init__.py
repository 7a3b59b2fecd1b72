"""The memory store: DuckDB schema and migrations, embeddings, keyword/semantic/hybrid search."""
