"""The embedded engine driven by the official ollama client, with the real SmolLM2 GGUF."""

import hashlib
import json
import re

import httpx
import ollama
import pytest

from backend.inference.engine_server import ENGINE_DEFAULTS
from tests.conftest import wait_for


def direct_llama():
    from llama_cpp import Llama

    from backend.inference.default_models import default_chat_gguf

    return Llama(model_path=str(default_chat_gguf()), n_ctx=2048, verbose=False)


# The engine samples with Ollama's defaults (repeat penalty 1.1 …); llama.cpp called directly gets them too.
ENGINE_DEFAULTS_BUT_TEMPERATURE = {k: v for k, v in ENGINE_DEFAULTS.items() if k != "temperature"}


@pytest.fixture
def client(engine):
    return ollama.Client(host=engine.host)


def test_default_model_is_listed_and_shown(client):
    names = [m.model for m in client.list().models]
    assert names == ["smollm2:latest"]
    shown = client.show("smollm2")
    assert shown.details.format == "gguf" and "FROM " in shown.modelfile
    client.generate(model="smollm2", prompt="", keep_alive="5m")  # load it
    running = {m.model: m for m in client.ps().models}
    assert running["smollm2:latest"].details.family == "llama" and running["smollm2:latest"].size > 50_000_000


def test_streaming_chat_yields_tokens_then_a_done_record(client):
    parts = list(client.chat(model="smollm2", stream=True, options={"seed": 1, "num_predict": 24, "temperature": 0},
                             messages=[{"role": "user", "content": "What is the capital of France?"}]))
    assert len(parts) > 3 and all(not p.done for p in parts[:-1])
    final = parts[-1]
    assert final.done and final.done_reason in ("stop", "length")
    assert final.eval_count == len(parts) - 1 and final.total_duration > final.eval_duration > 0
    assert final.prompt_eval_count > 5
    text = "".join(p.message.content for p in parts)
    direct = direct_llama().create_chat_completion(messages=[{"role": "user", "content": "What is the capital of France?"}],
                                                   max_tokens=24, temperature=0, seed=1, **ENGINE_DEFAULTS_BUT_TEMPERATURE)
    assert text == direct["choices"][0]["message"]["content"], "the server returns exactly what llama.cpp generated"


def test_non_streaming_generate_matches_streamed_text_at_fixed_seed(client):
    options = {"seed": 7, "num_predict": 16, "temperature": 0}
    whole = client.generate(model="smollm2", prompt="Name a colour.", stream=False, options=options)
    streamed = "".join(p.response for p in client.generate(model="smollm2", prompt="Name a colour.", stream=True, options=options))
    assert whole.done and whole.response == streamed and whole.response.strip()


def test_protocol_is_ndjson(engine):
    with httpx.stream("POST", f"{engine.host}/api/chat", json={"model": "smollm2", "messages": [{"role": "user", "content": "hi"}],
                                                               "options": {"num_predict": 4}}) as response:
        assert response.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in response.iter_lines() if line]
    assert lines[-1]["done"] is True and "created_at" in lines[0]


