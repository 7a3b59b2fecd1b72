"""Adapters answering the same prompts side by side, through the bridge's job."""

import json

import pytest

from app.main import build_api
from backend.errors import ValidationError
from backend.training.adapters import AdapterStore
from backend.training.compare import check_request
from tests.conftest import install_adapters


def test_the_request_is_bounded():
    with pytest.raises(ValidationError):
        check_request(["a", "b", "c", "d"], ["hi"])
    with pytest.raises(ValidationError):
        check_request(["a"], [" ", ""])
    with pytest.raises(ValidationError):
        check_request(["a"], ["x" * 2001])
    assert check_request(["a", "a", "b"], [" hi "]) == (["a", "b"], ["hi"])


@pytest.mark.slow
def test_two_adapters_and_their_base_answer_the_same_prompt(layout, base_in_layout, styled_adapters):
    install_adapters(layout, styled_adapters, "pirate", "surfer")
    api, _ = build_api("test", layout)
    answer = api.adapters_compare(["pirate", "surfer"], ["What is 3 plus 3?", "What is 5 plus 5?"])
    assert answer["ok"], answer
    record = api._jobs.wait(answer["data"]["job_id"], timeout=600)
    assert record.state == "succeeded", record.error
    rows = record.result["rows"]
    assert [row["prompt"] for row in rows] == ["What is 3 plus 3?", "What is 5 plus 5?"]
    assert any("Arr matey" in row["replies"]["pirate"] for row in rows) and any("Dude" in row["replies"]["surfer"] for row in rows)
    assert not any("Arr matey" in row["base"] or "Dude" in row["base"] for row in rows)

    manifest = AdapterStore(layout).path("surfer") / "manifest.json"
    data = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**data, "base": {**data["base"], "sha256": "0" * 64}}))
    refused = api._jobs.wait(api.adapters_compare(["pirate", "surfer"], ["Hi"])["data"]["job_id"], timeout=60)
    assert refused.state == "failed" and "different base models" in refused.error["message"]
    assert api.adapters_compare(["a", "b", "c", "d"], ["Hi"])["error"]["code"] == "invalid_argument"
