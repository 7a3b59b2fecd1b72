"""A typed client for the Node sidecar: JSON lines over its stdin/stdout, restarted if it dies.

Replies are matched to requests by id; everything else the sidecar prints is an event handed to
``on_event`` from the reader thread. stderr goes to the app log. When the process exits
unexpectedly, the client starts a new one and calls ``on_restart`` so the owner can replay its
state (identity, rooms, shares, downloads): the sidecar itself keeps nothing the app needs.
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

from backend.errors import OrchMindError
from backend.p2p.node_runtime import SIDECAR_DIR, node_executable, sidecar_dependencies_installed

log = logging.getLogger("orch_mind.p2p.sidecar")
Event = dict[str, Any]
MAX_RESTARTS_PER_MINUTE = 5


class SidecarError(OrchMindError):
    code = "p2p"


class SidecarProcess:
    def __init__(self, on_event: Callable[[Event], None], on_restart: Callable[[], None] | None = None,
                 command: list[str] | None = None) -> None:
        if command is None and not sidecar_dependencies_installed():
            raise SidecarError("The P2P sidecar's npm packages are missing; run `make install`.")
        self._command = command or [str(node_executable()), str(SIDECAR_DIR / "sidecar.js")]
        self._on_event = on_event
        self._on_restart = on_restart
        self._ids = itertools.count(1)
        self._pending: dict[int, Future[Any]] = {}
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self._closing = False
        self._restarts: list[float] = []
        self.restart_count = 0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self) -> None:
        env = {**os.environ, "NODE_OPTIONS": ""}
        self._process = subprocess.Popen(
            self._command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, bufsize=1, cwd=SIDECAR_DIR, env=env)
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
                process.stdin.write(json.dumps({"id": request_id, "cmd": cmd, "args": args}) + "\n")
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

    def _read_stdout(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                log.warning("sidecar printed a non-JSON line: %s", line.rstrip()[:200])
                continue
            if "event" in message:
                try:
                    self._on_event(message)
                except Exception:  # an event handler bug must not kill the reader thread
                    log.exception("P2P event handler failed on %s", message.get("event"))
                continue
            with self._lock:
                future = self._pending.get(message.get("id"))
            if future is not None and not future.done():
                if message.get("ok"):
                    future.set_result(message.get("result"))
                else:
                    future.set_exception(SidecarError(str(message.get("error", "unknown sidecar error"))))
        process.wait()
        self._on_exit(process)

    def _read_stderr(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            log.info("sidecar: %s", line.rstrip())

    def _on_exit(self, process: subprocess.Popen[str]) -> None:
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
            self._on_event({"event": "sidecar-failed", "code": process.returncode})
            return
        self.restart_count += 1
        self.start()
        if self._on_restart is not None:
            threading.Thread(target=self._on_restart, daemon=True, name="p2p-sidecar-replay").start()
