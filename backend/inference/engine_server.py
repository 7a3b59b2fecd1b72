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
import math
import shutil
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

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
from backend.inference.engine_requests import (
    ChatRequest,
    CopyRequest,
    CreateRequest,
    EmbeddingsRequest,
    EmbedRequest,
    GenerateRequest,
    GenerationOptions,
    ModelOnlyRequest,
    PullRequest,
    describe,
)
from backend.inference.generation import (
    BadRequest,
    EngineBusy,
    Event,
    Finished,
    GenerationPlan,
    RecordPump,
    TextDelta,
    ToolCalls,
    conversation,
    generate,
)
from backend.inference.gguf_info import RUNTIME_OVERHEAD_BYTES, GGUFInfo, available_memory, read_gguf_info
from backend.inference.llama_runner import DEFAULT_CONTEXT, LlamaRunner, StopSignal
from backend.inference.model_store import MissingBlob, ModelManifest, ModelStore, ModelStoreError, validate_digest, validate_name
from backend.inference.openai_api import OpenAIRoutes, error_body
from backend.inference.structured import StructuredOutputError, ToolCall, format_grammar, parse_tools
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
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def check_context(manifest: ModelManifest, num_ctx: int, *, loaded: bool) -> None:
    """Refuse (400), before anything is allocated, a context window larger than the model was trained
    for or than this machine's free memory holds (its KV cache grows with every token of it)."""
    info = GGUFInfo.from_dict(manifest.info) if manifest.info and manifest.info.get("block_count") else None
    if info is None:
        return
    trained = info.context_length or 0
    if trained and num_ctx > max(trained, DEFAULT_CONTEXT):
        raise BadRequest(f"num_ctx {num_ctx:,} is larger than {manifest.name}'s context window of {trained:,} tokens")
    needed = info.kv_cache_bytes(num_ctx) + RUNTIME_OVERHEAD_BYTES + (0 if loaded else info.file_size)
    free = available_memory()["ram"] or 0
    if needed > free:
        raise BadRequest(f"num_ctx {num_ctx:,} needs about {needed / 1e9:.1f} GB of memory for {manifest.name} and "
                         f"{free / 1e9:.1f} GB is free; ask for a smaller num_ctx")


def status_for(exc: OrchMindError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, EngineBusy):
        return 503
    if isinstance(exc, InsufficientStorage):
        return 507
    if isinstance(exc, (ModelStoreError, BadRequest, StructuredOutputError)):
        return 400
    return 500


class InsufficientStorage(OrchMindError):
    code = "insufficient_storage"


class OfflineOnly(BadRequest):
    """A request that would need the internet (pull, push): we never go online."""

    code = "offline"


OFFLINE_PULL = ("Orch-Mind works offline and does not download models: add a GGUF file you already have with "
                "`orch-mind models add PATH` (or Models → Add a model you have)")


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


RequestT = TypeVar("RequestT", bound=BaseModel)
Respond = Callable[[Event, RecordPump], Awaitable[Response]]


def ollama_tool_calls(calls: list[ToolCall]) -> list[dict[str, Any]]:
    return [{"function": {"index": i, "name": c.name, "arguments": c.arguments}} for i, c in enumerate(calls)]


class OllamaRecords:
    """Generation events as Ollama's chat/generate records."""

    def __init__(self, model: str, kind: str) -> None:
        self.model = model
        self.kind = kind  # "chat" or "generate"

    def record(self, event: Event) -> dict[str, Any]:
        record: dict[str, Any] = {"model": self.model, "created_at": now_iso()}
        text = event.text if isinstance(event, TextDelta) else ""
        if self.kind == "chat":
            record["message"] = {"role": "assistant", "content": text}
            if isinstance(event, ToolCalls):
                record["message"]["tool_calls"] = ollama_tool_calls(event.calls)
        else:
            record["response"] = text
        record["done"] = isinstance(event, Finished)
        if isinstance(event, Finished):
            record.update({"done_reason": "length" if event.reason == "length" else "stop", "total_duration": event.total_ns,
                           "load_duration": event.load_ns, "prompt_eval_count": event.prompt_tokens,
                           "prompt_eval_duration": event.prompt_eval_ns, "eval_count": event.eval_count,
                           "eval_duration": event.eval_ns})
        return record

    async def stream(self, first: Event, pump: RecordPump) -> AsyncIterator[bytes]:
        try:
            yield (json.dumps(self.record(first)) + "\n").encode()
            async for item in pump.items():
                if isinstance(item, OrchMindError):
                    yield (json.dumps({"error": item.message}) + "\n").encode()
                    return
                yield (json.dumps(self.record(item)) + "\n").encode()
        finally:
            pump.stop()

    async def whole(self, first: Event, pump: RecordPump) -> dict[str, Any]:
        answer = await pump.collect(first)
        record = self.record(answer.finished or Finished("stop", 0, 0, 0, 0, 0, 0))
        if self.kind == "chat":
            record["message"]["content"] = answer.content
            if answer.calls:
                record["message"]["tool_calls"] = ollama_tool_calls(answer.calls)
        else:
            record["response"] = answer.content
        return record


