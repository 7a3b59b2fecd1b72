"""The Models screen's bridge in window mode: a GGUF picked in the native file dialog is added as a
job with progress. The dialog is the one fake here (an OS window cannot be driven headless), named
FakeFileDialogWindow; everything behind it is real (store, hashing, GGUF metadata, the engine)."""

from __future__ import annotations

import shutil

from app.main import build_api
from backend.inference.default_models import default_chat_gguf


class FakeFileDialogWindow:
    """Stands in for pywebview's window: answers the file dialog with a chosen path."""

    def __init__(self, answer: list[str] | None) -> None:
        self.answer = answer
        self.asked: list[tuple] = []

    def create_file_dialog(self, *args, **kwargs):
        self.asked.append((args, kwargs))
        return self.answer


def test_a_gguf_picked_in_the_window_is_added_with_progress(layout, tmp_path):
    mine = tmp_path / "Downloads" / "SmolLM2-135M-Instruct-Q4_1.gguf"
    mine.parent.mkdir()
    shutil.copyfile(default_chat_gguf(), mine)
    api, _events = build_api("window", layout)
    events = []
    api._jobs.subscribe(events.append)
    window = FakeFileDialogWindow([str(mine)])
    api._attach_window(window)
    answer = api.models_pick_and_add("my-smol")
    assert answer["ok"], answer
    record = api._jobs.wait(answer["data"]["job_id"], timeout=300)
    assert record.state == "succeeded", record.error
    assert record.result["name"] == "my-smol:latest" and record.result["info"]["architecture"] == "llama"
    hashing = [e for e in events if e["type"] == "progress" and e["status"] == "hashing"]
    assert hashing and hashing[-1]["completed"] == hashing[-1]["total"] == mine.stat().st_size
    overview = api.models_overview()["data"]
    row = next(m for m in overview["models"] if m["name"] == "my-smol:latest")
    assert (row["family"], row["parameters"], row["quantization"], row["path"]) == ("llama", "135M", "Q4_1", str(mine))


def test_the_window_picker_refuses_what_is_not_a_model_and_a_cancel_adds_nothing(layout, tmp_path):
    api, _events = build_api("window", layout)
    text = tmp_path / "notes.gguf"
    text.write_text("not a model")
    api._attach_window(FakeFileDialogWindow([str(text)]))
    refused = api.models_pick_and_add(None)
    assert refused["ok"] is False and "not a GGUF" in refused["error"]["message"]
    api._attach_window(FakeFileDialogWindow(None))
    assert api.models_pick_and_add(None) == {"ok": True, "data": {"job_id": None}}


def test_browser_mode_adds_only_what_discovery_found(layout, tmp_path):
    api, _events = build_api("browser", layout)
    assert api.models_pick_and_add(None)["ok"] is False, "no native picker outside the window"
    answer = api.models_add_discovered("/etc/passwd", None)
    assert answer["ok"] is False and "not among the models found" in answer["error"]["message"]


def test_prepared_bases_are_listed_with_their_size_and_can_be_removed(layout, monkeypatch):
    """A preparation stopped part-way (real GGUF, real shards) shows as such, and removing it frees
    its space; ids other than a prepared base's are refused by the bridge's validation."""
    import pytest

    from backend.errors import CancelledError
    from backend.training import base_preparation
    from backend.training.base_models import file_sha256

    monkeypatch.setattr(base_preparation, "SHARD_BYTES", 16 * 1024**2)
    gguf = default_chat_gguf()
    target = layout.hf_base_dir(file_sha256(gguf))
    with pytest.raises(CancelledError):
        base_preparation.prepare_base(gguf, target, should_stop=lambda: True)
    api, _events = build_api("window", layout)
    listed = api.models_prepared()
    assert listed["ok"], listed
    [entry] = listed["data"]
    assert entry["id"] == target.name and entry["gguf"] == gguf.name and not entry["complete"] and entry["bytes"] > 1_000_000
    assert "/" not in entry["gguf"], "no local paths reach the UI"
    for bad in ("../models", "c48936c83c4fd2f", "x" * 16):
        assert api.models_remove_prepared(bad)["error"]["code"] == "invalid_argument"
    removed = api.models_remove_prepared(target.name)
    assert removed["ok"] and removed["data"]["freed_bytes"] == entry["bytes"]
    assert api.models_prepared()["data"] == [] and not target.with_name(target.name + ".partial").exists()
    assert api.models_remove_prepared(target.name)["error"]["code"] == "not_found"
