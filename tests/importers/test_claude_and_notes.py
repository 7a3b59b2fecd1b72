from pathlib import Path

from backend.importers import claude, notes
from tests.export_factory import claude_conversation, write_claude_export


def test_claude_export_maps_senders_and_skips_thinking(tmp_path: Path):
    path = write_claude_export(tmp_path / "conversations.json", [claude_conversation("Trip", [("human", "Plan Lisbon"), ("assistant", "Day 1: Alfama")], "c1")])
    assert claude.detect(path)
    (conversation,) = list(claude.iter_conversations(path))
    assert conversation.title == "Trip" and conversation.external_id == "c1"
    assert [(m.role, m.text) for m in conversation.messages] == [("user", "Plan Lisbon"), ("assistant", "Day 1: Alfama")]
    assert conversation.messages[0].created_at.isoformat() == "2024-05-01T10:00:00"


def test_notes_folder_skips_hidden_dirs_and_symlinks(tmp_path: Path):
    vault = tmp_path / "vault"
    (vault / "daily").mkdir(parents=True)
    (vault / ".obsidian").mkdir()
    (vault / "daily" / "2024-01-01.md").write_text("# New year\nI started learning the cello.")
    (vault / "ideas.txt").write_text("Build a greenhouse.")
    (vault / ".obsidian" / "workspace.md").write_text("internal")
    (vault / "image.png").write_bytes(b"\x89PNG")
    outside = tmp_path / "secret.md"
    outside.write_text("not part of the vault")
    (vault / "link.md").symlink_to(outside)
    conversations = list(notes.iter_conversations(vault))
    assert sorted(c.external_id for c in conversations) == ["daily/2024-01-01.md", "ideas.txt"]
    cello = next(c for c in conversations if c.external_id.startswith("daily"))
    assert cello.title == "New year" and cello.messages[0].role == "user" and cello.messages[0].trainable
