"""Exports made since September 2026: conversations in shards beside a manifest, parent-only trees."""

import json
import zipfile

import pytest

from backend.importers import chatgpt
from backend.importers.model import ImportFormatError
from tests.export_factory import (
    ChatGPTConversation,
    modern_conversation_dict,
    simple_conversation,
    write_chatgpt_export,
    write_sharded_chatgpt_export,
)


def conversations(n=5):
    out = [simple_conversation(f"Topic {i}", f"Question {i} about sourdough", f"Answer {i}: feed the starter", f"conv-{i}")
           for i in range(n)]
    branched = ChatGPTConversation("Branched", "conv-branch")
    question = branched.add("user", "Which tram goes to Alfama?")
    branched.add("assistant", "OLD: the 12.")
    branched.add("assistant", "Take the 28 tram from Martim Moniz.", parent=question)
    branched.add("user", "Thanks, and at night?")
    return [*out, branched]


def titles(path):
    return [c.title for c in chatgpt.iter_conversations(path)]


@pytest.mark.parametrize("as_zip", [True, False])
def test_zip_and_folder_read_every_shard_in_order_and_nothing_else(tmp_path, as_zip):
    export = write_sharded_chatgpt_export(tmp_path / ("export.zip" if as_zip else "export"), conversations(), per_shard=2)
    files = chatgpt.conversation_files(export)
    assert [f.name for f in files] == ["conversations-000.json", "conversations-001.json", "conversations-002.json"]
    assert chatgpt.detect(export)
    assert titles(export) == [f"Topic {i}" for i in range(5)] + ["Branched"]


def test_one_shard_alone_imports_its_conversations(tmp_path):
    export = write_sharded_chatgpt_export(tmp_path / "export", conversations(), per_shard=2)
    assert chatgpt.detect(export / "conversations-001.json")
    assert titles(export / "conversations-001.json") == ["Topic 2", "Topic 3"]


def test_an_unzipped_export_one_folder_down_is_found(tmp_path):
    write_sharded_chatgpt_export(tmp_path / "download" / "chatgpt-2026-10-01", conversations()[:3], per_shard=2)
    assert titles(tmp_path / "download") == ["Topic 0", "Topic 1", "Topic 2"]


def test_parent_only_tree_parses_as_the_older_layout_did():
    for original in conversations():
        old = chatgpt.parse_conversation(original.to_dict(), 0)
        new = chatgpt.parse_conversation(modern_conversation_dict(original, seed=7), 0)
        assert [(m.role, m.text, m.trainable) for m in new.messages] == [(m.role, m.text, m.trainable) for m in old.messages]
        assert new.content_hash() == old.content_hash()
    branched = chatgpt.parse_conversation(modern_conversation_dict(conversations()[-1]), 0)
    assert "OLD: the 12." not in [m.text for m in branched.messages]


def test_without_a_current_node_the_newest_leaf_is_found_from_parents_alone():
    raw = modern_conversation_dict(conversations()[-1], seed=3)
    raw.pop("current_node")
    texts = [m.text for m in chatgpt.parse_conversation(raw, 0).messages]
    assert texts == ["Which tram goes to Alfama?", "Take the 28 tram from Martim Moniz.", "Thanks, and at night?"]


def test_the_manifest_says_what_belongs_to_the_export(tmp_path):
    export = write_sharded_chatgpt_export(tmp_path / "export", conversations(), per_shard=2)
    (export / "conversations-099.json").write_text(json.dumps([simple_conversation("Stray", "x", "y", "stray").to_dict()]))
    assert "Stray" not in titles(export)  # not listed in the manifest: not part of this export
    (export / "conversations-001.json").unlink()
    with pytest.raises(ImportFormatError, match=r"incomplete: export_manifest.json lists conversations-001.json"):
        list(chatgpt.iter_conversations(export))


def test_a_shard_cut_short_is_named_with_the_size_the_manifest_expects(tmp_path):
    export = write_sharded_chatgpt_export(tmp_path / "export", conversations(), per_shard=2)
    shard = export / "conversations-002.json"
    shard.write_bytes(shard.read_bytes()[:-40])
    with pytest.raises(ImportFormatError, match=r"conversations-002.json in export has [\d,]+ bytes where export_manifest.json says"):
        chatgpt.conversation_files(export)


def test_without_a_manifest_every_shard_is_read(tmp_path):
    export = write_sharded_chatgpt_export(tmp_path / "export.zip", conversations(), per_shard=4, manifest=False)
    assert len(titles(export)) == 6


def test_a_zip_with_neither_layout_says_what_it_looked_for(tmp_path):
    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("user.json", "{}")
    assert not chatgpt.detect(path)
    with pytest.raises(ImportFormatError, match="no conversations.json and no conversations-000.json"):
        chatgpt.conversation_files(path)


def test_older_layouts_still_read(tmp_path):
    for name in ("export.zip", "conversations.json"):
        path = write_chatgpt_export(tmp_path / name, conversations()[:2])
        assert chatgpt.detect(path) and titles(path) == ["Topic 0", "Topic 1"]


def test_oddities_of_current_exports():
    c = ChatGPTConversation("Odd", "conv-odd")
    c.add("user", "Run this", create_time=None)
    c.add("assistant", {"content_type": "text", "parts": [""]})
    c.add("assistant", {"content_type": "thoughts", "thoughts": []})
    c.add("assistant", {"content_type": "code", "language": "python", "text": "x = 1\r\nprint(x)\r\n"})
    c.add("tool", {"content_type": "execution_output", "text": "1\n"}, author={"role": "tool", "name": "a8f3k2p9q", "metadata": {}})
    c.add("assistant", "It printed 1.")
    raw = modern_conversation_dict(c)
    raw["create_time"] = None
    parsed = chatgpt.parse_conversation(raw, 0)
    by_text = {m.text: m for m in parsed.messages}
    assert by_text["Run this"].created_at is None and parsed.created_at is None
    assert "```python\nx = 1\nprint(x)\n\n```" in by_text  # CRLF from a Windows paste becomes plain newlines
    assert not by_text["1"].searchable and not by_text["1"].trainable  # tool output under an opaque author name
    assert by_text["It printed 1."].trainable and "" not in by_text
