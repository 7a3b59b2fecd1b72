"""A typed client for the Node sidecar: JSON lines over its stdin/stdout, restarted if it dies.

Replies are matched to requests by id; everything else the sidecar prints is an event, typed by
:mod:`backend.p2p.sidecar_messages`, handed to ``on_event`` from the reader thread. stderr goes to
the app log. When the process exits unexpectedly, the client starts a new one and calls
``on_restart`` so the owner can replay its state (identity, rooms, shares, downloads): the sidecar
itself keeps nothing the app needs.

The sidecar forwards peer data it has already validated, but this reader does not rely on that: a
line is read with a length cap and parsed with a nesting cap, any error is handled per line, and
if the reader itself dies the process is killed so that the restart path above takes over (and the
owner hears ``sidecar-restarted``), instead of leaving every later call to time out.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from backend.errors import OrchMindError, field_problems
from backend.json_limits import json_depth
from backend.p2p.node_runtime import SIDECAR_DIR, node_executable, sidecar_dependencies_installed
from backend.p2p.sidecar_messages import Reply, SidecarEvent, SidecarFailed, SidecarRestarted, parse_message

log = logging.getLogger("orch_mind.p2p.sidecar")
MAX_RESTARTS_PER_MINUTE = 5
MAX_LINE_BYTES = 4 * 1024 * 1024
MAX_JSON_DEPTH = 32


class SidecarError(OrchMindError):
    code = "p2p"


def parse_line(raw: bytes) -> dict[str, Any]:
    """One sidecar line as a JSON object; ValueError for anything else (too deep, not JSON, not a dict)."""
    text = raw.decode("utf-8")
    if json_depth(text) > MAX_JSON_DEPTH:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    message = json.loads(text)
    if not isinstance(message, dict):
        raise ValueError("not a JSON object")
    return message


class SidecarProcess:
    def __init__(self, on_event: Callable[[SidecarEvent], None], on_restart: Callable[[], None] | None = None,
                 command: list[str] | None = None) -> None:
        if command is None and not sidecar_dependencies_installed():
            raise SidecarError("The P2P sidecar's npm packages are missing; run `make install`.")
        self._command = command or [str(node_executable()), str(SIDECAR_DIR / "sidecar.js")]
        self._on_event = on_event
        self._on_restart = on_restart
        self._ids = itertools.count(1)
        self._pending: dict[int, Future[Any]] = {}
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._closing = False
        self._restarts: list[float] = []
        self.restart_count = 0
        self.reader_failures = 0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self) -> None:
        env = {**os.environ, "NODE_OPTIONS": ""}
        self._process = subprocess.Popen(
            self._command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=SIDECAR_DIR, env=env)
        process = self._process
        threading.Thread(target=self._read_stdout, args=(process,), daemon=True, name="p2p-sidecar-out").start()
        threading.Thread(target=self._read_stderr, args=(process,), daemon=True, name="p2p-sidecar-err").start()

    def call(self, cmd: str, timeout: float = 30.0, **args: Any) -> Any:
        """Send one command and wait for its reply; raise SidecarError with the sidecar's message."""
        future: Future[Any] = Future()
        with self._lock:
            process = self._process
            if process is None or process.poll() is not None or process.stdin is None:
                raise SidecarError("The P2P sidecar is not running.")
            request_id = next(self._ids)
            self._pending[request_id] = future
            try:
                process.stdin.write(json.dumps({"id": request_id, "cmd": cmd, "args": args}).encode() + b"\n")
                process.stdin.flush()
            except (BrokenPipeError, OSError) as exc:
                self._pending.pop(request_id, None)
                raise SidecarError(f"The P2P sidecar went away: {exc}") from exc
        try:
            return future.result(timeout=timeout)
        except TimeoutError as exc:
            raise SidecarError(f"The P2P sidecar did not answer {cmd!r} within {timeout:.0f} s.") from exc
        finally:
            with self._lock:
                self._pending.pop(request_id, None)

    def close(self, timeout: float = 10.0) -> None:
        self._closing = True
        process = self._process
        if process is None:
            return
        try:
            if process.stdin:
                process.stdin.close()  # the sidecar shuts down cleanly when its stdin ends
            process.wait(timeout=timeout)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()

    def _read_stdout(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        try:
            while line := process.stdout.readline(MAX_LINE_BYTES):
                if not line.endswith(b"\n") and len(line) >= MAX_LINE_BYTES:
                    skipped = _discard_rest_of_line(process.stdout)
                    log.warning("sidecar printed a line over %d bytes (%d more skipped)", MAX_LINE_BYTES, skipped)
                    continue
                self._handle_line(line)
        except Exception:  # a dead reader would leave every call hanging: restart the sidecar instead
            log.exception("The P2P sidecar reader failed; restarting the sidecar.")
            self.reader_failures += 1
            process.kill()
        process.wait()
        self._on_exit(process)

    def _handle_line(self, line: bytes) -> None:
        try:
            message = parse_line(line)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            log.warning("sidecar printed an unusable line (%s): %s", exc, printable(line[:200]))
            return
        try:
            typed = parse_message(message)
        except PydanticValidationError as exc:
            log.warning("sidecar printed a message of no known shape (%s): %s",
                        printable(field_problems(exc, "message"))[:300], printable(line[:200]))
            return
        if not isinstance(typed, Reply):
            self._deliver(typed)
            return
        with self._lock:
            future = self._pending.get(typed.id)
        if future is not None and not future.done():
            if typed.ok:
                future.set_result(typed.result)
            else:
                future.set_exception(SidecarError(typed.error[:500]))

    def _deliver(self, event: SidecarEvent) -> None:
        try:
            self._on_event(event)
        except Exception:  # an event handler bug must not kill the reader thread
            log.exception("P2P event handler failed on %s", event.event)

    def _read_stderr(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stderr is not None
        while line := process.stderr.readline(64 * 1024):
            log.info("sidecar: %s", printable(line.rstrip(b"\n")))

    def _on_exit(self, process: subprocess.Popen[bytes]) -> None:
        with self._lock:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(SidecarError("The P2P sidecar exited while handling a request."))
            if self._closing or process is not self._process:
                return
        log.error("The P2P sidecar exited with code %s; restarting it.", process.returncode)
        now = time.monotonic()
        self._restarts = [t for t in self._restarts if now - t < 60] + [now]
        if len(self._restarts) > MAX_RESTARTS_PER_MINUTE:
            log.error("The P2P sidecar keeps crashing; network features are off until the app restarts.")
            self._deliver(SidecarFailed(event="sidecar-failed", code=process.returncode))
            return
        self.restart_count += 1
        self.start()
        self._deliver(SidecarRestarted(event="sidecar-restarted", code=process.returncode, restarts=self.restart_count))
        if self._on_restart is not None:
            threading.Thread(target=self._on_restart, daemon=True, name="p2p-sidecar-replay").start()


def _discard_rest_of_line(stream: Any) -> int:
    skipped = 0
    while chunk := stream.readline(MAX_LINE_BYTES):
        skipped += len(chunk)
        if chunk.endswith(b"\n"):
            break
    return skipped


def printable(value: bytes | str) -> str:
    """Text safe for one log line: control characters (a peer may have chosen them) escaped."""
    text = value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
