"""ChatGPT export shapes from late 2025, built node by node with what each node must become.

GPT-5 conversations mix the visible exchange with agent-mode tool calls (``computer.do``,
``browser.search``, ``container.exec`` heredocs, ``python``, ``image_gen.text2im``, ``web.run``,
``bio``), their outputs, canvas documents created and then edited, answers interrupted by the user,
and answers full of citation and file markup. :func:`late_2025_conversations` returns them with an
:class:`Expected` per node: the memory text (None: not memory) and whether it is training data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from tests.export_factory import ChatGPTConversation

PAYLOAD_WORDS = ("sourdough starter flour water tax return deadline guitar chords beginner marathon mileage "
                 "cat vet food Lisbon Alfama tram solar panels roof chess openings tomato leaves ")


@dataclass(frozen=True)
class Expected:
    memory: str | None  # the exact searchable text, or None when the node is kept out of memory
    trainable: bool


def _heredoc(topic_words: str, lines: int) -> str:
    body = "\n".join(f"echo 'step {i}: {topic_words}' >> /mnt/data/log.txt" for i in range(lines))
    return json.dumps({"cmd": ["bash", "-lc", f"cat << 'EOF' > /mnt/data/run.sh\n{body}\nEOF\nbash /mnt/data/run.sh"]})


def agent_mode_conversation(index: int = 0) -> tuple[ChatGPTConversation, dict[str, Expected]]:
    c = ChatGPTConversation(f"Flights to Lisbon {index}", f"agent-{index}")
    expected: dict[str, Expected] = {}
    slug = {"metadata": {"model_slug": "gpt-5-agent"}}

    def add(role: str, content, want: Expected | None, **fields) -> str:
        node = c.add(role, content, **fields)
        if want is not None:
            expected[node] = want
        return node

    question = "Find three flights to Lisbon under 400 euros and put them in a spreadsheet."
    add("user", question, Expected(question, True))
    add("assistant", {"content_type": "thoughts", "thoughts": [{"summary": "Plan", "content": "I will open a browser."}]},
        Expected(None, False), **slug)
    add("assistant", {"content_type": "text", "parts": [json.dumps({"actions": [{"action": "click", "x": 410, "y": 220},
                                                                                {"action": "type", "text": "Lisbon flights"}]})]},
        Expected(None, False), recipient="computer.do", **slug)
    add("tool", {"content_type": "multimodal_text", "parts": [{"content_type": "image_asset_pointer", "asset_pointer": "sediment://shot"}]},
        Expected(None, False), author={"role": "tool", "name": "computer.do", "metadata": {}})
    add("assistant", {"content_type": "code", "language": "json", "text": json.dumps({"query": "cheap flights Lisbon " + PAYLOAD_WORDS})},
        Expected(None, False), recipient="browser.search", **slug)
    add("assistant", {"content_type": "code", "language": "unknown", "text": _heredoc(PAYLOAD_WORDS, 300)},
        Expected(None, False), recipient="container.exec", **slug)
    add("tool", {"content_type": "execution_output", "text": "done\n" * 50}, Expected(None, False),
        author={"role": "tool", "name": "container.exec", "metadata": {}})
    add("assistant", {"content_type": "code", "language": "python",
                      "text": "import pandas as pd\n# " + PAYLOAD_WORDS + "\npd.DataFrame(rows).to_excel('/mnt/data/flights.xlsx')"},
        Expected(None, False), recipient="python", **slug)
    add("assistant", {"content_type": "text", "parts": [json.dumps({"prompt": "a tram in Alfama, " + PAYLOAD_WORDS})]},
        Expected(None, False), recipient="image_gen.text2im", **slug)
    add("assistant", {"content_type": "code", "language": "json", "text": json.dumps({"open": [{"ref_id": "turn0search0"}]})},
        Expected(None, False), recipient="web.run", **slug)
    add("assistant", {"content_type": "text", "parts": ["User prefers window seats."]}, Expected(None, False), recipient="bio", **slug)
    answer = ("I found three flights under 400 euros【12†source】. The cheapest is TAP at 289 euros"
              "\ue200cite\ue202turn0search3\ue201, and \ue200entity\ue202[\"airline\", \"Ryanair\", \"Ireland\"]\ue201 has one "
              "at 310 euros. Your notes are in {{file:file-AbC123}}.\n\n"
              "[Download the spreadsheet](sandbox:/mnt/data/flights.xlsx) or open sandbox:/mnt/data/notes.txt.")
    clean = ("I found three flights under 400 euros. The cheapest is TAP at 289 euros, and Ryanair has one at 310 euros. "
             "Your notes are in.\n\nDownload the spreadsheet or open notes.txt.")
    add("assistant", {"content_type": "text", "parts": [answer]}, Expected(clean, True), **slug)
    return c, expected


COVER_LETTER = "Dear Hiring Manager,\n\nI’m excited to apply to Greenleaf Labs.\n\nBest,\nAna"
UPDATED = "Dear Hiring Manager,\n\nI’m excited to apply to Greenleaf Labs. I also boulder twice a week.\n\nBest,\nAna"
FINAL = UPDATED.replace("Dear Hiring Manager", "Dear Ms. Rocha")


def canvas_conversation() -> tuple[ChatGPTConversation, dict[str, Expected]]:
    c = ChatGPTConversation("Cover letter", "canvas-1")
    expected: dict[str, Expected] = {}
    slug = {"metadata": {"model_slug": "gpt-5"}}
    ask = "Write a short cover letter for the Greenleaf Labs job."
    expected[c.add("user", ask)] = Expected(ask, True)
    create = json.dumps({"name": "Cover Letter", "type": "document", "content": COVER_LETTER})
    expected[c.add("assistant", {"content_type": "code", "language": "json", "text": create}, recipient="canmore.create_textdoc",
                   **slug)] = Expected(f"Cover Letter\n\n{FINAL}", False)
    expected[c.add("tool", {"content_type": "text", "parts": ["Successfully created text document 'Cover Letter'"]},
                   author={"role": "tool", "name": "canmore.create_textdoc", "metadata": {}},
                   metadata={"canvas": {"textdoc_id": "doc1", "version": 1}})] = Expected(None, False)
    expected[c.add("assistant", "I've drafted the cover letter in the canvas.", **slug)] = Expected(
        "I've drafted the cover letter in the canvas.", True)
    expected[c.add("user", "Mention my bouldering.")] = Expected("Mention my bouldering.", True)
    rewrite = json.dumps({"updates": [{"pattern": ".*", "multiple": False, "replacement": UPDATED}]})
    expected[c.add("assistant", {"content_type": "code", "language": "json", "text": rewrite}, recipient="canmore.update_textdoc",
                   **slug)] = Expected(None, False)
    targeted = json.dumps({"updates": [{"pattern": "Dear Hiring Manager", "multiple": False, "replacement": "Dear Ms. Rocha"}]})
    expected[c.add("assistant", {"content_type": "code", "language": "json", "text": targeted}, recipient="canmore.update_textdoc",
                   **slug)] = Expected(None, False)
    expected[c.add("assistant", "Updated: it mentions bouldering and addresses Ms. Rocha.", **slug)] = Expected(
        "Updated: it mentions bouldering and addresses Ms. Rocha.", True)
    return c, expected


def interrupted_conversation() -> tuple[ChatGPTConversation, dict[str, Expected]]:
    c = ChatGPTConversation("Stopped answer", "interrupted-1")
    expected: dict[str, Expected] = {}
    expected[c.add("user", "Explain the history of Porto Alegre.")] = Expected("Explain the history of Porto Alegre.", True)
    cut = "Porto Alegre was founded in 1772 by settlers from the Azores, and"
    expected[c.add("assistant", cut, status="finished_partial_completion",
                   metadata={"model_slug": "gpt-5", "finish_details": {"type": "interrupted"}})] = Expected(cut, False)
    return c, expected


def late_2025_conversations() -> list[tuple[ChatGPTConversation, dict[str, Expected]]]:
    return [agent_mode_conversation(), canvas_conversation(), interrupted_conversation()]
