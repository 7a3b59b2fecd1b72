import subprocess
import sys

from tests.export_factory import simple_conversation, write_chatgpt_export


def cli(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, timeout=300, input=stdin)


def test_ask_streams_and_lists_memory_sources(tmp_path):
    export = write_chatgpt_export(tmp_path / "e.zip", [simple_conversation("Boat trip", "We sailed to Ilha Grande.", "Sounds fun!", "boat")])
    assert cli("import", str(export)).returncode == 0
    answer = cli("ask", "Where did we sail to?", "--seed", "1")
    assert answer.returncode == 0, answer.stderr
    assert "[1] Boat trip" in answer.stdout
    quiet = cli("ask", "Where did we sail to?", "--no-memory", "--seed", "1")
    assert quiet.returncode == 0 and "Boat trip" not in quiet.stdout


def test_interactive_chat_ends_on_an_empty_line():
    completed = cli("chat", "--no-memory", stdin="hello\n\n")
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.count("you>") == 2
