"""Open an export's JSON as a byte stream, from a bare file or from inside a .zip, defensively.

Nothing is extracted to disk: a zip member is streamed straight from the archive, so a hostile
member name cannot write anywhere. We still refuse archives with traversal names (they are not real
exports) and cap the uncompressed size and compression ratio (zip bombs), counting the bytes we
actually read rather than trusting the sizes the archive declares.
"""

from __future__ import annotations

import contextlib
import io
import lzma
import os
import stat
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from backend.importers.model import ImportFormatError, MissingInput

MAX_UNCOMPRESSED_BYTES = 32 * 1024**3
MAX_COMPRESSION_RATIO = 200
MAX_MEMBERS = 200_000
SUPPORTED_COMPRESSION = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
# What a damaged member raises while it is decompressed: each becomes a clear ImportFormatError.
DECOMPRESSION_ERRORS = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError)

ByteProgress = Callable[[int, int], None]


class CountingReader(io.RawIOBase):
    """Reads from ``inner``, counts bytes (for progress), and fails past ``limit`` bytes in all or
    past the current item's budget (see :meth:`start_item`)."""

    def __init__(self, inner: BinaryIO, total: int, limit: int, what: str, *, archive: str | None = None) -> None:
        self._inner = inner
        self._limit = limit
        self._read = 0
        self._what = what
        self._archive = archive
        self._item_start = 0
        self._item_limit: int | None = None
        self._item_what = ""
        self.total_bytes = total

    @property
    def bytes_read(self) -> int:
        return self._read

    def start_item(self, limit: int, what: str) -> None:
        """From here on, fail once more than ``limit`` bytes are read before the next call."""
        self._item_start = self._read
        self._item_limit = limit
        self._item_what = what

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        try:
            data = self._inner.read(len(buffer))
        except DECOMPRESSION_ERRORS as exc:
            if self._archive is None:
                raise
            raise ImportFormatError(f"{self._archive} is damaged and cannot be decompressed ({exc}).") from exc
        self._read += len(data)
        if self._read > self._limit:
            raise ImportFormatError(f"{self._what} expands beyond {self._limit:,} bytes; refusing a possible zip bomb.")
        if self._item_limit is not None and self._read - self._item_start > self._item_limit:
            raise ImportFormatError(f"{self._item_what} is larger than {self._item_limit // 1024**2:,} MiB; "
                                    "refusing it (a damaged export or a zip bomb).")
        buffer[: len(data)] = data
        return len(data)


def _check_member_names(archive: zipfile.ZipFile, path: Path) -> None:
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ImportFormatError(f"{path.name} has {len(infos):,} entries; that is not a chat export.")
    for info in infos:
        name = info.filename
        pure = PurePosixPath(name.replace("\\", "/"))
        if pure.is_absolute() or ".." in pure.parts or (len(name) > 1 and name[1] == ":"):
            raise ImportFormatError(f"{path.name} contains an unsafe entry name {name!r}; refusing the archive.")


def find_member(archive: zipfile.ZipFile, file_name: str) -> zipfile.ZipInfo | None:
    """The shallowest member called ``file_name`` (exports put it at the root or one folder down)."""
    return find_matching(archive, lambda name: PurePosixPath(name).name == file_name)


def find_matching(archive: zipfile.ZipFile, accept: Callable[[str], bool]) -> zipfile.ZipInfo | None:
    matches = [i for i in archive.infolist() if not i.is_dir() and accept(i.filename)]
    return min(matches, key=lambda i: (i.filename.count("/"), i.filename)) if matches else None


@contextlib.contextmanager
def open_export_json(path: Path, file_name: str, *, member: Callable[[str], bool] | None = None) -> Iterator[CountingReader]:
    """Yield a byte stream of ``file_name``: ``path`` itself, or that member of the zip at ``path``
    (``member``: pick the shallowest member whose name it accepts instead, for exports that translate
    their file names).

    The stream's ``bytes_read``/``total_bytes`` give import progress without a counting pass."""
    _check_input(path, f"give the export .zip or its {file_name}")
    if path.is_dir():
        raise ImportFormatError(f"{path} is a folder; give the export .zip or its {file_name}.")
    if zipfile.is_zipfile(path):
        with _open_archive(path) as archive:
            info = find_member(archive, file_name) if member is None else find_matching(archive, member)
            if info is None:
                raise ImportFormatError(f"{path.name} has no {file_name}; is this the right export?")
            with _open_zip_member(archive, info, path) as stream:
                yield stream
        return
    with path.open("rb") as handle:
        size = path.stat().st_size
        yield CountingReader(handle, size, size + 1, path.name)  # type: ignore[misc]


def _check_input(path: Path, what_to_give: str) -> None:
    if not path.exists():
        raise MissingInput(f"{path} does not exist.")
    if not path.is_dir() and not stat.S_ISREG(path.stat().st_mode):
        raise ImportFormatError(f"{path.name} is not a regular file (a pipe or a device?); {what_to_give}.")


