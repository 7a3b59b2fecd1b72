import pytest

"""The Training screen's bridge: preview with the data filters, and argument errors."""

from app.main import build_api
from backend.memory.embeddings import get_embedder
from backend.memory.ingest import import_path
from backend.memory.store import get_store
from tests.export_factory import simple_conversation, write_chatgpt_export


@pytest.mark.slow
def test_preview_applies_date_filters_and_rejects_bad_dates(layout, base_in_layout, tmp_path):
    export = write_chatgpt_export(tmp_path / "e.zip", [
        simple_conversation("Old", "Old question?", "Old answer.", "old", create_time=1_500_000_000),  # 2017
        simple_conversation("New", "New question?", "New answer.", "new", create_time=1_700_000_000)])  # 2023
    import_path(get_store(layout), export, get_embedder())
    api, _ = build_api("test", layout)
    everything = api.training_preview({"base": "smollm2", "voice": "assistant", "max_tokens": 512})["data"]
    assert everything["stats"]["conversations"] == 2 and "<|im_start|>assistant" in everything["samples"][0]["text"]
    recent = api.training_preview({"base": "smollm2", "date_from": "2020-01-01"})["data"]
    assert recent["stats"]["conversations"] == 1 and recent["stats"]["filtered_conversations"] == 1
    bad = api.training_preview({"base": "smollm2", "date_from": "last tuesday"})
    assert bad["ok"] is False and bad["error"]["code"] == "invalid_argument"
    assert api.training_start({"base": "smollm2", "epochs": 2, "learning_rate": 2e-4, "adapter_name": "../evil"})["error"]["code"] == "invalid_argument"
    assert api.training_preview({"base": "smollm2", "voice": "robot"})["error"]["code"] == "invalid_argument"
