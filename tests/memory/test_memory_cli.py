"""The CLI's machine-readable contract: `memory stats --json` and `search --json`."""

import json

import pytest

from tests.cli_runner import run_cli
from tests.export_factory import simple_conversation, write_chatgpt_export

pytestmark = pytest.mark.slow  # CLI processes that load the embedder


def test_import_stats_and_search_json(tmp_path):
    path = write_chatgpt_export(tmp_path / "export.zip", [
        simple_conversation("Herb garden", "Which herbs grow in shade?", "Mint and parsley tolerate shade.", "herbs", 1_700_000_000),
        simple_conversation("Bike repair", "How do I fix a flat tyre?", "Patch the inner tube after finding the puncture.", "bike", 1_700_100_000),
    ])
    imported = run_cli("import", str(path))
    assert imported.returncode == 0, imported.stderr
    assert "2 new" in imported.stdout
    assert imported.stderr == "", "no third-party warnings or progress bars on stderr"

    stats = json.loads(run_cli("memory", "stats", "--json").stdout)
    assert (stats["conversations"], stats["messages"]) == (2, 4)
    assert isinstance(stats["chunks"], int) and stats["chunks"] == 4

    searched = run_cli("search", "puncture in bicycle wheel", "-k", "2", "--json")
    assert searched.stderr == ""
    hits = json.loads(searched.stdout)
    assert hits[0]["conversation_id"] == "bike" and hits[0]["title"] == "Bike repair"
    assert hits[0]["kind"] == "text" and hits[0]["message_id"].startswith(hits[0]["conversation_key"])
    for field in ("conversation_id", "title", "role", "created_at", "score", "text"):
        assert field in hits[0]


def test_failed_import_exits_non_zero_with_a_message(tmp_path):
    bad = tmp_path / "conversations.json"
    bad.write_text('[{"mapping": {"a": ')
    completed = run_cli("import", str(bad))
    assert completed.returncode == 1
    assert "truncated" in completed.stderr + completed.stdout
