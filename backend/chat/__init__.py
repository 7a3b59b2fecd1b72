"""Chat: sessions persisted in the memory store, prompt building, memory-augmented answers."""
