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
import logging
import shutil
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Iterator, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from backend import __version__
from backend.errors import NotFoundError, OrchMindError
from backend.inference.engine_guard import EngineGuard, OriginPolicy
from backend.inference.gguf_info import read_gguf_info
from backend.inference.engine_requests import (
    ChatRequest,
    CreateRequest,
    EmbedRequest,
    GenerateRequest,
    GenerationOptions,
    ModelOnlyRequest,
    describe,
)
from backend.inference.llama_runner import EngineError, LlamaRunner
from backend.inference.model_store import ModelManifest, ModelStore, ModelStoreError, validate_name
from backend.json_limits import json_depth
from backend.loopback_server import read_body_capped

log = logging.getLogger("orch_mind.engine")

ENGINE_VERSION = f"0.6.0-orch-mind-{__version__}"
MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_JSON_DEPTH = 64  # Ollama/OpenAI requests nest a few levels (messages → content parts → …)
MAX_BLOB_BYTES = 64 * 1024**3
MAX_PENDING_GENERATIONS = 16  # running + waiting for a model; past that a client gets a 503
DISK_HEADROOM_BYTES = 512 * 1024**2
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
    if isinstance(exc, EngineBusy):
        return 503
    if isinstance(exc, InsufficientStorage):
        return 507
    if isinstance(exc, ModelStoreError) or exc.code in ("invalid_request", "prompt_too_long"):
        return 400
    return 500


class BadRequest(OrchMindError):
    code = "invalid_request"


class EngineBusy(OrchMindError):
    code = "busy"


class InsufficientStorage(OrchMindError):
    code = "insufficient_storage"


def stored_options(manifest: ModelManifest) -> GenerationOptions:
    try:
        return GenerationOptions.model_validate(manifest.parameters)
    except ValidationError as exc:
        raise BadRequest(f"model '{manifest.name}' has invalid stored parameters ({describe(exc)}); "
                         "create it again with valid ones") from exc


# Ollama's sampling defaults. llama-cpp-python's own (no repeat penalty, temperature 0.2) sent 12 of
# 20 everyday questions to SmolLM2 into loops that ran to the end of the context; with these and the
# chat's 1,024-token cap, none (bench/models.py).
ENGINE_DEFAULTS = {"temperature": 0.8, "top_k": 40, "top_p": 0.9, "min_p": 0.0, "repeat_penalty": 1.1}


def sampling_options(manifest: ModelManifest, options: GenerationOptions) -> dict[str, Any]:
    """llama.cpp's keyword arguments: Ollama's defaults, then the model's stored parameters, then the request's."""
    merged = {**ENGINE_DEFAULTS, **stored_options(manifest).stored(), **options.stored()}
    out: dict[str, Any] = {OPTION_MAP[key]: value for key, value in merged.items() if key in OPTION_MAP}
    if out.get("max_tokens", 0) in (-1, -2):
        out["max_tokens"] = None
    if out.get("seed") == -1:
        del out["seed"]
    return out


def details(manifest: ModelManifest) -> dict[str, Any]:
    """Ollama's ``details``, from the GGUF's own metadata (read when the model was registered)."""
    info = manifest.info or {}
    family = info.get("architecture", "")
    return {"parent_model": manifest.parent or "", "format": "gguf", "family": family, "families": [family] if family else None,
            "parameter_size": info.get("parameter_label", ""), "quantization_level": info.get("quantization", "")}


def model_info(manifest: ModelManifest) -> dict[str, Any]:
    info = manifest.info or {}
    arch = info.get("architecture", "")
    out: dict[str, Any] = {"general.architecture": arch, "general.parameter_count": info.get("parameters", 0),
                           "orch_mind.adapters": len(manifest.adapters)}
    for key in ("context_length", "embedding_length", "block_count"):
        if key in info:
            out[f"{arch}.{key}"] = info[key]
    if reason := manifest.unavailable_reason():
        out["orch_mind.unavailable"] = reason
    return out


_DONE = object()
RequestT = TypeVar("RequestT", bound=BaseModel)


