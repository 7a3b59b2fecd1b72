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
    out.write(b'{"event": "peer-join", "peer": "not a key"}\\n')                           # wrong shape
    out.write(b'{"event": "made-up"}\\n')                                                  # unknown event
    out.write(b'{"event": "peer-join", "peer": "' + b'ab' * 32 + b'"}\\n')
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
            assert arrived.wait_for(lambda: any(e.event == "peer-join" for e in events), 30)
        assert [e.event for e in events] == ["hello", "peer-join"], "only the well-formed events arrive"
        assert events[1].peer == "ab" * 32
        assert process.call("ping", timeout=30) == {"pong": "ping"}
        assert process.restart_count == 0 and process.reader_failures == 0
    finally:
        process.close()


def test_a_dead_reader_restarts_the_child_and_says_so(tmp_path, monkeypatch):
    real = SidecarProcess._handle_line
    failed = []

    def fails_once(self, line):  # fault injection: the reader thread meets an error it did not expect
        if not failed and b"peer-join" in line and b"abab" in line:
            failed.append(line)
            raise RuntimeError("reader bug")
        return real(self, line)

    monkeypatch.setattr(sidecar_module.SidecarProcess, "_handle_line", fails_once)
    events = []
    process, arrived = start_child(tmp_path, events)
    try:
        with arrived:
            assert arrived.wait_for(lambda: any(e.event == "sidecar-restarted" for e in events), 30)
        assert process.reader_failures == 1 and process.restart_count == 1
        assert process.call("ping", timeout=30) == {"pong": "ping"}, "the restarted child answers"
    finally:
        process.close()


def test_sidecar_messages_are_typed_and_bounded():
    from pydantic import ValidationError

    from backend.p2p.sidecar_messages import CatalogArrived, DownloadFailed, Reply, parse_message

    peer = "cd" * 32
    catalog = parse_message({"event": "catalog", "peer": peer, "rooms": ["public"], "entries": [{}], "rejected": 2})
    assert isinstance(catalog, CatalogArrived) and catalog.rejected == 2 and catalog.entries == [{}]
    failed = parse_message({"event": "download-error", "id": "ab" * 8, "error": "stalled", "code": "stalled"})
    assert isinstance(failed, DownloadFailed) and failed.code == "stalled"
    assert parse_message({"id": 3, "ok": False, "error": "no"}) == Reply(id=3, ok=False, error="no")
    long = parse_message({"event": "download-error", "id": "ab" * 8, "error": "x" * 10_000})
    assert isinstance(long, DownloadFailed) and len(long.error) == 2000, "a long message is cut, the event still arrives"
    for bad in ({"event": "catalog", "peer": peer, "rooms": [], "entries": [{}] * 257},     # too many entries
                {"event": "peer-rooms", "peer": peer, "rooms": ["r"] * 65},                # too many rooms
                {"event": "download-progress", "id": "../../etc", "blocks": 1},            # not a download id
                {"event": "download-progress", "id": "ab" * 8, "blocks": -1},              # negative count
                {"event": "catalog", "peer": peer.upper(), "rooms": [], "entries": []},    # not our key format
                {"id": "7", "ok": True}):                                                  # reply id not an int
        with pytest.raises(ValidationError):
            parse_message(bad)
