"""The sidecar client survives any line its child prints, and restarts the child if its reader dies.

The child here is a small Python stand-in for the Node sidecar (named so): the real sidecar only
forwards validated peer data, so the lines below are what a sidecar bug or a future protocol slip
could print. The client must keep answering calls whatever comes.
"""

import sys
import textwrap
import threading

import pytest

from backend.json_limits import json_depth
from backend.p2p import sidecar as sidecar_module
from backend.p2p.sidecar import MAX_LINE_BYTES, SidecarProcess, parse_line, printable

HOSTILE_CHILD = textwrap.dedent('''
    import json, sys
    out = sys.stdout.buffer
    out.write(b'{"event": "hello"}\\n')
    out.write(b'{"event": "catalog", "entries": ' + b'[' * 3000 + b']' * 3000 + b'}\\n')  # deep
    out.write(b'{"event": "x", "junk": "' + b'a' * (LIMIT + 10) + b'"}\\n')              # oversized
    out.write(b'\\xff\\xfe not utf-8\\n')
    out.write(b'[1, 2, 3]\\n')
    out.write(b'{"id": "not-an-int", "ok": true}\\n')
    out.write(b'{"event": "after-junk"}\\n')
    out.flush()
    for line in sys.stdin:
        request = json.loads(line)
        out.write(json.dumps({"id": request["id"], "ok": True, "result": {"pong": request["cmd"]}}).encode() + b"\\n")
        out.flush()
''').replace("LIMIT", str(MAX_LINE_BYTES))


def start_child(tmp_path, events):
    script = tmp_path / "child.py"
    script.write_text(HOSTILE_CHILD)
    arrived = threading.Condition()

    def on_event(event):
        with arrived:
            events.append(event)
            arrived.notify_all()

    process = SidecarProcess(on_event, command=[sys.executable, str(script)])
    process.start()
    return process, arrived


def test_json_depth_counts_nesting_outside_strings():
    assert json_depth('{"a": [1, {"b": 2}]}') == 3
    assert json_depth('{"a": "[[[[{{{{"}') == 1
    assert json_depth('{"a": "\\\\\\"[[["}') == 1
    with pytest.raises(ValueError, match="deeper"):
        parse_line(b"[" * 100 + b"]" * 100)
    assert printable("peer\x1b[31mred\nline") == "peer\\x1b[31mred\\nline"


def test_the_client_survives_deep_oversized_and_broken_lines(tmp_path):
    events = []
    process, arrived = start_child(tmp_path, events)
    try:
        with arrived:
            assert arrived.wait_for(lambda: any(e["event"] == "after-junk" for e in events), 30)
        assert [e["event"] for e in events] == ["hello", "after-junk"], "only the well-formed events arrive"
        assert process.call("ping", timeout=30) == {"pong": "ping"}
        assert process.restart_count == 0 and process.reader_failures == 0
    finally:
        process.close()


def test_a_dead_reader_restarts_the_child_and_says_so(tmp_path, monkeypatch):
    real = SidecarProcess._handle_line
    failed = []

    def fails_once(self, line):  # fault injection: the reader thread meets an error it did not expect
        if not failed and b"after-junk" in line:
            failed.append(line)
            raise RuntimeError("reader bug")
        return real(self, line)

    monkeypatch.setattr(sidecar_module.SidecarProcess, "_handle_line", fails_once)
    events = []
    process, arrived = start_child(tmp_path, events)
    try:
        with arrived:
            assert arrived.wait_for(lambda: any(e["event"] == "sidecar-restarted" for e in events), 30)
        assert process.reader_failures == 1 and process.restart_count == 1
        assert process.call("ping", timeout=30) == {"pong": "ping"}, "the restarted child answers"
    finally:
        process.close()