class RecordPump:
    """Runs a generation in its own thread and hands its records to the response.

    The generator holds the model's lock while it runs; if the client goes away mid-stream, the
    response's ``finally`` sets ``stop`` and the worker closes the generator in its own thread, so
    the lock is always released and the next request is served. Records reach the event loop with
    ``call_soon_threadsafe`` (no thread-pool hop a token), and tokens that queued up while the client
    was busy are sent as one record: fewer JSON lines, same text.
    """

    def __init__(self, records: Iterator[dict[str, Any]], loop: asyncio.AbstractEventLoop, stop: threading.Event,
                 on_finished: Any = None) -> None:
        self._records = records
        self._loop = loop
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._stop = stop
        self._on_finished = on_finished or (lambda: None)
        threading.Thread(target=self._work, daemon=True, name="engine-generation").start()

    def stop(self) -> None:
        self._stop.set()

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
            log.exception("generation failed")
            self._put(EngineError(f"generation failed: {exc}"))
        finally:
            getattr(self._records, "close", lambda: None)()
            self._on_finished()
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
    def __init__(self, store: ModelStore, runner: LlamaRunner | None = None, max_pending: int = MAX_PENDING_GENERATIONS) -> None:
        self.store = store
        self.runner = runner or LlamaRunner()
        self.max_pending = max_pending
        self._admission = threading.BoundedSemaphore(max_pending)

    async def _parse(self, request: Request, model: type[RequestT]) -> RequestT:
        """The body as ``model``: size-capped while it arrives, then parsed and validated."""
        body = await read_body_capped(request, MAX_BODY_BYTES)
        if body is None:
            raise BadRequest(f"request body too large (over {MAX_BODY_BYTES} bytes)")
        try:
            text = body.decode("utf-8") or "{}"
            if json_depth(text) > MAX_JSON_DEPTH:  # before json.loads, which would recurse that deep
                raise BadRequest(f"invalid JSON: nested more than {MAX_JSON_DEPTH} levels")
            payload = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadRequest(f"invalid JSON: {exc.msg}") from exc
        except UnicodeDecodeError as exc:
            raise BadRequest("invalid JSON: the body is not UTF-8 text") from exc
        except RecursionError as exc:
            raise BadRequest("invalid JSON: nested too deeply") from exc
        if not isinstance(payload, dict):
            raise BadRequest("the request body must be a JSON object")
        try:
            return model.model_validate(payload)
        except ValidationError as exc:
            raise BadRequest(describe(exc)) from exc

    def _manifest(self, name: str, *, usable: bool = True) -> ModelManifest:
        return self.store.get(validate_name(name), usable=usable)

    # --- generation -------------------------------------------------------------------------
    def _stream_chat(self, manifest: ModelManifest, messages: list[dict[str, Any]], options: dict[str, Any],
                     kind: str, stop: threading.Event) -> Iterator[dict[str, Any]]:
        started = time.perf_counter_ns()
        loaded = self.runner.get(manifest)
        load_ns = 0 if loaded.load_reported else int(loaded.load_seconds * 1e9)  # Ollama: only the request that loaded it
        loaded.load_reported = True
        llama = loaded.llama
        with loaded.lock:
            if stop.is_set():  # the client left while this request waited for the model
                return
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
        body = await self._parse(request, ChatRequest)
        manifest = self._manifest(body.model)
        messages = [{"role": m.role, "content": m.content} for m in body.messages]
        if manifest.system and not any(m["role"] == "system" for m in messages):
            messages.insert(0, {"role": "system", "content": manifest.system})
        options = sampling_options(manifest, body.options)
        return await self._start(request, lambda stop: self._stream_chat(manifest, messages, options, "chat", stop), body.stream)

    async def generate(self, request: Request) -> Response:
        body = await self._parse(request, GenerateRequest)
        manifest = self._manifest(body.model)
        if not body.prompt:  # Ollama: an empty prompt just loads the model
            await run_in_threadpool(self.runner.get, manifest)
            return JSONResponse({"model": manifest.name, "created_at": now_iso(), "response": "", "done": True, "done_reason": "load"})
        system = body.system or manifest.system
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": body.prompt}]
        options = sampling_options(manifest, body.options)
        return await self._start(request, lambda stop: self._stream_chat(manifest, messages, options, "generate", stop), body.stream)

    async def _start(self, request: Request, records: Any, stream: bool) -> Response:
        """Wait for the first record before answering, so load and validation errors get a real status.

        Admission is bounded (a full engine answers 503 at once rather than queueing without end),
        and a client that disconnects stops its generation, streaming or not."""
        if not self._admission.acquire(blocking=False):
            raise EngineBusy(f"the engine is busy ({self.max_pending} requests running or waiting); try again shortly")
        stop = threading.Event()
        try:
            pump = RecordPump(records(stop), asyncio.get_running_loop(), stop, on_finished=self._admission.release)
        except BaseException:
            self._admission.release()
            raise
        watcher = asyncio.create_task(self._stop_on_disconnect(request, pump))
        try:
            first = await pump.get()
            if stream:
                return StreamingResponse(pump.ndjson(first), media_type="application/x-ndjson")
            final = first
            async for item in pump.items():
                if isinstance(item, OrchMindError):
                    raise item
                final = merge_records(final, item)
            return JSONResponse(final)
        except BaseException:
            pump.stop()
            raise
        finally:
            watcher.cancel()

    @staticmethod
    async def _stop_on_disconnect(request: Request, pump: RecordPump) -> None:
        """Wait for the client to go away (the body is already read, so the next message is a
        disconnect) and stop the generation it asked for."""
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                pump.stop()
                return

    # --- models -----------------------------------------------------------------------------
    async def tags(self, request: Request) -> Response:
        models = []
        for manifest in self.store.list():
            if manifest.unavailable_reason():
                continue  # never offered to clients; the Models screen shows why
            models.append({"name": manifest.name, "model": manifest.name,
                           "modified_at": datetime.fromtimestamp(manifest.created_at, timezone.utc).isoformat(),
                           "size": manifest.size, "digest": manifest.digest, "details": details(manifest)})
        return JSONResponse({"models": models})

    async def show(self, request: Request) -> Response:
        manifest = self._manifest((await self._parse(request, ModelOnlyRequest)).model, usable=False)
        lines = [f"FROM {manifest.base_path}"] + [f"ADAPTER {a}" for a in manifest.adapters]
        if manifest.system:
            lines.append(f'SYSTEM """{manifest.system}"""')
        lines += [f"PARAMETER {k} {v}" for k, v in manifest.parameters.items()]
        return JSONResponse({
            "modelfile": "\n".join(lines), "parameters": "\n".join(f"{k} {v}" for k, v in manifest.parameters.items()),
            "template": (manifest.info or {}).get("chat_template") or "", "system": manifest.system or "",
            "details": details(manifest), "model_info": model_info(manifest),
            "modified_at": datetime.fromtimestamp(manifest.created_at, timezone.utc).isoformat(),
        })

    async def ps(self, request: Request) -> Response:
        return JSONResponse({"models": [
            {"name": m.manifest.name, "model": m.manifest.name, "size": m.manifest.size, "digest": m.manifest.digest,
             "details": details(m.manifest), "expires_at": "0001-01-01T00:00:00Z", "size_vram": 0}
            for m in self.runner.loaded()]})

    async def delete(self, request: Request) -> Response:
        manifest = self._manifest((await self._parse(request, ModelOnlyRequest)).model, usable=False)
        self.store.delete(manifest.name)
        self.runner.unload(manifest.name)
        return Response(status_code=200)

    async def create(self, request: Request) -> Response:
        body = await self._parse(request, CreateRequest)
        name = validate_name(body.model)
        if body.quantize:
            raise BadRequest("quantize is not supported by the embedded engine; add an already quantized GGUF")
        source = body.from_ or next(iter((body.files or {}).values()), None)
        if not source:
            raise BadRequest("'from' is required: a model name or the digest of an uploaded GGUF")
        base_path = self.store.resolve_gguf(source)
        adapters = []
        for file_name, digest in (body.adapters or {}).items():
            path = self.store.blob_path(digest)
            if not path.exists():
                raise NotFoundError(f"adapter blob {digest} for {file_name!r} not found; upload it first", code="blob_not_found")
            with path.open("rb") as handle:
                if handle.read(4) != b"GGUF":
                    raise ModelStoreError(f"adapter {file_name!r} is not a GGUF LoRA adapter")
            adapters.append(str(path))
        parent = self.store.get(source) if not source.startswith("sha256") else None
        parameters = {**(stored_options(parent).stored() if parent else {}), **body.parameters.stored()}
        info = parent.info if parent else (await run_in_threadpool(read_gguf_info, Path(base_path))).to_dict()
        manifest = ModelManifest(name=name, base_path=base_path, adapters=(parent.adapters if parent else []) + adapters,
                                 system=body.system or (parent.system if parent else None),
                                 parameters=parameters, parent=parent.name if parent else None,
                                 source=parent.source if parent else None, info=info)
        # Prove the model loads (with its adapter) before it is saved: a broken model is never listed.
        await run_in_threadpool(self.runner.get, manifest)
        self.store.save(manifest)
        records = [{"status": "reading model metadata"}, {"status": "creating adapter layer"} if adapters else None,
                   {"status": "writing manifest"}, {"status": "success"}]
        records = [r for r in records if r]
        if not body.stream:
            return JSONResponse(records[-1])
        return StreamingResponse(iter([(json.dumps(r) + "\n").encode() for r in records]), media_type="application/x-ndjson")

    async def blob_head(self, request: Request) -> Response:
        return Response(status_code=200 if self.store.has_blob(request.path_params["digest"]) else 404)

    async def blob_upload(self, request: Request) -> Response:
        """Stream the upload to a temporary file, hashing as it arrives; it becomes the blob only
        when its digest matches. Nothing is held in memory and an aborted upload leaves nothing."""
        digest = request.path_params["digest"]
        writer = self.store.blob_writer(digest)  # validates the digest before reading a byte
        declared = request.headers.get("content-length", "")
        if declared.isdigit():
            if int(declared) > MAX_BLOB_BYTES:
                raise BadRequest(f"blob too large (over {MAX_BLOB_BYTES} bytes)")
            free = shutil.disk_usage(self.store.blobs).free
            if int(declared) > free - DISK_HEADROOM_BYTES:
                raise InsufficientStorage(f"not enough disk space for a {int(declared):,}-byte blob ({free:,} bytes free)")
        try:
            with writer:
                async for chunk in request.stream():
                    if writer.size + len(chunk) > MAX_BLOB_BYTES:
                        raise BadRequest(f"blob too large (over {MAX_BLOB_BYTES} bytes)")
                    writer.write(chunk)
                await run_in_threadpool(writer.commit)
        except ClientDisconnect:
            return Response(status_code=400)
        return Response(status_code=201)

    async def embed(self, request: Request) -> Response:
        body = await self._parse(request, EmbedRequest)
        manifest = self._manifest(body.model)
        inputs = body.texts()
        started = time.perf_counter_ns()
        vectors = await run_in_threadpool(self.runner.embed, manifest, inputs)
        return JSONResponse({"model": manifest.name, "embeddings": vectors,
                             "total_duration": time.perf_counter_ns() - started, "prompt_eval_count": len(inputs)})

    async def version(self, request: Request) -> Response:
        return JSONResponse({"version": ENGINE_VERSION})


def create_engine_app(store: ModelStore, runner: LlamaRunner | None = None, *, port: int,
                      origins: OriginPolicy | None = None, max_pending: int = MAX_PENDING_GENERATIONS) -> ASGIApp:
    """The engine's routes behind :class:`EngineGuard` (Host, Origin and content-type checks)."""
    engine = EngineApp(store, runner, max_pending)

    def guarded(handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except OrchMindError as exc:
                return error(exc.message, status_for(exc))
            except ClientDisconnect:
                return Response(status_code=400)
            except Exception:  # noqa: BLE001 - the HTTP edge: log the traceback, answer a stable message
                log.exception("engine request %s %s failed", request.method, request.url.path)
                return error("internal error in the embedded engine; details are in the Orch-Mind log", 500)
        return endpoint

    routes = [
        Route("/", lambda r: Response("Ollama is running", media_type="text/plain"), methods=["GET", "HEAD"]),
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
    return EngineGuard(Starlette(routes=routes), port, origins or OriginPolicy())