def test_bad_requests_get_ollama_style_errors_and_the_server_stays_up(engine, client):
    with pytest.raises(ollama.ResponseError) as unknown:
        client.chat(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    assert unknown.value.status_code == 404 and "not found" in unknown.value.error
    with pytest.raises(ollama.ResponseError) as traversal:
        client.chat(model="../../etc/passwd", messages=[{"role": "user", "content": "hi"}])
    assert traversal.value.status_code == 400 and "invalid model name" in traversal.value.error
    malformed = httpx.post(f"{engine.host}/api/chat", content=b"{not json", headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400 and "invalid JSON" in malformed.json()["error"]
    with pytest.raises(ollama.ResponseError) as too_long:
        client.chat(model="smollm2", messages=[{"role": "user", "content": "word " * 5000}])
    assert too_long.value.status_code == 400 and "too long" in too_long.value.error
    bad_digest = httpx.head(f"{engine.host}/api/blobs/sha256:../../x")
    assert bad_digest.status_code in (400, 404)
    assert client.list().models, "the server still answers"


def test_create_and_delete_a_model_from_base(client, engine):
    client.create(model="terse", from_="smollm2", system="Answer in one word.", parameters={"temperature": 0})
    assert "terse:latest" in [m.model for m in client.list().models]
    assert "Answer in one word." in client.show("terse").modelfile
    client.delete("terse")
    assert "terse:latest" not in [m.model for m in client.list().models]
    with pytest.raises(ollama.ResponseError):
        client.delete("terse")


def test_blob_upload_checks_the_digest_and_refuses_non_gguf_adapters(client, engine, tmp_path):
    fake = tmp_path / "adapter.gguf"
    fake.write_bytes(b"NOTGGUF" * 10)
    digest = client.create_blob(fake)
    assert digest == "sha256:" + hashlib.sha256(fake.read_bytes()).hexdigest()
    wrong = httpx.post(f"{engine.host}/api/blobs/sha256:{'0' * 64}", content=b"data")
    assert wrong.status_code == 400 and "digest mismatch" in wrong.json()["error"]
    with pytest.raises(ollama.ResponseError) as refused:
        client.create(model="broken", from_="smollm2", adapters={"adapter.gguf": digest})
    assert "not a GGUF LoRA adapter" in refused.value.error
    assert "broken:latest" not in [m.model for m in client.list().models], "a failed create lists nothing"


def test_embed_returns_normalised_vectors_that_rank_meaning(client, engine):
    response = client.embed(model="smollm2", input=["The cat sat on the mat.", "A kitten rested on the rug.", "Quarterly tax filing deadline"])
    vectors = response.embeddings
    assert len(vectors) == 3 and len(vectors[0]) == 576
    dot = lambda a, b: sum(x * y for x, y in zip(a, b))  # noqa: E731
    assert abs(dot(vectors[0], vectors[0]) - 1) < 1e-3
    assert dot(vectors[0], vectors[1]) > dot(vectors[0], vectors[2])
    bad = httpx.post(f"{engine.host}/api/embed", json={"model": "smollm2", "input": [1, 2]})
    assert bad.status_code == 400 and "input must be" in bad.json()["error"]



def test_keep_alive_unloads_after_idle_and_zero_unloads_now(client, engine):
    client.generate(model="smollm2", prompt="hi", keep_alive="1s", options={"num_predict": 1})
    shown = client.ps().models
    assert [m.model for m in shown] == ["smollm2:latest"] and shown[0].expires_at.year > 2000
    assert wait_for(lambda: not client.ps().models), "unloaded once its keep_alive ran out"
    client.generate(model="smollm2", prompt="", keep_alive=-1)  # Ollama's way to preload and pin
    assert client.ps().models[0].expires_at.year == 9999, "pinned"
    client.generate(model="smollm2", prompt="", keep_alive=0)
    assert client.ps().models == [], "keep_alive 0 unloads at once"
    bad = httpx.post(f"{engine.host}/api/generate", json={"model": "smollm2", "prompt": "hi", "keep_alive": "soon"})
    assert bad.status_code == 400 and "keep_alive" in bad.json()["error"]


def test_options_are_honoured(client):
    prompt = [{"role": "user", "content": "Summarise: " + "the river runs past the old mill. " * 40}]  # ~400 tokens
    with pytest.raises(ollama.ResponseError) as narrow:
        client.chat(model="smollm2", messages=prompt, options={"num_predict": 2, "num_ctx": 256})
    assert narrow.value.status_code == 400 and "context of 256" in narrow.value.error
    assert {m.context_length for m in client.ps().models if m.model == "smollm2:latest"} == {256}
    wide = client.chat(model="smollm2", messages=prompt, options={"num_predict": 2, "num_ctx": 2048})
    assert wide.done and 256 < wide.prompt_eval_count < 2048
    assert {m.context_length for m in client.ps().models if m.model == "smollm2:latest"} == {2048}

    prompt = "Write one sentence about the sea."

    def ask(options: dict) -> str:
        # llama.cpp reuses the cached prefix of the previous prompt, and a different split of the
        # prompt into batches can flip a near-tie: every compared answer starts from the same cache.
        client.generate(model="smollm2", prompt="Something else.", options={"num_predict": 1})
        return client.generate(model="smollm2", prompt=prompt, options=options).response

    greedy = ask({"temperature": 0, "num_predict": 20})
    assert ask({"temperature": 1.5, "top_k": 1, "num_predict": 20}) == greedy, "top_k 1 leaves only the most likely token"
    hot = {"temperature": 1.5, "top_k": 0, "top_p": 1.0, "num_predict": 24}
    same = {ask({**hot, "seed": 11}) for _ in range(2)}
    assert len(same) == 1, "a seed makes sampling repeatable"
    assert ask({**hot, "seed": 12}) not in same
    assert ask({**hot, "min_p": 1.0, "seed": 11}) == greedy, "min_p 1 keeps only the most likely token"

    def most_repeated_word(options: dict) -> int:
        client.generate(model="smollm2", prompt="Something else.", options={"num_predict": 1})
        words = re.findall(r"[a-z]+", client.generate(model="smollm2", prompt=" ".join(["apple"] * 8), raw=True, options=options).response.lower())
        return max(map(words.count, words))

    greedy_text = {"temperature": 0, "num_predict": 12}
    assert most_repeated_word({**greedy_text, "repeat_penalty": 1.0}) > most_repeated_word({**greedy_text, "repeat_penalty": 3.0}), \
        "a repeat penalty keeps the model from repeating itself"
    counted = client.generate(model="smollm2", prompt="Count from 1 to 20, separated by commas.", options={"temperature": 0, "stop": ["7"]})
    assert "7" not in counted.response and "6" in counted.response
    capped = client.generate(model="smollm2", prompt=prompt, options={"num_predict": 3})
    assert capped.eval_count == 3 and capped.done_reason == "length"
    thought = client.chat(model="smollm2", messages=[{"role": "user", "content": "hi"}], think=True, options={"num_predict": 4})
    assert thought.message.content and not thought.message.thinking, "think is ignored by a model that does not think"


def test_copy_pull_push_and_the_legacy_embeddings_endpoint(client, engine):
    client.create(model="helper", from_="smollm2", system="You are terse.")
    client.copy("helper", "helper-copy")
    assert {"helper:latest", "helper-copy:latest"} <= {m.model for m in client.list().models}
    client.delete("helper")
    assert "You are terse." in client.show("helper-copy").modelfile
    assert client.generate(model="helper-copy", prompt="hi", options={"num_predict": 2}).done, "the copy stands on its own"
    client.delete("helper-copy")
    with pytest.raises(ollama.ResponseError) as missing:
        client.copy("nothing-here", "x")
    assert missing.value.status_code == 404

    for call in (lambda: client.pull("llama3.2"), lambda: client.push("smollm2")):
        with pytest.raises(ollama.ResponseError) as offline:
            call()
        assert offline.value.status_code == 400 and "offline" in offline.value.error and "orch-mind models add" in offline.value.error

    legacy = client.embeddings(model="smollm2", prompt="The cat sat on the mat.")["embedding"]
    current = client.embed(model="smollm2", input="The cat sat on the mat.").embeddings[0]
    assert len(legacy) == 576 and max(abs(a - b) for a, b in zip(legacy, current)) < 1e-6


def test_a_context_beyond_the_model_or_this_machine_is_refused_before_anything_is_allocated(engine, client, monkeypatch):
    import psutil

    from backend.inference import engine_server

    before = psutil.Process().memory_info().rss
    with pytest.raises(ollama.ResponseError) as huge:
        client.generate(model="smollm2", prompt="hi", options={"num_ctx": 1_048_576, "num_predict": 1})
    assert huge.value.status_code == 400 and "context window of 8,192" in huge.value.error
    assert psutil.Process().memory_info().rss - before < 200 * 1024**2, "no KV cache was allocated for it"
    # The machine's free memory is the one stand-in: 300 MB free cannot hold the model and its cache.
    manifest = next(m for m in engine.store.list() if m.name == "smollm2:latest")
    monkeypatch.setattr(engine_server, "available_memory", lambda: {"ram": 300 * 1024**2, "vram": None})
    with pytest.raises(engine_server.BadRequest, match=r"needs about .* GB of memory .* ask for a smaller num_ctx"):
        engine_server.check_context(manifest, 8192, loaded=False)
    engine_server.check_context(manifest, 1024, loaded=True)  # a small cache for a loaded model fits


def test_huge_numbers_nan_and_oversized_blobs_are_refused_cleanly_and_show_names_no_paths(engine, client):
    """Issue 31.3: a 5,000-digit integer or NaN in a body is a 400 (not a traceback); a blob refused for
    its declared size leaves no file behind; /api/show names the model's files without their folders."""
    huge = httpx.post(f"{engine.host}/api/chat", headers={"Content-Type": "application/json"},
                      content=b'{"model": "smollm2", "messages": [], "options": {"seed": ' + b"9" * 5000 + b"}}")
    assert huge.status_code == 400 and "invalid JSON" in huge.json()["error"]
    nan = httpx.post(f"{engine.host}/api/chat", headers={"Content-Type": "application/json"},
                     content=b'{"model": "smollm2", "messages": [], "options": {"temperature": NaN}}')
    assert nan.status_code == 400 and "NaN" in nan.json()["error"]
    blobs = engine.store.blobs
    before = set(blobs.iterdir())
    import socket

    host, port = engine.host.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:  # declares a petabyte, sends a byte
        raw.sendall(f"POST /api/blobs/sha256:{'1' * 64} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                    f"Content-Length: {1 << 50}\r\n\r\nx".encode())
        status = raw.recv(4096).split(b" ", 2)[1]
    assert status in (b"400", b"507")
    assert set(blobs.iterdir()) == before, "a refused upload leaves no .partial"
    modelfile = client.show("smollm2").modelfile
    assert "FROM SmolLM2" in modelfile and "/" not in modelfile.split("FROM ", 1)[1].splitlines()[0]
