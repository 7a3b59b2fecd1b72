"""kill -9 in the middle of a real import (a subprocess running the CLI), then recover and resume."""

import os
import signal
import subprocess
import sys
import time
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
    wal = Path(str(layout.memory_db) + ".wal")
    process = subprocess.Popen([sys.executable, "-m", "app.cli", "import", str(path)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    # Wait for the event (vectors committed to the WAL), not for a deadline: on a loaded machine the
    # import is slower, and killing it earlier would test nothing. The cap only guards against a hang.
    hang_guard = time.time() + 1800
    while not (wal.exists() and wal.stat().st_size > 200_000):
        assert process.poll() is None, "the import finished before it could be interrupted; make the export bigger"
        assert time.time() < hang_guard, "the import wrote nothing for 30 minutes"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()

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
