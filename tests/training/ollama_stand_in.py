"""A stand-in for a current Ollama daemon (none can be installed here), named so: a loopback proxy
in front of the embedded engine that answers ``/api/create`` as Ollama since v0.34.1 is reported to
when the request carries ``adapters`` (``refuse``), or creates the model without them (``ignore``,
an engine that drops the adapter silently). Everything else is passed through unchanged."""

from __future__ import annotations

import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

REFUSAL = "adapters are not supported by this version of Ollama: create a model from a merged GGUF instead"


class OllamaStandIn:
    def __init__(self, upstream: str, mode: str = "refuse") -> None:
        target = urlsplit(upstream)
        self.creates: list[dict] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.command == "POST" and self.path == "/api/create":
                    request = json.loads(body or b"{}")
                    stand_in.creates.append(request)
                    if request.get("adapters"):
                        if mode == "refuse":
                            return self._answer(400, {"error": REFUSAL})
                        request.pop("adapters")
                        body = json.dumps(request).encode()
                connection = http.client.HTTPConnection(target.hostname, target.port, timeout=600)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                connection.request(self.command, self.path, body=body or None, headers={**headers, "Content-Length": str(len(body))})
                reply = connection.getresponse()
                data = reply.read()
                self.send_response(reply.status)
                for key, value in reply.getheaders():
                    if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _answer(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_HEAD = do_DELETE = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> OllamaStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
