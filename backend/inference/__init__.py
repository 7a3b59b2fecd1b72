"""Inference: the Ollama client side and the embedded Ollama-compatible engine."""
