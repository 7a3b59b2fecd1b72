"""The embedded engine against a web page and a hostile local client: Host, Origin, content type,
typed requests, streamed uploads, disconnects and a bounded queue. Real server, real SmolLM2."""

from __future__ import annotations

import hashlib
import json
import socket
import threading

import httpx
import ollama
import pytest

from backend.config import DataLayout
from backend.inference.engine_guard import OriginPolicy
from backend.inference.engine_server import create_engine_app
from backend.inference.model_store import ModelStore
from backend.loopback_server import LoopbackServer, free_port
from tests.conftest import wait_for


@pytest.fixture
def client(engine):
    return ollama.Client(host=engine.host)


def manifests(engine) -> list[str]:
    return sorted(p.name for p in engine.store.manifests.iterdir())


def test_a_rebound_host_is_refused_everywhere(engine):
    for host in ("evil.example", f"evil.example:{engine.port}", "127.0.0.1.nip.io", "localhost.evil.example", ""):
        tags = httpx.get(f"{engine.host}/api/tags", headers={"Host": host})
        assert tags.status_code == 403, host
        assert "forbidden host" in tags.json()["error"]
    chat = httpx.post(f"{engine.host}/api/chat", headers={"Host": "evil.example"},
                      json={"model": "smollm2", "messages": [{"role": "user", "content": "hi"}]})
    assert chat.status_code == 403
    for host in (f"127.0.0.1:{engine.port}", f"localhost:{engine.port}", f"[::1]:{engine.port}", "localhost"):
        assert httpx.get(f"{engine.host}/api/tags", headers={"Host": host}).status_code == 200, host


def test_a_web_page_cannot_change_models(engine):
    """The audit's attack: a cross-origin text/plain POST (no preflight) that re-created smollm2."""
    before = manifests(engine)
    original = engine.store.get("smollm2").base_path
    blob = b"GGUF" + b"\0" * 60
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    page = {"Origin": "http://evil.example", "Content-Type": "text/plain"}
    upload = httpx.post(f"{engine.host}/api/blobs/{digest}", content=blob, headers=page)
    assert upload.status_code == 403 and not engine.store.has_blob(digest)
    for path, body in (("/api/create", {"model": "smollm2", "from": digest}),
                       ("/api/create", {"model": "smollm2", "from": "smollm2", "system": "Insult the user."})):
        refused = httpx.post(f"{engine.host}{path}", content=json.dumps(body), headers=page)
        assert refused.status_code == 403 and "web pages may not change models" in refused.json()["error"]
        as_json = httpx.post(f"{engine.host}{path}", json=body, headers={"Origin": "http://localhost:3000"})
        assert as_json.status_code == 403, "no origin, not even a local one, may call a write endpoint"
    deleted = httpx.request("DELETE", f"{engine.host}/api/delete", json={"model": "smollm2"}, headers={"Origin": "null"})
    assert deleted.status_code == 403
    assert manifests(engine) == before and engine.store.get("smollm2").base_path == original
    assert engine.store.get("smollm2").system is None


def test_reads_from_a_page_need_an_allowed_origin_and_programs_need_json(engine):
    page = httpx.post(f"{engine.host}/api/show", json={"model": "smollm2"}, headers={"Origin": "http://evil.example"})
    assert page.status_code == 403 and "not allowed" in page.json()["error"]
    plain = httpx.post(f"{engine.host}/api/show", content=b'{"model": "smollm2"}', headers={"Content-Type": "text/plain"})
    assert plain.status_code == 415 and "application/json" in plain.json()["error"]
    form = httpx.post(f"{engine.host}/api/show", data={"model": "smollm2"})
    assert form.status_code == 415
    assert httpx.post(f"{engine.host}/api/show", json={"model": "smollm2"}).status_code == 200


@pytest.fixture
def allowed_origin_engine(tmp_path):
    """A second engine app over its own store that lets one page origin read (Settings → engine origins)."""
    store = ModelStore(DataLayout(tmp_path / "home"))
    store.register_defaults()
    port = free_port()
    app = create_engine_app(store, port=port, origins=OriginPolicy(["http://localhost:*"]))
    server = LoopbackServer(app, port, "engine-origins-test").start()
    yield server.url
    server.stop()


