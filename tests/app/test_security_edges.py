"""The security audit's findings at the app's edges: browser-mode request handling, paths the bridge
accepts, settings that would break search, and who may read the files in the data dir."""

from __future__ import annotations

import os
import socket
import stat
import time
from pathlib import Path

import httpx
import pytest

from app.main import build_api
from backend.config import DataLayout, data_dir, secure_data_dir


def base_url(server) -> str:
    return f"http://127.0.0.1:{server.config.port}"


def test_malformed_calls_get_a_clear_400(server):
    token = {"X-Orch-Token": server.config.token, "Content-Type": "application/json"}
    for body in (b"\xff\xfe not utf-8", b"[" * 50_000 + b"]" * 50_000, b"{not json"):
        answer = httpx.post(f"{base_url(server)}/api/ping", content=body, headers=token)
        assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_json", body[:10]
    for name in ("...", "..", "/", "./."):
        upload = httpx.post(f"{base_url(server)}/upload", params={"name": name}, content=b"{}", headers=token)
        assert upload.status_code == 400 and upload.json()["error"]["code"] == "invalid_argument", name


def test_the_token_is_taken_from_the_header_only_except_for_events(server):
    url = base_url(server)
    in_query = httpx.post(f"{url}/api/ping", params={"token": server.config.token}, json={"args": ["x"]})
    assert in_query.status_code == 401
    assert httpx.post(f"{url}/upload", params={"token": server.config.token, "name": "x"}, content=b"x").status_code == 401
    with httpx.stream("GET", f"{url}/events", params={"token": server.config.token}) as events:
        assert events.status_code == 200  # EventSource cannot send headers


def test_a_refused_host_gets_the_security_headers_too(server):
    refused = httpx.get(f"{base_url(server)}/", headers={"Host": "evil.example"})
    assert refused.status_code == 403
    assert "default-src 'self'" in refused.headers["content-security-policy"]
    assert refused.headers["x-content-type-options"] == "nosniff"


def test_an_oversized_call_is_refused_before_it_is_read(server):
    url = base_url(server)
    with socket.create_connection(("127.0.0.1", server.config.port)) as sock:
        sock.sendall(f"POST /api/ping HTTP/1.1\r\nHost: 127.0.0.1:{server.config.port}\r\nX-Orch-Token: {server.config.token}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {1 << 40}\r\n\r\n".encode())
        answer = sock.recv(4096).decode("latin-1")
    assert answer.startswith("HTTP/1.1 413"), answer[:100]
    token = {"X-Orch-Token": server.config.token}
    chunked = httpx.post(f"{url}/api/ping", content=(b"x" * 65536 for _ in range(64)), headers=token)
    assert chunked.status_code == 413, "a body without a length is counted as it arrives"


def test_an_aborted_upload_leaves_no_part_file(server, layout):
    with socket.create_connection(("127.0.0.1", server.config.port)) as sock:
        sock.sendall(f"POST /upload?name=export.zip HTTP/1.1\r\nHost: 127.0.0.1:{server.config.port}\r\n"
                     f"X-Orch-Token: {server.config.token}\r\nContent-Length: {50 << 20}\r\n\r\n".encode() + b"x" * (1 << 20))
    deadline = time.monotonic() + 60
    while list(layout.uploads_dir.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(layout.uploads_dir.iterdir()) == []


@pytest.fixture
def api(layout):
    api, _events = build_api("test", layout)
    return api


@pytest.mark.parametrize("base", ["/etc", "/etc/passwd", "../../models", "/tmp/model.gguf", "~/.ollama"])
def test_the_bridge_takes_no_base_model_paths(api, base, tmp_path):
    for answer in (api.training_preview({"base": base}), api.training_start({"base": base})):
        assert answer["ok"] is False, answer
        assert "exist" not in answer["error"]["message"].lower(), "the error must not tell whether a path exists"


def test_the_bridge_refuses_a_real_gguf_outside_the_data_dir(api, tmp_path):
    from backend.inference.default_models import default_chat_gguf

    outside = tmp_path / "outside.gguf"
    outside.symlink_to(default_chat_gguf())
    answer = api.training_preview({"base": str(outside)})
    assert answer["ok"] is False and "pick one from the Models list" in answer["error"]["message"]


@pytest.mark.parametrize("value", ["/etc", "some/hub-model", "", "../../x"])
def test_settings_refuse_an_embedding_model_that_cannot_load(api, layout, value):
    answer = api.save_settings({"embedding_model": value})
    assert answer["ok"] is False and answer["error"]["code"] == "invalid_settings"
    assert not layout.settings_file.exists(), "nothing was saved"


def test_settings_accept_a_local_sentence_transformers_folder(api, layout):
    from backend.memory.embeddings import default_embedding_model_path

    folder = str(default_embedding_model_path())
    assert api.save_settings({"embedding_model": folder})["ok"] is True
    assert api.save_settings({"chat_model": "smollm2\n"})["ok"] is False


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_fresh_data_dir_is_private(tmp_path, monkeypatch):
    os.umask(0o022)  # what a desktop session usually has
    home = tmp_path / "fresh"
    monkeypatch.setenv("ORCH_MIND_HOME", str(home))
    root = data_dir()
    layout = DataLayout(root)
    from backend.config import Settings, save_settings
    from backend.memory.store import MemoryStore

    save_settings(Settings(), layout)
    store = MemoryStore(layout.memory_db)
    store.close()
    (layout.uploads_dir / "export.zip").write_bytes(b"PK")
    assert mode(root) == 0o700 and mode(layout.uploads_dir) == 0o700
    for path in (layout.settings_file, layout.memory_db, layout.uploads_dir / "export.zip"):
        assert mode(path) & 0o077 == 0, f"{path.name} is readable by others: {oct(mode(path))}"


def test_an_existing_install_is_made_private_on_start(tmp_path):
    os.umask(0o022)
    root = tmp_path / "old-install"
    (root / "jobs" / "train-1").mkdir(parents=True)
    for path in (root / "memory.duckdb", root / "memory.duckdb.wal", root / "jobs" / "train-1" / "data.jsonl"):
        path.write_text("private")
        path.chmod(0o644)
    root.chmod(0o755)
    outside = tmp_path / "not-ours.txt"
    outside.write_text("x")
    outside.chmod(0o644)
    (root / "link").symlink_to(outside)
    secure_data_dir(root)
    assert mode(root) == 0o700 and mode(root / "jobs") == 0o700 and mode(root / "jobs" / "train-1") == 0o700
    for path in (root / "memory.duckdb", root / "memory.duckdb.wal", root / "jobs" / "train-1" / "data.jsonl"):
        assert mode(path) == 0o600
    assert mode(outside) == 0o644, "a link's target is not ours to change"


def test_an_upload_is_deleted_once_imported_unless_kept(api, layout, tmp_path):
    from tests.export_factory import simple_conversation, write_chatgpt_export

    for keep in (False, True):
        upload = layout.uploads_dir / f"abcd1234-export-{keep}.zip"
        write_chatgpt_export(upload, [simple_conversation(f"Roses {keep}", "How do I prune roses?", "In late winter.", f"r{keep}")])
        job = api.start_import_upload(upload.name, "increment", keep)["data"]["job_id"]
        record = api._jobs.wait(job, timeout=300)
        assert record.state == "succeeded", record
        assert upload.exists() is keep
