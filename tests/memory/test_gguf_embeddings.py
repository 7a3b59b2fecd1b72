"""Memory embeddings from an embedding GGUF through llama.cpp. The GGUF is the packaged MiniLM
converted with llama.cpp's own converter, so its vectors can be held against sentence-transformers'."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from backend.inference.model_files import add_gguf
from backend.inference.model_store import ModelStore
from backend.memory.embeddings import EmbeddingModelError, GGUFEmbedder, check_embedding_model, embedding_models, get_embedder
from backend.memory.ingest import import_path
from backend.memory.search import MemorySearch
from tests.export_factory import simple_conversation, write_chatgpt_export

TEXTS = ["The cat sat on the mat.", "A kitten rested on the rug.", "Quarterly tax filing deadline", "Olá, como vai você?",
         "word " * 700]  # longer than MiniLM's 512-token window: truncated, not an error


@pytest.fixture(scope="module")
def minilm_gguf(tmp_path_factory):
    from backend.memory.embeddings import default_embedding_model_path
    from backend.training.export import llama_tools_dir

    out = tmp_path_factory.mktemp("embed") / "all-MiniLM-L6-v2.f16.gguf"
    subprocess.run([sys.executable, str(llama_tools_dir() / "convert_hf_to_gguf.py"), str(default_embedding_model_path()),
                    "--outfile", str(out), "--outtype", "f16"], check=True, capture_output=True, timeout=300)
    return out


def test_an_embedding_gguf_gives_the_same_vectors_as_sentence_transformers(minilm_gguf, layout):
    manifest = add_gguf(ModelStore(layout), minilm_gguf, name="minilm")
    assert manifest.info["architecture"] == "bert" and manifest.info["embedding_model"] is True
    ours = GGUFEmbedder("minilm:latest", minilm_gguf).embed(TEXTS)
    reference = get_embedder().embed(TEXTS)
    assert ours.shape == reference.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1, atol=1e-5)
    assert float(np.min(np.sum(ours[:4] * reference[:4], axis=1))) > 0.9999


def test_settings_accept_embedding_ggufs_only(minilm_gguf, layout):
    store = ModelStore(layout)
    store.register_defaults()
    add_gguf(store, minilm_gguf, name="minilm")
    add_gguf(store, minilm_gguf, name="multilingual-e5-small")
    check_embedding_model("minilm", layout)
    with pytest.raises(EmbeddingModelError) as chat_model:
        check_embedding_model("smollm2", layout)
    assert "chat model" in chat_model.value.message
    offered = {m["name"]: m for m in embedding_models(layout)}
    assert offered["all-MiniLM-L6-v2"]["multilingual"] is False and offered["minilm:latest"]["kind"] == "gguf"
    assert offered["multilingual-e5-small:latest"]["multilingual"] is True


def test_import_and_search_through_the_gguf_embedder(minilm_gguf, layout, store, tmp_path):
    add_gguf(ModelStore(layout), minilm_gguf, name="minilm-search")
    embedder = get_embedder("minilm-search:latest")
    assert isinstance(embedder, GGUFEmbedder)
    export = write_chatgpt_export(tmp_path / "export.zip", [
        simple_conversation("Roses", "How do I prune roses?", "Prune roses in late winter above an outward-facing bud.", "roses"),
        simple_conversation("Taxes", "When are taxes due?", "The filing deadline is in April.", "taxes")])
    import_path(store, export, embedder)
    hits = MemorySearch(store, embedder).search("cutting back rose bushes", 2, "semantic")
    assert hits[0].title == "Roses"
