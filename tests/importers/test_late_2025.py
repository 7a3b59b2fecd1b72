"""Late-2025 ChatGPT exports (agent mode, canvas, interrupted answers, markup) and Claude artifacts:
each node becomes exactly the memory and training text the importers' table promises."""

import json

import pytest

from backend.importers import chatgpt, claude
from backend.importers.documents import clean_markup, replace_pattern
from tests.late_2025_export import FINAL, late_2025_conversations


@pytest.mark.parametrize("conversation,expected", late_2025_conversations(), ids=lambda v: getattr(v, "title", ""))
def test_every_node_becomes_the_promised_memory_and_training_text(conversation, expected):
    parsed = chatgpt.parse_conversation(conversation.to_dict(), 0)
    by_id = {m.external_id: m for m in parsed.messages}
    for node, want in expected.items():
        message = by_id.get(node)
        if want.memory is None:
            assert message is None or not message.searchable, (node, message)
        else:
            assert message is not None and message.searchable, node
            assert message.text == want.memory, node
        assert (message is not None and message.trainable) == want.trainable, node
    assert all(m.text for m in parsed.messages)
    assert not any(marker in m.text for m in parsed.messages if m.searchable for marker in ("【", "\ue200", "sandbox:", "{{file:"))


def test_tool_calls_are_stored_with_their_kind_but_kept_out_of_memory():
    conversation, _ = late_2025_conversations()[0]
    parsed = chatgpt.parse_conversation(conversation.to_dict(), 0)
    calls = [m for m in parsed.messages if m.content_type == "tool_call"]
    assert len(calls) == 7 and not any(m.searchable or m.trainable for m in calls)
    searchable = [m for m in parsed.messages if m.searchable]
    assert [m.role for m in searchable] == ["user", "assistant"]  # the question and the visible answer


def test_canvas_is_the_document_as_last_edited_with_real_characters():
    conversation, _ = late_2025_conversations()[1]
    canvas = next(m for m in chatgpt.parse_conversation(conversation.to_dict(), 0).messages if m.content_type == "canvas")
    assert canvas.role == "assistant" and canvas.text == f"Cover Letter\n\n{FINAL}"
    assert "\\n" not in canvas.text and "\\u2019" not in canvas.text and "’" in canvas.text


def test_markup_cleaning_keeps_the_words():
    assert clean_markup("See【3:0†guide.pdf】 the guide.") == "See the guide."
    assert clean_markup("Go [here](sandbox:/mnt/data/report.csv) now") == "Go here now"
    assert clean_markup("[the chart](sandbox:/mnt/data/chart.png)") == "the chart"
    assert clean_markup("Use \ue203this part\ue204 only\ue200cite\ue202turn1view0\ue201.") == "Use this part only."
    assert clean_markup("No markup here.") == "No markup here."


def test_canvas_edits_follow_the_pattern_rules():
    assert replace_pattern("a b a", "a", "c", multiple=True) == "c b c"
    assert replace_pattern("a b a", "a", "c", multiple=False) == "c b a"
    assert replace_pattern("one\ntwo", ".*", "whole", multiple=False) == "whole"
    assert replace_pattern("x(y", "(", "[", multiple=False) == "x[y"  # not a valid expression: taken literally
    assert replace_pattern("cost", "cost", r"\1 $5", multiple=False) == r"\1 $5"  # the replacement is literal


def test_claude_artifacts_become_documents_as_last_edited():
    def tool(command: dict) -> dict:
        return {"type": "tool_use", "name": "artifacts", "input": command}

    raw = {"uuid": "c1", "name": "Budget", "created_at": "2025-10-01T10:00:00Z", "chat_messages": [
        {"uuid": "m1", "sender": "human", "text": "Make a budget script", "content": [{"type": "text", "text": "Make a budget script"}]},
        {"uuid": "m2", "sender": "assistant", "text": "", "content": [
            {"type": "text", "text": "Here is the script."},
            tool({"command": "create", "id": "budget", "type": "application/vnd.ant.code", "language": "python",
                  "title": "budget.py", "content": "rent = 900\nfood = 300\n"}),
            {"type": "tool_result", "name": "artifacts", "content": [{"type": "text", "text": "OK"}]}]},
        {"uuid": "m3", "sender": "human", "text": "Add savings", "content": [{"type": "text", "text": "Add savings"}]},
        {"uuid": "m4", "sender": "assistant", "text": "", "content": [
            tool({"command": "update", "id": "budget", "old_str": "food = 300\n", "new_str": "food = 300\nsavings = 200\n"}),
            {"type": "text", "text": "Added savings."}]},
        {"uuid": "m5", "sender": "assistant", "text": "", "content": [
            tool({"command": "create", "id": "notes", "type": "text/markdown", "title": "Notes", "content": "draft"}),
            tool({"command": "rewrite", "id": "notes", "content": "# Plan\nSave 200 a month."})]},
    ]}
    parsed = claude.parse_conversation(raw, 0)
    artifacts = [m for m in parsed.messages if m.content_type == "artifact"]
    assert [a.text for a in artifacts] == ["budget.py\n\n```python\nrent = 900\nfood = 300\nsavings = 200\n```",
                                           "Notes\n\n# Plan\nSave 200 a month."]
    assert all(a.role == "assistant" and a.searchable and not a.trainable for a in artifacts)
    assert [m.text for m in parsed.messages if m.trainable] == ["Make a budget script", "Here is the script.", "Add savings",
                                                                 "Added savings."]
    assert not any("tool_result" in m.text or "OK" == m.text for m in parsed.messages)
    json.dumps([m.text for m in parsed.messages])  # plain strings all the way
