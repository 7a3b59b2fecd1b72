"""Hostile and malformed exports: each is refused with a clear error or read with the bad parts
skipped and counted, never a traceback, a hang or unbounded memory.

All cases run in one child process under a 3 GiB address-space cap (``hostile_reader.py``), so a
regression (the 21 GB nesting blow-up, say) fails here instead of taking the machine down.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.export_factory import ChatGPTConversation, claude_conversation, simple_conversation, write_chatgpt_export

pytestmark = pytest.mark.slow  # one child process reads every hostile file (over a minute)

READER = Path(__file__).with_name("hostile_reader.py")
ROOT = Path(__file__).resolve().parents[2]


def chatgpt_with(mutate: Callable[[dict[str, Any]], None]) -> Callable[[Path], Path]:
    """A one-conversation ChatGPT export whose first reply message is then damaged by ``mutate``."""
    def build(folder: Path) -> Path:
        conversation = simple_conversation("Damaged", "hello there", "general kenobi", conversation_id="c1").to_dict()
        mutate(conversation)
        path = folder / "conversations.json"
        path.write_text(json.dumps([conversation]))
        return path
    return build


def reply(conversation: dict[str, Any]) -> dict[str, Any]:
    return next(node for key, node in conversation["mapping"].items() if key.endswith("n2"))["message"]


def raw_file(text: str | bytes) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        path = folder / "conversations.json"
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        return path
    return build


def patched_zip(patch: Callable[[bytearray], None]) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        path = write_chatgpt_export(folder / "export.zip", [simple_conversation("Zip", "q" * 2000, "a" * 2000)])
        data = bytearray(path.read_bytes())
        patch(data)
        path.write_bytes(data)
        return path
    return build


def member_headers(data: bytearray) -> tuple[int, int]:
    """Offsets of conversations.json's local header and its central-directory entry."""
    local = data.index(b"PK\x03\x04")  # the first member is conversations.json
    central = data.index(b"PK\x01\x02")
    return local, central


def set_encrypted(data: bytearray) -> None:
    local, central = member_headers(data)
    data[local + 6] |= 0x1
    data[central + 8] |= 0x1


def set_method_99(data: bytearray) -> None:
    local, central = member_headers(data)
    data[local + 8:local + 10] = (99).to_bytes(2, "little")
    data[central + 10:central + 12] = (99).to_bytes(2, "little")


def corrupt_deflate(data: bytearray) -> None:
    local, _ = member_headers(data)
    name_length = int.from_bytes(data[local + 26:local + 28], "little")
    extra_length = int.from_bytes(data[local + 28:local + 30], "little")
    start = local + 30 + name_length + extra_length
    for offset in range(start + 5, start + 40):
        data[offset] ^= 0x5A


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def giant_string(folder: Path) -> Path:
    """One conversation whose title is a 300 MB string: the reader must stop at the item cap."""
    path = folder / "conversations.json"
    with path.open("wb") as handle:
        handle.write(b'[{"mapping": {}, "title": "')
        block = b"abcdefghij" * 100_000
        for _ in range(300):
            handle.write(block)
        handle.write(b'"}]')
    return path


def long_text(folder: Path) -> Path:
    conversation = simple_conversation("Long", "hi", "x" * (17 * 1024 * 1024), conversation_id="long").to_dict()
    path = folder / "conversations.json"
    path.write_text(json.dumps([conversation]))
    return path


def too_many_nodes(folder: Path) -> Path:
    conversation = ChatGPTConversation("Wide", "wide").to_dict()
    conversation["mapping"] = {f"n{i}": {} for i in range(100_001)}
    path = folder / "conversations.json"
    path.write_text(json.dumps([conversation]))
    return path


def claude_with(mutate: Callable[[dict[str, Any]], None]) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        conversation = claude_conversation("Claude", [("human", "hi"), ("assistant", "hello")], uuid_="cl1")
        mutate(conversation)
        path = folder / "conversations.json"
        path.write_text(json.dumps([conversation]))
        return path
    return build


def notes_with_pipe(folder: Path) -> Path:
    vault = folder / "vault"
    vault.mkdir()
    (vault / "real.md").write_text("# Real\nA real note.")
    os.mkfifo(vault / "pipe.md")
    (vault / "device.md").symlink_to("/dev/zero")
    return vault


