from pathlib import Path

from backend.importers import chatgpt
from tests.export_factory import ChatGPTConversation, every_content_type_conversation, simple_conversation, write_chatgpt_export


def parse(conversation, **options):
    return chatgpt.parse_conversation(conversation.to_dict(), 0, **options)


def by_type(conversation):
    return {m.content_type: m for m in conversation.messages}


def test_every_content_type_is_classified():
    parsed = parse(every_content_type_conversation())
    types = by_type(parsed)
    # the user's and assistant's words: memory and training data
    assert types["multimodal_text"].text == "[image]\nWhat plant is this?"
    assert types["multimodal_text"].searchable and types["multimodal_text"].trainable
    answer = next(m for m in parsed.messages if "Monstera deliciosa" in m.text)
    assert answer.role == "assistant" and answer.model == "gpt-4o" and answer.trainable
    # a tool call (code sent to python) is stored but is neither memory nor training data; quotes are searchable only
    assert types["tool_call"].text.startswith("```python") and not types["tool_call"].searchable and not types["tool_call"].trainable
    assert types["tether_quote"].searchable and not types["tether_quote"].trainable
    # reasoning, tool noise, hidden context: stored, neither memory nor training data
    for kind in ("thoughts", "reasoning_recap", "execution_output", "tether_browsing_display", "user_editable_context"):
        assert not types[kind].searchable and not types[kind].trainable, kind
    system = next(m for m in parsed.messages if m.role == "system")
    assert not system.searchable and not system.trainable
    # empty and null messages are dropped
    assert all(m.text for m in parsed.messages)


def test_active_branch_is_followed_from_current_node():
    parsed = parse(every_content_type_conversation())
    texts = [m.text for m in parsed.messages]
    assert not any("OLD-BRANCH" in t for t in texts)
    assert texts.index("It is a Monstera deliciosa; water it weekly.") < texts.index("Thanks! ```code``` and more")


def test_all_branches_keeps_other_branches_out_of_training():
    parsed = parse(every_content_type_conversation(), all_branches=True)
    old = next(m for m in parsed.messages if "OLD-BRANCH" in m.text)
    assert old.searchable and not old.trainable and not old.on_active_branch


def test_missing_current_node_falls_back_to_latest_leaf():
    conversation = ChatGPTConversation("No current")
    root_question = conversation.add("user", "question")
    conversation.add("assistant", "first try")
    conversation.add("assistant", "second try", parent=root_question)
    raw = conversation.to_dict()
    del raw["current_node"]
    parsed = chatgpt.parse_conversation(raw, 0)
    assert [m.text for m in parsed.messages] == ["question", "second try"]


def test_missing_fields_do_not_break_parsing():
    raw = {"mapping": {"a": {"message": {"content": {"parts": ["hello"]}}, "parent": None, "children": []}}}
    parsed = chatgpt.parse_conversation(raw, 3)
    assert parsed.title == "Untitled" and parsed.external_id == "index-3"
    assert parsed.messages[0].text == "hello" and parsed.messages[0].created_at is None


def test_zip_nested_and_bare_json_stream_the_same(tmp_path: Path):
    conversations = [simple_conversation(f"T{i}", f"q{i}", f"a{i}", f"id-{i}") for i in range(3)]
    bare = write_chatgpt_export(tmp_path / "conversations.json", conversations)
    nested = write_chatgpt_export(tmp_path / "export.zip", conversations, nested=True)
    assert chatgpt.detect(bare) and chatgpt.detect(nested)
    seen = []
    from_zip = list(chatgpt.iter_conversations(nested, on_progress=lambda done, total: seen.append((done, total))))
    assert [c.external_id for c in from_zip] == [c.external_id for c in chatgpt.iter_conversations(bare)] == ["id-0", "id-1", "id-2"]
    assert seen[-1][0] == seen[-1][1] > 0, "byte progress reaches the member's size"