class EngineApp:
    def __init__(self, store: ModelStore, runner: LlamaRunner | None = None, max_pending: int = MAX_PENDING_GENERATIONS) -> None:
        self.store = store
        self.runner = runner or LlamaRunner()
        self.max_pending = max_pending
        self._admission = threading.BoundedSemaphore(max_pending)

    async def parse(self, request: Request, model: type[RequestT]) -> RequestT:
        """The body as ``model``: size-capped while it arrives, then parsed and validated."""
        body = await read_body_capped(request, MAX_BODY_BYTES)
        if body is None:
            raise BadRequest(f"request body too large (over {MAX_BODY_BYTES} bytes)")
        try:
            text = body.decode("utf-8") or "{}"
            if json_depth(text) > MAX_JSON_DEPTH:  # before json.loads, which would recurse that deep
                raise BadRequest(f"invalid JSON: nested more than {MAX_JSON_DEPTH} levels")
            payload = json.loads(text, parse_constant=_refuse_constant)
        except json.JSONDecodeError as exc:
            raise BadRequest(f"invalid JSON: {exc.msg}") from exc
        except UnicodeDecodeError as exc:
            raise BadRequest("invalid JSON: the body is not UTF-8 text") from exc
        except ValueError as exc:  # an integer of thousands of digits (Python refuses past 4,300)
            raise BadRequest(f"invalid JSON: {exc}") from exc
        except RecursionError as exc:
            raise BadRequest("invalid JSON: nested too deeply") from exc
        if not isinstance(payload, dict):
            raise BadRequest("the request body must be a JSON object")
        try:
            return model.model_validate(payload)
        except ValidationError as exc:
            raise BadRequest(describe(exc)) from exc

    def manifest(self, name: str, *, usable: bool = True) -> ModelManifest:
        return self.store.get(validate_name(name), usable=usable)

    # --- generation -------------------------------------------------------------------------
    async def serve(self, request: Request, manifest: ModelManifest, plan: GenerationPlan, respond: Respond) -> Response:
        """Run ``plan`` and answer with ``respond(first_event, pump)``.

        The first event is awaited before answering, so load and validation errors get a real
        status. Admission is bounded (a full engine answers 503 at once rather than queueing without
        end); requests for a model are served in arrival order; a client that disconnects stops its
        generation, streaming or not, or leaves the queue if it was still waiting."""
        if not self._admission.acquire(blocking=False):
            raise EngineBusy(f"the engine is busy ({self.max_pending} requests running or waiting); try again shortly")
        stop = StopSignal()
        try:
            pump = RecordPump(generate(self.runner, manifest, plan, stop), asyncio.get_running_loop(), stop,
                              on_finished=self._admission.release)
        except BaseException:
            self._admission.release()
            raise
        watcher = asyncio.create_task(self._stop_on_disconnect(request, pump))
        try:
            return await respond(await pump.get(), pump)
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

    async def _ollama(self, request: Request, manifest: ModelManifest, plan: GenerationPlan, kind: str, stream: bool) -> Response:
        records = OllamaRecords(manifest.name, kind)

        async def respond(first: Event, pump: RecordPump) -> Response:
            if stream:
                return StreamingResponse(records.stream(first, pump), media_type="application/x-ndjson")
            return JSONResponse(await records.whole(first, pump))

        return await self.serve(request, manifest, plan, respond)

    async def _load_only(self, manifest: ModelManifest, keep_alive: float | None, kind: str) -> Response:
        """Ollama: a request with nothing to answer loads the model (``keep_alive`` 0 unloads it)."""
        if keep_alive == 0:
            self.runner.unload(manifest.name)
            reason = "unload"
        else:
            loaded = await run_in_threadpool(self.runner.checkout, manifest)
            self.runner.checkin(loaded, keep_alive)
            reason = "load"
        record: dict[str, Any] = {"model": manifest.name, "created_at": now_iso(), "done": True, "done_reason": reason}
        record.update({"message": {"role": "assistant", "content": ""}} if kind == "chat" else {"response": ""})
        return JSONResponse(record)

    def plan(self, manifest: ModelManifest, messages: list[dict[str, str]], options: GenerationOptions, *,
             fmt: Any = None, tools: list[Any] | None = None, tool_choice: str = "auto", keep_alive: float | None = None,
             raw_prompt: str | None = None) -> GenerationPlan:
        """What every generation endpoint builds: the model's system prompt, merged options, grammar, tools."""
        if manifest.system and raw_prompt is None and not any(m["role"] == "system" for m in messages):
            messages = [{"role": "system", "content": manifest.system}, *messages]
        merged = GenerationOptions.model_validate({**stored_options(manifest).stored(), **options.stored()})
        if merged.num_ctx is not None:
            check_context(manifest, merged.num_ctx, loaded=self.runner.chat_instance(manifest.name) is not None)
        return GenerationPlan(messages=messages, sampling=sampling_options(manifest, options), grammar=format_grammar(fmt),
                              tools=parse_tools(tools or []), tool_choice=tool_choice, raw_prompt=raw_prompt,
                              num_ctx=merged.num_ctx, keep_alive=keep_alive)

    async def chat(self, request: Request) -> Response:
        body = await self.parse(request, ChatRequest)
        manifest = self.manifest(body.model)
        if not body.messages:
            return await self._load_only(manifest, body.keep_alive, "chat")
        plan = self.plan(manifest, conversation(body.messages), body.options, fmt=body.format, tools=body.tools,
                         keep_alive=body.keep_alive)
        return await self._ollama(request, manifest, plan, "chat", body.stream)

    async def generate(self, request: Request) -> Response:
        body = await self.parse(request, GenerateRequest)
        manifest = self.manifest(body.model)
        if not body.prompt:
            return await self._load_only(manifest, body.keep_alive, "generate")
        system = body.system or manifest.system
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": body.prompt}]
        plan = self.plan(manifest, messages, body.options, fmt=body.format, keep_alive=body.keep_alive,
                         raw_prompt=body.prompt if body.raw else None)
        return await self._ollama(request, manifest, plan, "generate", body.stream)

    # --- models -----------------------------------------------------------------------------
    async def tags(self, request: Request) -> Response:
        models = []
        for manifest in self.store.list():
            if manifest.unavailable_reason():
                continue  # never offered to clients; the Models screen shows why
            models.append({"name": manifest.name, "model": manifest.name,
                           "modified_at": datetime.fromtimestamp(manifest.created_at, UTC).isoformat(),
                           "size": manifest.size, "digest": manifest.digest, "details": details(manifest)})
        return JSONResponse({"models": models})

    async def show(self, request: Request) -> Response:
        manifest = self.manifest((await self.parse(request, ModelOnlyRequest)).model, usable=False)
        # File names only: where this machine keeps its models is nobody's business on the other end.
        lines = [f"FROM {Path(manifest.base_path).name}"] + [f"ADAPTER {Path(a).name}" for a in manifest.adapters]
        if manifest.system:
            lines.append(f'SYSTEM """{manifest.system}"""')
        lines += [f"PARAMETER {k} {v}" for k, v in manifest.parameters.items()]
        return JSONResponse({
            "modelfile": "\n".join(lines), "parameters": "\n".join(f"{k} {v}" for k, v in manifest.parameters.items()),
            "template": (manifest.info or {}).get("chat_template") or "", "system": manifest.system or "",
            "details": details(manifest), "model_info": model_info(manifest),
            "modified_at": datetime.fromtimestamp(manifest.created_at, UTC).isoformat(),
        })

    async def ps(self, request: Request) -> Response:
        models = []
        seen = set()
        for m in self.runner.loaded():  # a model's embedding instance is the same model to a client
            if m.manifest.name in seen:
                continue
            seen.add(m.manifest.name)
            forever = m.expires_at is None or m.expires_at == math.inf
            expires = "9999-12-31T23:59:59Z" if forever else datetime.fromtimestamp(m.expires_at, UTC).isoformat()
            models.append({"name": m.manifest.name, "model": m.manifest.name, "size": m.manifest.size, "digest": m.manifest.digest,
                           "details": details(m.manifest), "expires_at": expires, "size_vram": 0, "context_length": m.n_ctx})
        return JSONResponse({"models": models})

    async def copy(self, request: Request) -> Response:
        body = await self.parse(request, CopyRequest)
        source = self.manifest(body.source, usable=False)
        self.store.copy(source.name, validate_name(body.destination))
        return Response(status_code=200)

    async def pull(self, request: Request) -> Response:
        await self.parse(request, PullRequest)
        raise OfflineOnly(OFFLINE_PULL)

    async def embeddings(self, request: Request) -> Response:
        """The legacy single-prompt endpoint (older clients and LangChain's OllamaEmbeddings)."""
        body = await self.parse(request, EmbeddingsRequest)
        manifest = self.manifest(body.model)
        if not body.prompt:
            return JSONResponse({"embedding": []})
        vectors, _ = await run_in_threadpool(self.runner.embed, manifest, [body.prompt])
        return JSONResponse({"embedding": vectors[0]})

    async def delete(self, request: Request) -> Response:
        manifest = self.manifest((await self.parse(request, ModelOnlyRequest)).model, usable=False)
        self.store.delete(manifest.name)
        self.runner.unload(manifest.name)
        return Response(status_code=200)

    async def create(self, request: Request) -> Response:
        body = await self.parse(request, CreateRequest)
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
                raise MissingBlob(f"adapter blob {digest} for {file_name!r} not found; upload it first")
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
        validate_digest(digest)  # before reading a byte
        declared = request.headers.get("content-length", "")
        if declared.isdigit():  # refused before any file is made
            if int(declared) > MAX_BLOB_BYTES:
                raise BadRequest(f"blob too large (over {MAX_BLOB_BYTES} bytes)")
            free = shutil.disk_usage(self.store.blobs).free
            if int(declared) > free - DISK_HEADROOM_BYTES:
                raise InsufficientStorage(f"not enough disk space for a {int(declared):,}-byte blob ({free:,} bytes free)")
        writer = self.store.blob_writer(digest)
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
        body = await self.parse(request, EmbedRequest)
        manifest = self.manifest(body.model)
        inputs = body.texts()
        started = time.perf_counter_ns()
        vectors, tokens = await run_in_threadpool(self.runner.embed, manifest, inputs)
        return JSONResponse({"model": manifest.name, "embeddings": vectors,
                             "total_duration": time.perf_counter_ns() - started, "prompt_eval_count": tokens})

    async def version(self, request: Request) -> Response:
        return JSONResponse({"version": ENGINE_VERSION})


