"""Synthetic GGUF bases of real sizes: random weights, SmolLM2's real tokenizer, llama.cpp's converter.

For tests and benchmarks of what a base's size costs (preparation, training memory, export, deploy)
at 0.3-8B parameters, where no such model can be downloaded. Their answers are noise; their memory,
disk and time are those of a real model of the same shape. The GGUF is written by llama.cpp's own
``convert_hf_to_gguf.py``, so it is the file a real conversion makes. Llama shapes only: llama.cpp's
qwen2 converter does not recognise SmolLM2's pre-tokenizer, and its gemma3 converter wants a
sentencepiece model; the packaged Gemma 3 270M is the second architecture the tests use.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from backend.model_loading import MODEL_LOADS


@dataclass(frozen=True)
class BaseShape:
    architecture: str  # "llama" (qwen2 and gemma3 configs are built too, for converters that take them)
    hidden: int
    layers: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int | None = None


SHAPES = {  # vocabulary: SmolLM2's 49,152 tokens
    "0.3b-llama": BaseShape("llama", 1024, 16, 4096, 16, 4),
    "0.5b-llama": BaseShape("llama", 1536, 16, 4096, 12, 4),
    "1.2b-llama": BaseShape("llama", 2048, 16, 8192, 32, 8),       # Llama-3.2-1B's shape
    "3b-llama": BaseShape("llama", 3072, 28, 8192, 24, 8),         # Llama-3.2-3B's shape
    "8b-llama": BaseShape("llama", 4096, 32, 14336, 32, 8),        # Llama-3.1-8B's shape
}


def _config(shape: BaseShape, vocab: int, tokenizer: object) -> object:
    from transformers import Gemma3TextConfig, LlamaConfig, Qwen2Config

    common = {"vocab_size": vocab, "hidden_size": shape.hidden, "num_hidden_layers": shape.layers,
              "intermediate_size": shape.intermediate, "num_attention_heads": shape.heads,
              "num_key_value_heads": shape.kv_heads, "max_position_embeddings": 4096,
              "bos_token_id": getattr(tokenizer, "bos_token_id", None), "eos_token_id": getattr(tokenizer, "eos_token_id", None)}
    if shape.architecture == "llama":
        return LlamaConfig(**common, tie_word_embeddings=True, rope_theta=500000.0)
    if shape.architecture == "qwen2":
        return Qwen2Config(**common, tie_word_embeddings=True)
    if shape.architecture == "gemma3":
        return Gemma3TextConfig(**common, head_dim=shape.head_dim or shape.hidden // shape.heads, sliding_window=512)
    raise ValueError(f"No synthetic {shape.architecture} base; use llama, qwen2 or gemma3.")


def write_synthetic_gguf(output: Path, shape: BaseShape | str, *, outtype: str = "q8_0", seed: int = 0) -> Path:
    """Build a random model of ``shape``, save it with SmolLM2's tokenizer and convert it to a GGUF
    of ``outtype`` (q8_0, f16, bf16 …) at ``output``. Peak memory: the model in bf16 (2 bytes per
    parameter), plus what the converter holds; the bf16 folder is written to a temporary dir beside
    ``output`` and removed."""
    import torch

    from backend.inference.default_models import default_chat_gguf
    from backend.runtime import llama_tool_command
    from backend.training.export import llama_tools_dir

    shape = SHAPES[shape] if isinstance(shape, str) else shape
    with MODEL_LOADS:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        gguf = default_chat_gguf()
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        config = _config(shape, len(tokenizer), tokenizer)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
    model = model.to_empty(device="cpu").to(torch.bfloat16)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "norm" in name:
                parameter.fill_(0.0 if shape.architecture == "gemma3" else 1.0)  # gemma scales by (1 + w)
            else:
                parameter.normal_(0.0, 0.02, generator=generator)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=".synthetic-") as folder:
        model.save_pretrained(folder, max_shard_size="2GB")
        del model
        tokenizer.save_pretrained(folder)
        tools = llama_tools_dir()
        command = llama_tool_command(tools, "convert_hf_to_gguf.py", [folder, "--outtype", outtype, "--outfile", str(output)])
        env = {**os.environ, "PYTHONPATH": str(tools / "gguf-py"), "NO_LOCAL_GGUF": ""}
        completed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=3600)
        if completed.returncode != 0 or not output.exists():
            raise RuntimeError("convert_hf_to_gguf.py failed: " + (completed.stderr or completed.stdout)[-2000:])
    return output