REFUSED = "refused"
# name: (importer, build, expectation) — a substring of the refusal, or a check of what was parsed
CASES: dict[str, tuple[str, Callable[[Path], Path], Any]] = {
    "nested 100,000 deep": ("chatgpt", raw_file('[{"mapping": {"a": ' + deep(100_000) + "}}]"), (REFUSED, "nested more than")),
    "title nested 20,000 deep": ("chatgpt", raw_file('[{"mapping": {}, "title": ' + deep(20_000) + "}]"), (REFUSED, "nested more than")),
    "title nested 5,000 deep": ("chatgpt", raw_file('[{"mapping": {}, "title": ' + deep(5_000) + "}]"), (REFUSED, "nested more than")),
    "one 300 MB string": ("chatgpt", giant_string, (REFUSED, "larger than")),
    "a 17 MB message": ("chatgpt", long_text, (REFUSED, "characters")),
    "100,001 nodes": ("chatgpt", too_many_nodes, (REFUSED, "nodes")),
    "not a list": ("chatgpt", raw_file('{"mapping": {}}'), (REFUSED, "not a JSON list")),
    "truncated": ("chatgpt", raw_file('[{"mapping": {"a": {"message": '), (REFUSED, "")),
    "encrypted zip": ("chatgpt", patched_zip(set_encrypted), (REFUSED, "encrypted")),
    "unknown compression": ("chatgpt", patched_zip(set_method_99), (REFUSED, "compression method")),
    "corrupt deflate data": ("chatgpt", patched_zip(corrupt_deflate), (REFUSED, "damaged")),
    "parts: 5": ("chatgpt", chatgpt_with(lambda c: reply(c)["content"].update(parts=5)),
                 lambda r: r["messages"] == 1 and r["roles"] == ["user"]),
    "content: a string": ("chatgpt", chatgpt_with(lambda c: reply(c).update(content="str")), lambda r: r["skipped"] == 1),
    "node is a number": ("chatgpt", chatgpt_with(lambda c: c["mapping"].update({next(k for k in c["mapping"] if k.endswith("n2")): 5})),
                         lambda r: r["skipped"] == 1),
    "author is a string": ("chatgpt", chatgpt_with(lambda c: reply(c).update(author="assistant")), lambda r: r["skipped"] == 1),
    "metadata is a string": ("chatgpt", chatgpt_with(lambda c: reply(c).update(metadata="x")), lambda r: r["skipped"] == 1),
    "content_type is a list": ("chatgpt", chatgpt_with(lambda c: reply(c)["content"].update(content_type=["text"])),
                               lambda r: r["skipped"] == 1),
    "create_time is text": ("chatgpt", chatgpt_with(lambda c: reply(c).update(create_time="yesterday")),
                            lambda r: r["messages"] == 2 and r["skipped"] == 0),
    "role: 123": ("chatgpt", chatgpt_with(lambda c: reply(c)["author"].update(role=123)), lambda r: r["skipped"] == 1),
    "current_node is an object": ("chatgpt", chatgpt_with(lambda c: c.update(current_node={"x": 1})), lambda r: r["messages"] == 2),
    "title is a number": ("chatgpt", chatgpt_with(lambda c: c.update(title=5)), lambda r: r["titles"] == ["Untitled"]),
    "mapping nodes are junk": ("chatgpt", chatgpt_with(lambda c: c["mapping"].update(j1=[1], j2="s", j3=None)),
                               lambda r: r["messages"] == 2),
    "claude attachments: 5": ("claude", claude_with(lambda c: c["chat_messages"][0].update(attachments=5)), lambda r: r["messages"] == 2),
    "claude message is a string": ("claude", claude_with(lambda c: c["chat_messages"].append("junk")),
                                   lambda r: r["messages"] == 2 and r["skipped"] == 1),
    "claude sender is a list": ("claude", claude_with(lambda c: c["chat_messages"][0].update(sender=["human"])),
                                lambda r: r["roles"] == ["assistant", "unknown"]),
    "notes: a named pipe and a link to a device": ("notes", notes_with_pipe, lambda r: r["conversations"] == 1),
}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("hostile")
    cases = []
    for number, (name, (kind, build, _)) in enumerate(CASES.items()):
        case_dir = folder / f"case{number}"
        case_dir.mkdir()
        cases.append({"name": name, "kind": kind, "path": str(build(case_dir))})
    result = subprocess.run([sys.executable, str(READER)], input=json.dumps(cases), capture_output=True, text=True,
                            cwd=ROOT, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert result.returncode == 0, result.stderr[-3000:]
    return {line["name"]: line for line in lines}


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input(outcomes, name):
    assert name in outcomes, "the reader never answered for this case (a hang or a crash of the process)"
    outcome = outcomes[name]
    assert outcome["outcome"] != "crash", outcome
    expected = CASES[name][2]
    if isinstance(expected, tuple):
        assert outcome["outcome"] == REFUSED and outcome["code"] == "bad_import", outcome
        assert expected[1] in outcome["message"], outcome
    else:
        assert outcome["outcome"] == "parsed" and expected(outcome), outcome


def test_a_zip_member_streams_without_extraction(tmp_path):
    """The refusals above were for damage: an ordinary zip still imports (a control for the patches)."""
    path = write_chatgpt_export(tmp_path / "export.zip", [simple_conversation("Zip", "q", "a")])
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
    from backend.importers import chatgpt

    assert [c.title for c in chatgpt.iter_conversations(path)] == ["Zip"]
