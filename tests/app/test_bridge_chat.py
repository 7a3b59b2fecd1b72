"""The Chat screen's bridge: listing and editing chats needs only the database; the models load when
the person starts typing (chat_prepare), so the screen is drawn at once on a fresh start."""

from __future__ import annotations

import pytest

from app.main import build_api
from tests.conftest import wait_for


def test_chats_are_listed_created_and_deleted_without_loading_any_model(layout, monkeypatch):
    def unavailable(*_args, **_kwargs):  # a stand-in for a model that would take seconds to load, named so
        raise AssertionError("the embedding model was loaded to list chats")

    monkeypatch.setattr("backend.memory.embeddings.get_embedder", unavailable)
    api, _ = build_api("test", layout)
    created = api.chat_new(None, None)["data"]
    assert [s["id"] for s in api.chat_sessions()["data"]] == [created["id"]]
    assert api.chat_get(created["id"])["data"]["messages"] == []
    assert api.chat_update(created["id"], {"title": "Renamed"})["data"]["title"] == "Renamed"
    for name in ("../../etc/passwd", "/abs/model", "a\\b", "x" * 300):  # refused where it would be stored (issue 31)
        assert api.chat_new(name, None)["error"]["code"] == "invalid_argument", name
        assert api.chat_update(created["id"], {"model": name})["error"]["code"] == "invalid_argument", name
    assert api.chat_update(created["id"], {"model": "hf.co/someone/model:Q4_K_M"})["ok"], "an Ollama namespace is a name"
    assert api.chat_delete(created["id"])["data"] == {"deleted": True}
    assert api.chat_sessions()["data"] == []


def test_nan_and_infinity_are_not_numbers_the_bridge_takes(layout):
    api, _ = build_api("test", layout)
    for value in (float("nan"), float("inf")):
        for answer in (api.training_preview({"learning_rate": value}), api.poll_events(0, value)):
            assert answer["error"]["code"] == "invalid_argument", answer


@pytest.mark.slow
def test_typing_prepares_the_chat_model_once_in_the_background(layout):
    from backend.inference.engine import get_connection

    api, _ = build_api("test", layout)
    assert api.chat_prepare()["data"] == {"started": True}
    assert api.chat_prepare()["data"] == {"started": False}, "once per data dir, however much is typed"
    client = get_connection(layout).client
    assert wait_for(lambda: [m.model for m in client.ps().models] == ["smollm2:latest"], 300), "the chat model is loaded"