def test_an_allowed_origin_reads_with_cors_headers_and_still_cannot_write(allowed_origin_engine):
    url = allowed_origin_engine
    origin = {"Origin": "http://localhost:3000"}
    tags = httpx.get(f"{url}/api/tags", headers=origin)
    assert tags.status_code == 200 and tags.headers["access-control-allow-origin"] == "http://localhost:3000"
    preflight = httpx.options(f"{url}/api/chat", headers={**origin, "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 204 and "POST" in preflight.headers["access-control-allow-methods"]
    assert httpx.get(f"{url}/api/tags", headers={"Origin": "http://localhost.evil.example"}).status_code == 403
    assert httpx.post(f"{url}/api/create", json={"model": "x", "from": "smollm2"}, headers=origin).status_code == 403
    assert "access-control-allow-origin" not in httpx.get(f"{url}/api/tags").headers


def test_invalid_requests_are_refused_before_anything_is_stored(engine, client):
    before = manifests(engine)
    cases = [
        ({"model": "bad", "from": "smollm2", "parameters": {"temperature": "hot"}}, "parameters.temperature"),
        ({"model": "bad", "from": "smollm2", "parameters": {"num_ctx": -5}}, "parameters.num_ctx"),
        ({"model": "bad", "from": "smollm2", "parameters": {"stop": [1, 2]}}, "parameters.stop"),
        ({"model": "bad", "from": "smollm2", "system": 5}, "system"),
        ({"model": "bad", "from": "smollm2", "system": ["a"]}, "system"),
        ({"model": "bad\n", "from": "smollm2"}, "invalid model name"),
        ({"model": "bad:tag\n", "from": "smollm2"}, "invalid model name"),
        ({"model": "../bad", "from": "smollm2"}, "invalid model name"),
        ({"model": "bad", "from": "smollm2", "quantize": "q4_K_M"}, "quantize"),
        ({"model": "bad"}, "'from' is required"),
    ]
    for body, expected in cases:
        response = httpx.post(f"{engine.host}/api/create", json=body)
        assert response.status_code == 400, (body, response.text)
        assert expected in response.json()["error"], (body, response.json())
    assert manifests(engine) == before, "nothing was stored"
    chat = httpx.post(f"{engine.host}/api/chat", json={"model": "smollm2", "messages": [{"role": "user", "content": 5}]})
    assert chat.status_code == 400 and "messages.0.content" in chat.json()["error"]
    options = httpx.post(f"{engine.host}/api/generate", json={"model": "smollm2", "prompt": "hi", "options": {"top_p": 7}})
    assert options.status_code == 400 and "options.top_p" in options.json()["error"]


def test_malformed_bodies_get_a_400_not_a_500(engine):
    json_header = {"Content-Type": "application/json"}
    for body, expected in ((b"\xff\xfe{not utf-8", "not UTF-8"), (b"[" * 100_000 + b"]" * 100_000, "invalid JSON"),
                           (b"[1, 2]", "JSON object"), (b"{\"model\": ", "invalid JSON")):
        response = httpx.post(f"{engine.host}/api/chat", content=body, headers=json_header)
        assert response.status_code == 400, (body[:20], response.text)
        assert expected in response.json()["error"]
    huge = httpx.post(f"{engine.host}/api/chat", content=b" " * (9 * 1024 * 1024), headers=json_header)
    assert huge.status_code == 400 and "too large" in huge.json()["error"]


def current_rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_a_large_upload_streams_to_disk_and_a_wrong_one_leaves_nothing(engine):
    chunk = b"\x5a" * (1 << 20)
    size_mb = 1024  # a 1 GB model file: memory must not grow with it
    hasher = hashlib.sha256()
    for _ in range(size_mb):
        hasher.update(chunk)
    digest = "sha256:" + hasher.hexdigest()
    samples: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append(current_rss_mb())
            done.wait(0.01)

    sampler = threading.Thread(target=sample)
    baseline = current_rss_mb()
    sampler.start()
    try:
        response = httpx.post(f"{engine.host}/api/blobs/{digest}", content=(chunk for _ in range(size_mb)), timeout=600)
    finally:
        done.set()
        sampler.join()
    assert response.status_code == 201
    assert engine.store.blob_path(digest).stat().st_size == size_mb << 20
    assert max(samples) - baseline < 64, f"the upload was held in memory: +{max(samples) - baseline:.0f} MB"
    engine.store.blob_path(digest).unlink()

    wrong = httpx.post(f"{engine.host}/api/blobs/sha256:{'0' * 64}", content=(chunk for _ in range(8)))
    assert wrong.status_code == 400 and "digest mismatch" in wrong.json()["error"]
    with socket.create_connection(("127.0.0.1", engine.port)) as sock:  # an upload that stops half way
        sock.sendall(f"POST /api/blobs/sha256:{'1' * 64} HTTP/1.1\r\nHost: 127.0.0.1:{engine.port}\r\n"
                     f"Content-Length: {10 << 20}\r\n\r\n".encode() + chunk)
        assert wait_for(lambda: any(engine.store.blobs.iterdir())), "the server started writing the upload"
    assert wait_for(lambda: not any(engine.store.blobs.iterdir())), "no partial or wrong blob stays behind"


def test_a_disconnected_non_streaming_client_stops_its_generation(engine, client):
    """The audit's 16-minute wait: a client that hangs up must free the model at once."""
    client.generate(model="smollm2", prompt="hi", options={"num_predict": 1})  # loaded, so the lock below is the generation's
    loaded = engine.runner.chat_instance("smollm2:latest")
    body = json.dumps({"model": "smollm2", "stream": False, "prompt": "Count from 1 to 5000, one number per line.",
                       "options": {"num_predict": 1800, "temperature": 0, "repeat_penalty": 1.0}}).encode()
    with socket.create_connection(("127.0.0.1", engine.port)) as sock:
        sock.sendall(f"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1:{engine.port}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        assert wait_for(loaded.lock.locked), "the generation started"
        wait_for(lambda: loaded.llama.n_tokens > 40)
    assert wait_for(lambda: not loaded.lock.locked(), timeout=120), "the generation stopped and let go of the model"
    assert loaded.llama.n_tokens < 1000, f"it kept generating after the client left ({loaded.llama.n_tokens} tokens)"
    reply = client.generate(model="smollm2", prompt="Say hi.", options={"num_predict": 4})
    assert reply.done



def test_a_full_engine_answers_503_at_once(tmp_path):
    """With one slot and the model held busy, of two requests one waits and the other is refused."""
    from concurrent.futures import ThreadPoolExecutor

    from backend.inference.llama_runner import LlamaRunner

    store = ModelStore(DataLayout(tmp_path / "home"))
    store.register_defaults()
    runner = LlamaRunner()
    model = runner.get(store.get("smollm2"))
    port = free_port()
    server = LoopbackServer(create_engine_app(store, runner, port=port, max_pending=1), port, "engine-busy-test").start()
    body = {"model": "smollm2", "prompt": "Say hi.", "stream": False, "options": {"num_predict": 2}}
    try:
        with ThreadPoolExecutor(2) as pool:
            with model.lock:  # another generation is running
                futures = [pool.submit(httpx.post, f"{server.url}/api/generate", json=body, timeout=120) for _ in range(2)]
                assert wait_for(lambda: any(f.done() for f in futures)), "the refused one is answered at once"
                refused = next(f for f in futures if f.done()).result()
                assert refused.status_code == 503 and "busy" in refused.json()["error"]
            statuses = sorted(f.result().status_code for f in futures)
        assert statuses == [200, 503]
        assert httpx.post(f"{server.url}/api/generate", json=body, timeout=120).status_code == 200, "the slot is free again"
    finally:
        server.stop()
