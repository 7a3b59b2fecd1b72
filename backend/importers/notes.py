"""A folder of notes (Markdown or text, e.g. an Obsidian vault): each file is one "conversation".

Notes are the user's own writing, so they are memory and may be training data ("my own messages").
Symlinks are not followed (a vault must not pull in files from elsewhere), hidden folders such as
``.obsidian`` and ``.git`` are skipped, and files over 5 MB are skipped as not being notes.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from backend.importers.model import ImportedConversation, ImportedMessage, ImportFormatError

SOURCE_KIND = "notes"
EXTENSIONS = {".md", ".markdown", ".txt"}
MAX_NOTE_BYTES = 5 * 1024 * 1024


def detect(path: Path) -> bool:
    return path.is_dir()


def _title(relative: Path, text: str) -> str:
    for line in text.splitlines()[:20]:
        if line.startswith("# "):
            return line[2:].strip() or relative.stem
    return relative.stem


def iter_note_files(root: Path) -> Iterator[Path]:
    """Regular files only: a symlink, a named pipe (whose read would wait forever) or a device in
    the folder is passed over, as is anything that vanishes while the folder is walked."""
    for directory, subdirs, files in os.walk(root, followlinks=False):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(directory) / name
            if path.suffix.lower() not in EXTENSIONS:
                continue
            try:
                info = path.lstat()
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode) and info.st_size <= MAX_NOTE_BYTES:
                yield path


def read_note(path: Path) -> str:
    """The note's text; opened without following a link and without waiting on a pipe that
    replaced the file since it was listed, and never more than the size cap."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return ""
        data = handle.read(MAX_NOTE_BYTES + 1)
    return data[:MAX_NOTE_BYTES].decode("utf-8", errors="replace")


def iter_conversations(root: Path) -> Iterator[ImportedConversation]:
    if not root.is_dir():
        raise ImportFormatError(f"{root} is not a folder of notes.")
    for path in iter_note_files(root):
        relative = path.relative_to(root)
        try:
            text = read_note(path).strip()
        except OSError:
            continue  # removed or replaced by a link while importing
        if not text:
            continue
        modified = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC).replace(tzinfo=None)
        note_id = hashlib.sha1(relative.as_posix().encode()).hexdigest()[:16]
        yield ImportedConversation(
            source_kind=SOURCE_KIND, external_id=relative.as_posix(), title=_title(relative, text),
            created_at=modified, updated_at=modified,
            messages=[ImportedMessage(note_id, "user", text, "note", modified, None, True, True)],
        )
