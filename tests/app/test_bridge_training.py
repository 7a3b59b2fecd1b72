"""The Training screen's bridge: preview with the data filters and its steps, and argument errors."""

import pytest

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

    def preview(request: dict) -> dict:
        record = api._jobs.wait(api.training_preview(request)["data"]["job_id"], timeout=600)
        assert record.state == "succeeded", record.error
        return record.result

    everything = preview({"base": "smollm2", "voice": "assistant", "max_tokens": 512})
    assert everything["stats"]["conversations"] == 2 and "<|im_start|>assistant" in everything["samples"][0]["text"]
    recent = preview({"base": "smollm2", "date_from": "2020-01-01"})
    assert recent["stats"]["conversations"] == 1 and recent["stats"]["filtered_conversations"] == 1
    bad = api.training_preview({"base": "smollm2", "date_from": "last tuesday"})
    assert bad["ok"] is False and bad["error"]["code"] == "invalid_argument", "a bad argument is refused at once, not in the job"
    assert api.training_start({"base": "smollm2", "epochs": 2, "learning_rate": 2e-4, "adapter_name": "../evil"})["error"]["code"] == "invalid_argument"
    assert api.training_preview({"base": "smollm2", "voice": "robot"})["error"]["code"] == "invalid_argument"


@pytest.mark.slow
def test_a_preview_reports_its_steps_and_a_cancel_stops_it_at_the_next_one(layout, base_in_layout, tmp_path):
    conversations = [simple_conversation(f"Topic {i}", f"Question {i}?", f"Answer number {i}.", f"c{i}") for i in range(120)]
    import_path(get_store(layout), write_chatgpt_export(tmp_path / "e.zip", conversations), get_embedder())
    api, _ = build_api("test", layout)
    seen: list[dict] = []
    api._jobs.subscribe(seen.append)
    job_id = api.training_preview({"base": "smollm2"})["data"]["job_id"]
    assert api._jobs.wait(job_id, timeout=600).state == "succeeded"
    steps = [e["status"] for e in seen if e.get("type") == "progress" and e.get("job_id") == job_id]
    assert steps[:2] == ["preparing the base model", "loading the tokenizer"] and steps[-1] == "planning"
    counted = [e for e in seen if e.get("job_id") == job_id and e.get("status") == "reading conversations"]
    assert 2 <= len(counted) <= 60 and counted[-1]["total"] == 120, "conversations are counted, in a bounded number of events"

    def cancel_while_reading(event: dict) -> None:  # in the job's own thread: the cancel lands mid-way, deterministically
        if event.get("status") == "reading conversations" and event.get("completed", 0) >= 10:
            api.cancel_job(event["job_id"])

    api._jobs.subscribe(cancel_while_reading)
    seen.clear()
    job_id = api.training_preview({"base": "smollm2"})["data"]["job_id"]
    record = api._jobs.wait(job_id, timeout=600)
    assert record.state == "cancelled" and record.result is None
    read = [e["completed"] for e in seen if e.get("job_id") == job_id and e.get("status") == "reading conversations"]
    assert max(read) < 20 and "planning" not in [e.get("status") for e in seen], "it stopped at the next step"


def test_out_of_range_settings_are_refused_in_plain_words(layout):
    api, _ = build_api("test", layout)
    answer = api.training_preview({"rank": 999})
    assert answer["error"]["code"] == "invalid_argument", answer
    message = answer["error"]["message"]
    assert message.startswith("Check the training settings: rank:") and "256" in message
    assert "pydantic" not in message and "type=" not in message and "\n" not in message