@contextlib.contextmanager
def _open_archive(path: Path) -> Iterator[zipfile.ZipFile]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ImportFormatError(f"{path.name} is a damaged zip file ({exc}).") from exc
    with archive:
        _check_member_names(archive, path)
        yield archive


@contextlib.contextmanager
def _open_zip_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> Iterator[CountingReader]:
    if info.flag_bits & 0x1:
        raise ImportFormatError(f"{info.filename} in {path.name} is encrypted; export again without a password.")
    if info.compress_type not in SUPPORTED_COMPRESSION:
        raise ImportFormatError(f"{info.filename} in {path.name} uses an unsupported compression method "
                                f"({info.compress_type}); re-zip it with ordinary (deflate) compression.")
    if info.file_size > MAX_UNCOMPRESSED_BYTES or (
        info.compress_size and info.file_size / max(info.compress_size, 1) > MAX_COMPRESSION_RATIO
    ):
        raise ImportFormatError(f"{info.filename} in {path.name} declares an implausible size; refusing a possible zip bomb.")
    limit = min(MAX_UNCOMPRESSED_BYTES, max(info.file_size, 1) + 1024)
    try:
        member = archive.open(info)
    except (*DECOMPRESSION_ERRORS, NotImplementedError, RuntimeError) as exc:
        raise ImportFormatError(f"{path.name} is damaged or uses a zip feature we cannot read ({exc}).") from exc
    with member:
        yield CountingReader(member, info.file_size, limit, f"{info.filename} in {path.name}",  # type: ignore[misc]
                             archive=path.name)


# An unzipped export is read to this depth (the export's own folder, or one folder above it).
FOLDER_DEPTH = 2


@dataclass(frozen=True)
class ExportFile:
    """One file of an export: its name inside the .zip or the folder (``/``-separated) and its size."""

    name: str
    size: int

    @property
    def base_name(self) -> str:
        return PurePosixPath(self.name).name


def list_export(path: Path) -> list[ExportFile]:
    """The files of an export given as a .zip or an unzipped folder (regular files only; links,
    pipes and devices in a folder are passed over); a single file lists itself."""
    _check_input(path, "give the export .zip, its folder or one of its files")
    if path.is_dir():
        files = []
        for directory, subdirs, names in os.walk(path, followlinks=False):
            depth = len(Path(directory).relative_to(path).parts)
            subdirs[:] = sorted(d for d in subdirs if not d.startswith(".")) if depth + 1 < FOLDER_DEPTH else []
            for name in sorted(names):
                try:
                    info = (Path(directory) / name).lstat()
                except OSError:
                    continue
                if stat.S_ISREG(info.st_mode):
                    files.append(ExportFile((Path(directory) / name).relative_to(path).as_posix(), info.st_size))
                if len(files) > MAX_MEMBERS:
                    raise ImportFormatError(f"{path.name} holds more than {MAX_MEMBERS:,} files; that is not a chat export.")
        return files
    if zipfile.is_zipfile(path):
        with _open_archive(path) as archive:
            return [ExportFile(i.filename, i.file_size) for i in archive.infolist() if not i.is_dir()]
    return [ExportFile(path.name, path.stat().st_size)]


@contextlib.contextmanager
def open_export_file(path: Path, name: str) -> Iterator[CountingReader]:
    """A byte stream of the file ``name`` (from :func:`list_export`) of the export at ``path``,
    with the same limits as :func:`open_export_json`."""
    if path.is_dir():
        target = path / name
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(target, flags)
        except OSError as exc:
            raise ImportFormatError(f"{name} in {path.name} cannot be read ({exc.strerror}).") from exc
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise ImportFormatError(f"{name} in {path.name} is not a regular file.")
            yield CountingReader(handle, info.st_size, info.st_size + 1, f"{name} in {path.name}")  # type: ignore[misc]
        return
    if zipfile.is_zipfile(path):
        with _open_archive(path) as archive:
            try:
                info = archive.getinfo(name)
            except KeyError as exc:
                raise ImportFormatError(f"{path.name} has no {name}.") from exc
            with _open_zip_member(archive, info, path) as stream:
                yield stream
        return
    with open_export_json(path, name) as stream:
        yield stream


def read_head(path: Path, file_name: str, size: int = 65536, *, member: Callable[[str], bool] | None = None) -> bytes:
    """The first bytes of the export's JSON; raises ImportFormatError for archive problems."""
    with open_export_json(path, file_name, member=member) as stream:
        return stream.read(size)


def head_has(head: bytes, marker: bytes) -> bool:
    """A JSON list whose beginning mentions ``marker`` (e.g. b'"mapping"' for ChatGPT)."""
    return head.lstrip().startswith(b"[") and marker in head


def looks_like_export(path: Path, file_name: str, marker: bytes) -> bool:
    try:
        return head_has(read_head(path, file_name), marker)
    except ImportFormatError:
        return False
