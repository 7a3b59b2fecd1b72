"""The embedded engine: the subset of the Ollama HTTP API Orch-Mind needs, backed by llama.cpp.

Speaking Ollama's protocol means the app has one client path (the official ``ollama`` package)
whether a real Ollama daemon or this engine answers, and other Ollama clients on the machine can use
the user's personal models too. Binds 127.0.0.1 only.

Protocol details the client relies on: streaming is NDJSON (one JSON object a line) and is the
default; the last record has ``done: true`` with ``done_reason`` and nanosecond timings; errors are
``{"error": "..."}`` with a 4xx/5xx status (mid-stream, an ``error`` line).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import datetime, timezone
from typing import Any, AsyncIterator, Iterator

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from backend import __version__
from backend.errors import NotFoundError, OrchMindError
from backend.inference.llama_runner import EngineError, LlamaRunner
from backend.inference.model_store import ModelManifest, ModelStore, ModelStoreError, validate_name

ENGINE_VERSION = f"0.6.0-orch-mind-{__version__}"
MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_BLOB_BYTES = 64 * 1024**3
OPTION_MAP = {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "seed": "seed",
              "num_predict": "max_tokens", "stop": "stop", "repeat_penalty": "repeat_penalty",
              "min_p": "min_p", "presence_penalty": "presence_penalty", "frequency_penalty": "frequency_penalty"}


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def status_for(exc: OrchMindError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, ModelStoreError) or exc.code in ("invalid_request", "prompt_too_long"):
        return 400
    return 500


class BadRequest(OrchMindError):
    code = "invalid_request"


def sampling_options(manifest: ModelManifest, options: Any) -> dict[str, Any]:
    if options is not None and not isinstance(options, dict):
        raise BadRequest("options must be an object")
    merged = {**manifest.parameters, **(options or {})}
    out: dict[str, Any] = {}
    for key, value in merged.items():
        if key in OPTION_MAP:
            out[OPTION_MAP[key]] = value
    if out.get("max_tokens", 0) in (-1, -2):
        out["max_tokens"] = None
    return out


def details(manifest: ModelManifest) -> dict[str, Any]:
    return {"parent_model": manifest.parent or "", "format": "gguf", "family": "llama", "families": ["llama"],
            "parameter_size": "", "quantization_level": ""}


_DONE = object()


class RecordPump:
    """Runs a generation in its own thread and hands its records to the response.

    The generator holds the model's lock while it runs; if the client goes away mid-stream, the
    response's ``finally`` sets ``stop`` and the worker closes the generator in its own thread, so
    the lock is always released and the next request is served. Records reach the event loop with
    ``call_soon_threadsafe`` (no thread-pool hop a token), and tokens that queued up while the client
    was busy are sent as one record: fewer JSON lines, same text.
    """

    def __init__(self, records: Iterator[dict[str, Any]], loop: asyncio.AbstractEventLoop) -> None:
        self._records = records
        self._loop = loop
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._stop = threading.Event()
        threading.Thread(target=self._work, daemon=True, name="engine-generation").start()

    def _put(self, item: Any) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    def _work(self) -> None:
        try:
            for record in self._records:
                if self._stop.is_set():
                    break
                self._put(record)
        except OrchMindError as exc:
            self._put(exc)
        except Exception as exc:  # noqa: BLE001 - reported to the client as an error record
            self._put(EngineError(f"generation failed: {exc}"))
        finally:
            getattr(self._records, "close", lambda: None)()
            self._put(_DONE)

    async def get(self) -> Any:
        item = await self._queue.get()
        if isinstance(item, OrchMindError):
            raise item
        if item is _DONE:
            raise EngineError("the model produced no output")
        return item

    async def items(self) -> AsyncIterator[Any]:
        """The remaining records, coalescing consecutive unfinished ones; errors end the stream."""
        while True:
            item = await self._queue.get()
            while isinstance(item, dict) and not item["done"] and not self._queue.empty():
                following = self._queue.get_nowait()
                if not (isinstance(following, dict) and not following["done"]):
                    yield item
                    item = following
                    break
                item = merge_records(item, following)
            if item is _DONE:
                return
            yield item
            if isinstance(item, OrchMindError):
                return

    async def ndjson(self, first: dict[str, Any]) -> AsyncIterator[bytes]:
        try:
            yield (json.dumps(first) + "\n").encode()
            async for item in self.items():
                if isinstance(item, OrchMindError):
                    yield (json.dumps({"error": item.message}) + "\n").encode()
                    return
                yield (json.dumps(item) + "\n").encode()
        finally:
            self._stop.set()


def merge_records(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    merged = dict(second)
    if "message" in first:
        merged["message"] = {"role": "assistant", "content": first["message"]["content"] + second["message"]["content"]}
    else:
        merged["response"] = first["response"] + second["response"]
    return merged


class EngineApp:
    def __init__(self, store: ModelStore, runner: LlamaRunner | None = None) -> None:
        self.store = store
        self.runner = runner or LlamaRunner()

    async def _json(self, request: Request) -> dict[str, Any]:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise BadRequest(f"request body too large (over {MAX_BODY_BYTES} bytes)")
        try:
            payload = json.loads(body or b"{}")
        except json.JSONDecodeError as exc:
            raise BadRequest(f"invalid JSON: {exc.msg}") from exc
        if not isinstance(payload, dict):
            raise BadRequest("the request body must be a JSON object")
        return payload

    def _manifest(self, payload: dict[str, Any]) -> ModelManifest:
        name = payload.get("model") or payload.get("name")
        if not isinstance(name, str) or not name:
            raise BadRequest("model is required")
        return self.store.get(validate_name(name))

    # --- generation -------------------------------------------------------------------------
    def _stream_chat(self, manifest: ModelManifest, messages: list[dict[str, Any]], options: dict[str, Any],
                     kind: str) -> Iterator[dict[str, Any]]:
        started = time.perf_counter_ns()
        loaded = self.runner.get(manifest)
        load_ns = int(loaded.load_seconds * 1e9) if time.time() - loaded.last_used < 1 else 0
        llama = loaded.llama
        with loaded.lock:
            prompt_tokens = self._count_prompt(llama, messages)
            if prompt_tokens >= loaded.n_ctx:
                raise BadRequest(f"prompt is too long: {prompt_tokens} tokens for a context of {loaded.n_ctx}", code="prompt_too_long")
            eval_count = 0
            first_token_ns = None
            reason = "stop"
            for chunk in llama.create_chat_completion(messages=messages, stream=True, **options):
                choice = chunk["choices"][0]
                text = choice.get("delta", {}).get("content") or ""
                if choice.get("finish_reason"):
                    reason = "length" if choice["finish_reason"] == "length" else "stop"
                if not text:
                    continue
                eval_count += 1
                first_token_ns = first_token_ns or time.perf_counter_ns()
                yield self._record(manifest, kind, text, done=False)
        end = time.perf_counter_ns()
        first_token_ns = first_token_ns or end
        final = self._record(manifest, kind, "", done=True)
        final.update({"done_reason": reason, "total_duration": end - started, "load_duration": load_ns,
                      "prompt_eval_count": prompt_tokens, "prompt_eval_duration": first_token_ns - started,
                      "eval_count": eval_count, "eval_duration": end - first_token_ns})
        yield final

    @staticmethod
    def _count_prompt(llama: Any, messages: list[dict[str, Any]]) -> int:
        text = "\n".join(str(m.get("content", "")) for m in messages)
        return len(llama.tokenize(text.encode("utf-8"), add_bos=True)) + 4 * len(messages)

    @staticmethod
    def _record(manifest: ModelManifest, kind: str, text: str, done: bool) -> dict[str, Any]:
        record: dict[str, Any] = {"model": manifest.name, "created_at": now_iso()}
        if kind == "chat":
            record["message"] = {"role": "assistant", "content": text}
        else:
            record["response"] = text
        record["done"] = done
        return record

    async def chat(self, request: Request) -> Response:
        payload = await self._json(request)
        manifest = self._manifest(payload)
        messages = payload.get("messages") or []
        if not isinstance(messages, list) or not all(isinstance(m, dict) and isinstance(m.get("content", ""), str) for m in messages):
            raise BadRequest("messages must be a list of {role, content} objects")
        messages = [{"role": str(m.get("role", "user")), "content": m.get("content", "")} for m in messages]
        if manifest.system and not any(m["role"] == "system" for m in messages):
            messages.insert(0, {"role": "system", "content": manifest.system})
        options = sampling_options(manifest, payload.get("options"))
        return await self._start(self._stream_chat(manifest, messages, options, "chat"), payload.get("stream", True), "chat")

    async def generate(self, request: Request) -> Response:
        payload = await self._json(request)
        manifest = self._manifest(payload)
        prompt = payload.get("prompt", "")
        if not isinstance(prompt, str):
            raise BadRequest("prompt must be a string")
        if not prompt:  # Ollama: an empty prompt just loads the model
            await run_in_threadpool(self.runner.get, manifest)
            return JSONResponse({"model": manifest.name, "created_at": now_iso(), "response": "", "done": True, "done_reason": "load"})
        system = payload.get("system") or manifest.system
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        options = sampling_options(manifest, payload.get("options"))
        return await self._start(self._stream_chat(manifest, messages, options, "generate"), payload.get("stream", True), kind="generate")

    async def _start(self, records: Iterator[dict[str, Any]], stream: Any, kind: str) -> Response:
        """Wait for the first record before answering, so load and validation errors get a real status."""
        pump = RecordPump(records, asyncio.get_running_loop())
        first = await pump.get()
        if stream is False:
            final = first
            async for item in pump.items():
                if isinstance(item, OrchMindError):
                    raise item
                final = merge_records(final, item)
            return JSONResponse(final)
        return StreamingResponse(pump.ndjson(first), media_type="application/x-ndjson")

    # --- models -----------------------------------------------------------------------------
    async def tags(self, request: Request) -> Response:
        models = []
        for manifest in self.store.list():
            models.append({"name": manifest.name, "model": manifest.name,
                           "modified_at": datetime.fromtimestamp(manifest.created_at, timezone.utc).isoformat(),
                           "size": manifest.size, "digest": manifest.digest, "details": details(manifest)})
        return JSONResponse({"models": models})

    async def show(self, request: Request) -> Response:
        manifest = self._manifest(await self._json(request))
        lines = [f"FROM {manifest.base_path}"] + [f"ADAPTER {a}" for a in manifest.adapters]
        if manifest.system:
            lines.append(f'SYSTEM """{manifest.system}"""')
        lines += [f"PARAMETER {k} {v}" for k, v in manifest.parameters.items()]
        return JSONResponse({
            "modelfile": "\n".join(lines), "parameters": "\n".join(f"{k} {v}" for k, v in manifest.parameters.items()),
            "template": "{{ .Prompt }}", "system": manifest.system or "", "details": details(manifest),
            "model_info": {"general.architecture": "llama", "orch_mind.adapters": len(manifest.adapters)},
            "modified_at": datetime.fromtimestamp(manifest.created_at, timezone.utc).isoformat(),
        })

    async def ps(self, request: Request) -> Response:
        return JSONResponse({"models": [
            {"name": m.manifest.name, "model": m.manifest.name, "size": m.manifest.size, "digest": m.manifest.digest,
             "details": details(m.manifest), "expires_at": "0001-01-01T00:00:00Z", "size_vram": 0}
            for m in self.runner.loaded()]})

    async def delete(self, request: Request) -> Response:
        manifest = self._manifest(await self._json(request))
        self.store.delete(manifest.name)
        self.runner.unload(manifest.name)
        return Response(status_code=200)

    async def create(self, request: Request) -> Response:
        payload = await self._json(request)
        name = validate_name(str(payload.get("model") or payload.get("name") or ""))
        source = payload.get("from")
        if not isinstance(source, str) or not source:
            raise BadRequest("'from' is required: a model name or the digest of an uploaded GGUF")
        base_path = self.store.resolve_gguf(source)
        adapters = []
        for file_name, digest in (payload.get("adapters") or {}).items():
            path = self.store.blob_path(str(digest))
            if not path.exists():
                raise NotFoundError(f"adapter blob {digest} for {file_name!r} not found; upload it first", code="blob_not_found")
            if path.open("rb").read(4) != b"GGUF":
                raise ModelStoreError(f"adapter {file_name!r} is not a GGUF LoRA adapter")
            adapters.append(str(path))
        parent = self.store.get(source) if not source.startswith("sha256") else None
        parameters = payload.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise BadRequest("parameters must be an object")
        manifest = ModelManifest(name=name, base_path=base_path, adapters=(parent.adapters if parent else []) + adapters,
                                 system=payload.get("system") or (parent.system if parent else None),
                                 parameters={**(parent.parameters if parent else {}), **parameters},
                                 parent=parent.name if parent else None)
        # Prove the model loads (with its adapter) before it is saved: a broken model is never listed.
        await run_in_threadpool(self.runner.get, manifest)
        self.store.save(manifest)
        records = [{"status": "reading model metadata"}, {"status": "creating adapter layer"} if adapters else None,
                   {"status": "writing manifest"}, {"status": "success"}]
        records = [r for r in records if r]
        if payload.get("stream", True) is False:
            return JSONResponse(records[-1])
        return StreamingResponse(iter([(json.dumps(r) + "\n").encode() for r in records]), media_type="application/x-ndjson")

    async def blob_head(self, request: Request) -> Response:
        return Response(status_code=200 if self.store.has_blob(request.path_params["digest"]) else 404)

    async def blob_upload(self, request: Request) -> Response:
        digest = request.path_params["digest"]
        self.store.blob_path(digest)  # validates before reading a byte
        received = 0
        chunks: list[bytes] = []

        async def body() -> Any:
            nonlocal received
            async for chunk in request.stream():
                received += len(chunk)
                if received > MAX_BLOB_BYTES:
                    raise BadRequest("blob too large")
                chunks.append(chunk)
        await body()
        await run_in_threadpool(self.store.write_blob, digest, iter(chunks))
        return Response(status_code=201)

    async def embed(self, request: Request) -> Response:
        payload = await self._json(request)
        manifest = self._manifest(payload)
        inputs = payload.get("input", "")
        inputs = [inputs] if isinstance(inputs, str) else inputs
        if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str) for i in inputs) or len(inputs) > 512:
            raise BadRequest("input must be a string or a list of up to 512 strings")
        started = time.perf_counter_ns()
        vectors = await run_in_threadpool(self.runner.embed, manifest, inputs)
        return JSONResponse({"model": manifest.name, "embeddings": vectors,
                             "total_duration": time.perf_counter_ns() - started, "prompt_eval_count": len(inputs)})

    async def version(self, request: Request) -> Response:
        return JSONResponse({"version": ENGINE_VERSION})


def create_engine_app(store: ModelStore, runner: LlamaRunner | None = None) -> Starlette:
    engine = EngineApp(store, runner)

    def guarded(handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except OrchMindError as exc:
                return error(exc.message, status_for(exc))
        return endpoint

    routes = [
        Route("/", lambda r: Response("Ollama is running", media_type="text/plain")),
        Route("/api/version", guarded(engine.version)),
        Route("/api/tags", guarded(engine.tags)),
        Route("/api/ps", guarded(engine.ps)),
        Route("/api/show", guarded(engine.show), methods=["POST"]),
        Route("/api/chat", guarded(engine.chat), methods=["POST"]),
        Route("/api/generate", guarded(engine.generate), methods=["POST"]),
        Route("/api/embed", guarded(engine.embed), methods=["POST"]),
        Route("/api/create", guarded(engine.create), methods=["POST"]),
        Route("/api/delete", guarded(engine.delete), methods=["DELETE"]),
        Route("/api/blobs/{digest:str}", guarded(engine.blob_head), methods=["HEAD"]),
        Route("/api/blobs/{digest:str}", guarded(engine.blob_upload), methods=["POST"]),
    ]
    return Starlette(routes=routes)
