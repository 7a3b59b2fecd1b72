"""Broken text in real exports (emoji cut in half, stray bytes) is mended per character, never a traceback."""

import json

import pytest

from backend.importers import chatgpt, claude
from backend.importers.text_repair import mend_surrogate_escapes
from tests.export_factory import claude_conversation, simple_conversation, write_chatgpt_export

BROKEN = [  # (bytes inside a JSON string, what the text becomes)
    (b"x\\udc00y", "x\ufffdy"),                      # a lone low surrogate escape
    (b"x\xed\xa0\x80y", "x\ufffd\ufffd\ufffdy"),     # a surrogate written as raw bytes (not UTF-8)
    (b"\\ud800\\u0041", "\ufffdA"),                  # a high one not followed by its low one: the A is kept
    (b"cut \\ud83d", "cut \ufffd"),                  # an emoji's first half at the end
    (b"bad \xff byte", "bad \ufffd byte"),           # a byte that is never UTF-8
    (b"ok \\ud83d\\ude00 \xf0\x9f\x98\x80", "ok \U0001F600 \U0001F600"),  # whole emoji, escaped and raw
    (b"lit \\\\ud800", "lit \\ud800"),               # an escaped backslash, then plain text
]


@pytest.mark.parametrize("raw, expected", BROKEN)
def test_a_broken_character_in_a_chatgpt_export_is_replaced_and_the_rest_imported(tmp_path, raw, expected):
    path = write_chatgpt_export(tmp_path / "conversations.json", [
        simple_conversation("Before", "first question", "first answer", "c1"),
        simple_conversation("Broken", "MARKER", "fine answer", "c2"),
        simple_conversation("After", "last question", "last answer", "c3")])
    path.write_bytes(path.read_bytes().replace(b"MARKER", raw))
    conversations = list(chatgpt.iter_conversations(path))
    assert [c.title for c in conversations] == ["Before", "Broken", "After"]
    assert conversations[1].messages[0].text == expected


def test_a_broken_character_in_a_claude_export_is_replaced(tmp_path):
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps([claude_conversation("Notes", [("human", "MARKER"), ("assistant", "reply")])]))
    path.write_bytes(path.read_bytes().replace(b"MARKER", b"half \\udc80 here"))
    [conversation] = claude.iter_conversations(path)
    assert conversation.messages[0].text == "half \ufffd here"


def test_escapes_are_mended_one_by_one():
    assert mend_surrogate_escapes(r"\ud83d\ude00 \udc00 \\udc00 \\\udc00") == (r"\ud83d\ude00 \ufffd \\udc00 \\\ufffd", 2)


@pytest.mark.parametrize(("body", "said"), [
    (b'[{"title": "x", "n": 1' + b"9" * 30 + b"}]", "a number too large"),
    (b'[{"title": "x", "mapping": {', "truncated download"),
    (b'[{"title": tru}]', "not valid JSON: lexical error"),
])
def test_broken_json_is_described_by_what_is_wrong(body, said):
    """Issue 31.3: yajl says "incomplete" for all three; the user is told which it is."""
    import io

    from backend.importers.bounded_json import iter_list_items
    from backend.importers.model import ImportFormatError

    stream = io.BytesIO(body)
    stream.start_item = lambda limit, what: None
    with pytest.raises(ImportFormatError, match=said):
        list(iter_list_items(stream, "conversations.json"))