def _refuse_constant(name: str) -> float:
    raise BadRequest(f"invalid JSON: {name} is not a number JSON allows")


def create_engine_app(store: ModelStore, runner: LlamaRunner | None = None, *, port: int,
                      origins: OriginPolicy | None = None, max_pending: int = MAX_PENDING_GENERATIONS) -> ASGIApp:
    """The engine's routes behind :class:`EngineGuard` (Host, Origin and content-type checks)."""
    engine = EngineApp(store, runner, max_pending)
    openai = OpenAIRoutes(engine)

    def guarded(handler: Any, *, openai_errors: bool = False) -> Any:
        def answer(message: str, status: int) -> Response:
            return JSONResponse(error_body(message, status), status_code=status) if openai_errors else error(message, status)

        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except OrchMindError as exc:
                return answer(exc.message, status_for(exc))
            except ClientDisconnect:
                return Response(status_code=400)
            except Exception:  # noqa: BLE001 - the HTTP edge: log the traceback, answer a stable message
                log.exception("engine request %s %s failed", request.method, request.url.path)
                return answer("internal error in the embedded engine; details are in the Orch-Mind log", 500)
        return endpoint

    def v1(handler: Any) -> Any:
        return guarded(handler, openai_errors=True)

    routes = [
        Route("/", lambda r: Response("Ollama is running", media_type="text/plain"), methods=["GET", "HEAD"]),
        Route("/api/version", guarded(engine.version)),
        Route("/api/tags", guarded(engine.tags)),
        Route("/api/ps", guarded(engine.ps)),
        Route("/api/show", guarded(engine.show), methods=["POST"]),
        Route("/api/chat", guarded(engine.chat), methods=["POST"]),
        Route("/api/generate", guarded(engine.generate), methods=["POST"]),
        Route("/api/embed", guarded(engine.embed), methods=["POST"]),
        Route("/api/embeddings", guarded(engine.embeddings), methods=["POST"]),
        Route("/api/create", guarded(engine.create), methods=["POST"]),
        Route("/api/copy", guarded(engine.copy), methods=["POST"]),
        Route("/api/delete", guarded(engine.delete), methods=["DELETE"]),
        Route("/api/pull", guarded(engine.pull), methods=["POST"]),
        Route("/api/push", guarded(engine.pull), methods=["POST"]),
        Route("/api/blobs/{digest:str}", guarded(engine.blob_head), methods=["HEAD"]),
        Route("/api/blobs/{digest:str}", guarded(engine.blob_upload), methods=["POST"]),
        Route("/v1/models", v1(openai.models)),
        Route("/v1/models/{model:path}", v1(openai.model)),
        Route("/v1/chat/completions", v1(openai.chat_completions), methods=["POST"]),
        Route("/v1/completions", v1(openai.completions), methods=["POST"]),
        Route("/v1/embeddings", v1(openai.embeddings), methods=["POST"]),
    ]
    return EngineGuard(Starlette(routes=routes), port, origins or OriginPolicy())
