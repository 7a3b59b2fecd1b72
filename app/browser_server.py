"""Browser mode: the same UI and bridge served on 127.0.0.1 for machines without a display.

Defences, because any web page the user visits can send requests to loopback:
- a random per-launch token (sent by the UI in ``X-Orch-Token``; the URL carries it in the fragment,
  which browsers never send to servers) guards every API, event and upload route;
- the Host header must name our own loopback address (DNS-rebinding defence);
- a strict Content-Security-Policy and ``nosniff`` on every response.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from app.events import EventChannel
from app.validation import exposed_methods, safe_file_name
from backend.errors import ValidationError
from backend.loopback_server import LOOPBACK, loopback_host_allowed, read_body_capped

FRONTEND_DIR = Path(__file__).resolve().parent.parent / "frontend"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'none'"
)
MAX_CALL_BODY = 2 * 1024 * 1024
MAX_UPLOAD_BYTES = 8 * 1024 * 1024 * 1024


@dataclass(frozen=True)
class BrowserModeConfig:
    port: int
    token: str
    uploads_dir: Path

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/#token={self.token}"


SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]


class GuardMiddleware:
    """Host check on every request, security headers on every response (the refusal's too)."""

    def __init__(self, app: ASGIApp, port: int) -> None:
        self.app = app
        self.port = port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if not loopback_host_allowed(headers.get("host", ""), self.port):
            await PlainTextResponse("Forbidden host.", status_code=403)(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)


def _failure(code: str, message: str, status: int) -> JSONResponse:
    return JSONResponse({"ok": False, "error": {"code": code, "message": message}}, status)


def _token_ok(request: Request, token: str, *, query_allowed: bool = False) -> bool:
    """The launch token from ``X-Orch-Token``; from the query string only where a browser API
    cannot set headers (EventSource), since URLs end up in logs and history."""
    supplied = request.headers.get("x-orch-token") or (request.query_params.get("token") if query_allowed else "") or ""
    return hmac.compare_digest(supplied.encode(), token.encode())


def create_browser_app(api: object, events: EventChannel, config: BrowserModeConfig) -> ASGIApp:
    methods = exposed_methods(api)

    async def call(request: Request) -> Response:
        if not _token_ok(request, config.token):
            return _failure("unauthorized", "Missing or wrong token.", 401)
        name = request.path_params["method"]
        method = methods.get(name)
        if method is None:
            return _failure("unknown_method", f"No bridge method {name!r}.", 404)
        body = await read_body_capped(request, MAX_CALL_BODY)
        if body is None:
            return _failure("too_large", "Request too large.", 413)
        try:
            payload = json.loads(body.decode("utf-8") or "{}")
        except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested too deeply
            return _failure("invalid_json", "The body is not a JSON object.", 400)
        args = payload.get("args", []) if isinstance(payload, dict) else None
        if not isinstance(args, list):
            return _failure("invalid_argument", "args must be a list.", 400)
        result = await run_in_threadpool(method, *args)
        return JSONResponse(result)

    async def event_stream(request: Request) -> Response:
        if not _token_ok(request, config.token, query_allowed=True):
            return PlainTextResponse("Missing or wrong token.", status_code=401)
        try:
            cursor = int(request.headers.get("last-event-id") or request.query_params.get("after") or 0)
        except ValueError:
            cursor = 0

        async def stream() -> Any:
            nonlocal cursor
            yield "retry: 1000\n\n"
            while not await request.is_disconnected():
                batch, cursor = await run_in_threadpool(events.since, cursor, 10.0)
                for event in batch:
                    yield f"id: {event['seq']}\ndata: {json.dumps(event)}\n\n"
                if not batch:
                    yield ": keep-alive\n\n"
                await asyncio.sleep(0)

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def upload(request: Request) -> Response:
        if not _token_ok(request, config.token):
            return _failure("unauthorized", "Missing or wrong token.", 401)
        try:
            name = safe_file_name(request.query_params.get("name", "upload"))
        except ValidationError as exc:
            return _failure(exc.code, exc.message, 400)
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
            return _failure("too_large", "The upload exceeds 8 GiB.", 413)
        stored_name = f"{secrets.token_hex(4)}-{name}"
        target = config.uploads_dir / stored_name
        partial = target.with_name(target.name + ".part")
        written = 0
        try:
            with partial.open("wb") as handle:
                async for chunk in request.stream():
                    written += len(chunk)
                    if written > MAX_UPLOAD_BYTES:
                        return _failure("too_large", "The upload exceeds 8 GiB.", 413)
                    handle.write(chunk)
            partial.replace(target)
        finally:  # a refused or aborted upload leaves nothing behind
            partial.unlink(missing_ok=True)
        return JSONResponse({"ok": True, "data": {"upload": stored_name, "bytes": written}})

    async def index(request: Request) -> Response:
        return FileResponse(FRONTEND_DIR / "index.html")

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/api/{method:str}", call, methods=["POST"]),
            Route("/events", event_stream),
            Route("/upload", upload, methods=["POST"]),
            Mount("/", StaticFiles(directory=FRONTEND_DIR)),
        ]
    )
    return GuardMiddleware(app, config.port)
