"""Who may talk to the embedded engine: the defences Ollama added after its DNS-rebinding and CSRF
reports (CVE-2024-28224 class), applied before a request reaches any endpoint.

Any web page the user opens can send requests to 127.0.0.1. Three checks keep pages out:
- **Host**: only a loopback name (with our port) is served, so a rebound ``evil.example`` is refused.
- **Origin**: browsers send it on every cross-origin POST (also the "simple" ``text/plain`` ones that
  skip the CORS preflight). Endpoints that change models (create, delete, copy, blob uploads) refuse
  every browser origin; the others serve only origins the user allowed (Settings →
  ``engine_origins``, or ``ORCH_MIND_ORIGINS``, comma-separated, ``*`` as a wildcard). None by
  default: a personal model can repeat what it learned about its owner.
- **Content type**: a POST body must be ``application/json`` (blob uploads excepted), which a page
  cannot send cross-origin without a preflight we would refuse.
Programs (the ollama and openai clients, curl) send no Origin and pass the Origin check.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.loopback_server import loopback_host_allowed

ORIGINS_ENV = "ORCH_MIND_ORIGINS"
WRITE_PATHS = ("/api/create", "/api/delete", "/api/copy", "/api/blobs/", "/api/pull", "/api/push")
JSON_EXEMPT_PATHS = ("/api/blobs/",)


def is_write_path(path: str) -> bool:
    return any(path == p or (p.endswith("/") and path.startswith(p)) for p in WRITE_PATHS)


class OriginPolicy:
    """The browser origins allowed to call the engine's read endpoints (chat, generate, list …)."""

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        self.patterns = [p.strip().lower().rstrip("/") for p in patterns if p and p.strip()]
        self._compiled = [re.compile("\\A" + ".*".join(re.escape(part) for part in p.split("*")) + "\\Z")
                          for p in self.patterns]

    @classmethod
    def from_settings(cls, configured: Iterable[str]) -> OriginPolicy:
        extra = os.environ.get(ORIGINS_ENV, "")
        return cls([*configured, *extra.split(",")])

    def allows(self, origin: str) -> bool:
        origin = origin.strip().lower().rstrip("/")
        return any(pattern.match(origin) for pattern in self._compiled)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def _refuse(send: Send, status: int, message: str, path: str) -> None:
    if path.startswith("/v1/"):
        body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}
    else:
        body = {"error": message}
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


class EngineGuard:
    """ASGI middleware: Host, Origin and content-type checks, CORS headers for allowed origins."""

    def __init__(self, app: ASGIApp, port: int, origins: OriginPolicy) -> None:
        self.app = app
        self.port = port
        self.origins = origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        method: str = scope["method"]
        if not loopback_host_allowed(_header(scope, b"host") or "", self.port):
            await _refuse(send, 403, "forbidden host: the engine answers only requests addressed to 127.0.0.1 or localhost", path)
            return
        origin = _header(scope, b"origin")
        if origin is not None:
            if is_write_path(path):
                await _refuse(send, 403, "web pages may not change models; use the Orch-Mind app or a local program", path)
                return
            if not self.origins.allows(origin):
                await _refuse(send, 403, f"origin {origin[:100]!r} is not allowed; add it under Settings → "
                                         "engine origins to let that page use your models", path)
                return
            if method == "OPTIONS":
                await send({"type": "http.response.start", "status": 204, "headers": self._cors(origin) + [
                    (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
                    (b"access-control-allow-headers", b"Content-Type, Authorization"),
                    (b"access-control-max-age", b"600")]})
                await send({"type": "http.response.body", "body": b""})
                return
        if method in ("POST", "PUT", "PATCH", "DELETE") and not path.startswith(JSON_EXEMPT_PATHS) and self._has_body(scope):
            content_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
            if content_type != "application/json":
                await _refuse(send, 415, "send the body as JSON with 'Content-Type: application/json' "
                                         "(curl: -H 'Content-Type: application/json')", path)
                return
        if origin is None:
            await self.app(scope, receive, send)
            return
        cors = self._cors(origin)

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + cors
            await send(message)

        await self.app(scope, receive, send_with_cors)

    @staticmethod
    def _cors(origin: str) -> list[tuple[bytes, bytes]]:
        return [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]

    @staticmethod
    def _has_body(scope: Scope) -> bool:
        length = _header(scope, b"content-length")
        return _header(scope, b"transfer-encoding") is not None or (length is not None and length.strip() != "0")
