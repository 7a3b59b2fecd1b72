"""One way to run an ASGI app on 127.0.0.1: in a background thread (app, tests) or in the foreground.

Used by browser mode and by the embedded inference engine; nothing we start binds another address.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

LOOPBACK = "127.0.0.1"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def loopback_host_allowed(host: str, port: int) -> bool:
    """The DNS-rebinding defence: a request's Host must name loopback (with our port, or none).

    A page on ``evil.example`` whose name is re-pointed at 127.0.0.1 still sends ``Host:
    evil.example``, so only a loopback name can mean the request was addressed to us on purpose."""
    host = host.strip().lower()
    return any(host in (name, f"{name}:{port}") for name in LOOPBACK_NAMES)


async def read_body_capped(request: Any, limit: int) -> bytes | None:
    """A Starlette request's body, or None past ``limit`` bytes: the declared length is checked
    before a byte is read, and the stream is counted as it arrives (a client may lie about it)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


class LoopbackServer:
    def __init__(self, app: Any, port: int | None = None, name: str = "server") -> None:
        import uvicorn

        self.port = port or free_port()
        self.name = name
        # On stop, open connections (a page's event long-poll, a streaming reply) get 2 s to finish, not
        # forever: without the bound every stop waited out the 10 s join below.
        self._server = uvicorn.Server(uvicorn.Config(app, host=LOOPBACK, port=self.port, log_level="warning", access_log=False,
                                                     timeout_graceful_shutdown=2))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> LoopbackServer:
        self._thread = threading.Thread(target=self._server.run, daemon=True, name=self.name)
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"The {self.name} could not start on {self.url}.")
            threading.Event().wait(0.02)
        return self

    def run_forever(self) -> None:
        self._server.run()

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread:
            self._thread.join(timeout=10)
