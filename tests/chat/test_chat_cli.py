
import pytest

from tests.cli_runner import run_cli
from tests.export_factory import simple_conversation, write_chatgpt_export

pytestmark = pytest.mark.slow  # CLI processes that load the engine and the embedder


def test_ask_streams_and_lists_memory_sources(tmp_path):
    export = write_chatgpt_export(tmp_path / "e.zip", [simple_conversation("Boat trip", "We sailed to Ilha Grande.", "Sounds fun!", "boat")])
    assert run_cli("import", str(export)).returncode == 0
    answer = run_cli("ask", "Where did we sail to?", "--seed", "1")
    assert answer.returncode == 0, answer.stderr
    assert "[1] Boat trip" in answer.stdout
    quiet = run_cli("ask", "Where did we sail to?", "--no-memory", "--seed", "1")
    assert quiet.returncode == 0 and "Boat trip" not in quiet.stdout


def test_interactive_chat_ends_on_an_empty_line():
    completed = run_cli("chat", "--no-memory", stdin="hello\n\n")
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.count("you>") == 2
