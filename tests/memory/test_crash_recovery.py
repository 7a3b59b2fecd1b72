"""kill -9 in the middle of a real import (a subprocess running the CLI), then recover and resume."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from backend.memory.ingest import import_path
from backend.memory.store import MemoryStore
from tests.export_factory import simple_conversation, write_chatgpt_export


def big_export(path: Path, n: int) -> Path:
    conversations = [
        simple_conversation(f"Journal {i}", f"Entry {i}: today I walked {i} km along the river and saw herons.",
                            f"Reply {i}: walking {i} km is great exercise; herons nest near slow water.", f"walk-{i}")
        for i in range(n)
    ]
    return write_chatgpt_export(path, conversations)


@pytest.mark.slow
def test_kill_9_mid_import_leaves_a_consistent_store_and_the_next_import_resumes(layout, embedder, tmp_path):
    path = big_export(tmp_path / "big.zip", 1500)
    process = subprocess.Popen([sys.executable, "-m", "app.cli", "import", str(path)],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=os.environ.copy())
    # Wait for the event, not for a deadline: the CLI piped to a script prints one line per phase, and
    # "writing" starts only after every vector was embedded and committed. The write is one transaction,
    # so killing it now must leave the vectors and no conversation.
    seen = []
    for line in process.stdout:
        seen.append(line.strip())
        if line.startswith("writing:"):
            break
    assert process.poll() is None and seen[-1].startswith("writing:"), f"the import ended before the write phase: {seen}"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    process.stdout.close()

    store = MemoryStore(layout.memory_db)
    db = store.cursor()
    state, error = db.execute("SELECT state, error FROM imports").fetchone()
    assert state == "interrupted" and "import the file again" in error
    conversations = db.execute("SELECT count(*) FROM conversations").fetchone()[0]
    messages = db.execute("SELECT count(*) FROM messages").fetchone()[0]
    assert (conversations, messages) in ((0, 0), (1500, 3000)), "either nothing or everything was written"
    kept_vectors = db.execute("SELECT count(*) FROM embeddings").fetchone()[0]
    assert kept_vectors > 0, "vectors committed before the kill are kept for the next run"

    stats = import_path(store, path, embedder)
    assert stats.added + stats.unchanged == 1500
    assert stats.vectors_embedded == db.execute("SELECT count(DISTINCT text_hash) FROM chunks").fetchone()[0] - kept_vectors
    assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == 3000
    store.close()
