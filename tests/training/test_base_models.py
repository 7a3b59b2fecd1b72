"""Where base models come from: our store, a real Ollama store layout, a model folder, a GGUF path."""

import hashlib
import json
import os
import shutil

import pytest

from backend.training import base_models
from backend.training.base_models import (
    BaseModelError,
    load_model_and_tokenizer,
    ollama_store_gguf,
    resolve_base,
)


def test_model_folder_is_used_as_is(shared_base, layout):
    base = resolve_base(str(shared_base.hf_dir), layout)
    assert base.hf_dir == shared_base.hf_dir.resolve() and base.gguf_path is None and len(base.sha256) == 64


def test_folder_with_only_pickle_weights_is_refused(tmp_path, layout):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(BaseModelError) as info:
        resolve_base(str(folder), layout)
    assert "pickle" in info.value.message


def test_a_gguf_from_an_ollama_store_is_found(shared_base, base_in_layout, layout, tmp_path, monkeypatch):
    """The layout Ollama writes (manifests/registry.ollama.ai/library/NAME/TAG + blobs/sha256-…),
    built here around the real SmolLM2 GGUF, since no Ollama daemon can be installed."""
    store = tmp_path / "ollama-models"
    digest = "sha256:" + shared_base.sha256
    (store / "blobs").mkdir(parents=True)
    shutil.copy(shared_base.gguf_path, store / "blobs" / digest.replace(":", "-"))
    manifest = store / "manifests" / "registry.ollama.ai" / "library" / "smol" / "latest"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"layers": [{"mediaType": "application/vnd.ollama.image.model", "digest": digest}]}))
    monkeypatch.setenv("OLLAMA_MODELS", str(store))
    assert ollama_store_gguf("smol") == store / "blobs" / digest.replace(":", "-")
    assert ollama_store_gguf("../etc") is None and ollama_store_gguf("nothere") is None
    base = resolve_base("smol:latest", layout)
    assert base.sha256 == shared_base.sha256 and base.gguf_path.parent == store / "blobs"


def test_unknown_base_is_a_clear_error(layout):
    with pytest.raises(BaseModelError) as info:
        resolve_base("no-such-model", layout)
    assert info.value.code == "not_found" and ".gguf" in info.value.message


@pytest.mark.slow
def test_4bit_base_loads_and_trains_a_step_on_cpu(shared_base):
    """bitsandbytes NF4 (the QLoRA path) works on the CPU too, so its code path is tested here."""
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    model, tokenizer = load_model_and_tokenizer(shared_base, quantization="4bit")
    assert any("4bit" in type(m).__name__ for m in model.modules())
    model = get_peft_model(prepare_model_for_kbit_training(model, use_gradient_checkpointing=False),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    batch = tokenizer(["Arr matey, two plus two be four!"], return_tensors="pt")
    loss = model(**batch, labels=batch["input_ids"]).loss
    loss.backward()
    grads = [p.grad for n, p in model.named_parameters() if "lora_" in n and p.grad is not None]
    assert torch.isfinite(loss) and grads and all(torch.isfinite(g).all() for g in grads)


def test_4bit_without_bitsandbytes_fails_clearly_instead_of_training_unquantized(layout, base_in_layout, tmp_path):
    """A machine without bitsandbytes, made by shadowing the package with one that cannot be imported
    (a stand-in for the missing install, named so): the run stops with a quantization error."""
    import json
    import os
    import subprocess
    import sys

    from backend.training.config import TrainConfig
    from backend.training.dataset import SourceConversation, Turn
    from backend.training.runs import prepare_run, trainer_command

    conversations = [SourceConversation(f"c{i}", "t", None, (Turn("user", f"q{i}"), Turn("assistant", f"a{i}"))) for i in range(8)]
    job_dir = prepare_run(layout, TrainConfig(quantization="4bit", max_steps=1, sample_prompts=0), conversations)
    shadow = tmp_path / "no-bitsandbytes" / "bitsandbytes"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named bitsandbytes (not installed on this machine)')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(shadow.parent), *sys.path])}
    completed = subprocess.run(trainer_command(job_dir, resume=False), capture_output=True, text=True, env=env, timeout=600)
    events = [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]
    errors = [e for e in events if e["type"] == "error"]
    assert completed.returncode == 1 and errors and errors[0]["code"] == "quantization", completed.stderr[-2000:]
    assert not any(e["type"] == "progress" and e.get("status", "").startswith("training on") for e in events)
    assert not (job_dir / "adapter").exists()


@pytest.mark.slow
def test_a_model_loading_in_another_thread_does_not_empty_a_dequantised_base(tmp_path):
    """The app loads models in several threads (an import's embedder, a preview's base). Without one
    load at a time, transformers' process-wide loading state left the base's weights empty (3 of 3)."""
    import threading

    from safetensors import safe_open

    from backend.inference.default_models import default_chat_gguf
    from backend.memory.embeddings import Embedder
    from backend.training.base_preparation import prepare_base

    done = threading.Event()
    loads = []

    def keep_loading() -> None:
        while not done.is_set() and len(loads) < 12:  # through the base's metadata and model skeleton, then stop
            loads.append(Embedder())

    loader = threading.Thread(target=keep_loading)
    loader.start()
    try:
        prepare_base(default_chat_gguf(), tmp_path / "base")
    finally:
        done.set()
        loader.join()
    assert loads, "the other thread was loading meanwhile"
    index = json.loads((tmp_path / "base" / "model.safetensors.index.json").read_text())
    with safe_open(str(tmp_path / "base" / index["weight_map"]["model.embed_tokens.weight"]), "pt") as weights:
        assert weights.get_tensor("model.embed_tokens.weight").abs().sum() > 0


def test_a_file_is_hashed_once_until_it_changes(tmp_path, monkeypatch):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF" + b"a" * 1000)
    first = base_models.file_sha256(path)
    assert first == hashlib.sha256(path.read_bytes()).hexdigest()
    opened = []
    real_open = type(path).open
    monkeypatch.setattr(type(path), "open", lambda self, *a, **k: opened.append(self) or real_open(self, *a, **k))
    assert base_models.file_sha256(path) == first and opened == [], "the second call is answered from memory"
    stat = path.stat()
    path.write_bytes(b"GGUF" + b"b" * 1000)  # same size; a new mtime tells it apart
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert base_models.file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest() != first
