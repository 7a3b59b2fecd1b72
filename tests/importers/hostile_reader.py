"""Run the importers over hostile files in a child process with a memory cap (see test_hostile_inputs).

Reads a JSON list of ``{name, kind, path}`` on stdin and prints one JSON line per case: the error
the importer raised (code and message), or what it parsed. Anything else (a Python traceback, a
MemoryError) is printed as a crash, so a regression fails the test instead of exhausting the machine.
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path

MEMORY_CAP_BYTES = 3 * 1024**3


def read(kind: str, path: Path) -> list:
    from backend.importers import chatgpt, claude, notes

    if kind == "chatgpt":
        return list(chatgpt.iter_conversations(path))
    if kind == "claude":
        return list(claude.iter_conversations(path))
    return list(notes.iter_conversations(path))


def main() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP_BYTES, MEMORY_CAP_BYTES))
    from backend.errors import OrchMindError

    for case in json.load(sys.stdin):
        try:
            conversations = read(case["kind"], Path(case["path"]))
            result = {"outcome": "parsed", "conversations": len(conversations),
                      "messages": sum(len(c.messages) for c in conversations),
                      "skipped": sum(c.skipped_messages for c in conversations),
                      "roles": sorted({m.role for c in conversations for m in c.messages}),
                      "titles": [c.title for c in conversations]}
        except OrchMindError as exc:
            result = {"outcome": "refused", "code": exc.code, "message": exc.message}
        except BaseException as exc:  # noqa: BLE001 - reported to the test as the failure it is
            result = {"outcome": "crash", "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
        print(json.dumps({"name": case["name"], **result}), flush=True)


if __name__ == "__main__":
    main()
