"""The OpenAI-compatible API on the engine's loopback server, as Ollama, LM Studio and Jan serve it.

Editors, notebooks, web front-ends and agent frameworks mostly speak this API, so serving it lets a
user's personal model be used outside the app: ``OpenAI(base_url="http://127.0.0.1:PORT/v1",
api_key="anything")``. The requests below are the subset spoken (unknown fields are ignored, known
ones validated); every generation goes through the same :class:`GenerationPlan` as Ollama's
``/api/chat``, so structured output, tool calls, the per-model queue and the engine's defaults are
the same on both APIs.

Wire details clients rely on: streaming is server-sent events, one ``data: {json}`` per chunk and a
final ``data: [DONE]``; ``stream_options.include_usage`` adds a last chunk with empty ``choices``
and the ``usage``; errors are ``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import base64
import json
import secrets
import struct
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from backend.errors import OrchMindError
from backend.inference.engine_requests import (
    MAX_MESSAGES,
    ChatMessage,
    GenerationOptions,
    ModelName,
    StopSequence,
    Text,
    ToolCallIn,
    embed_inputs,
)
from backend.inference.generation import BadRequest, Event, Finished, RecordPump, TextDelta, ToolCalls, conversation
from backend.inference.structured import ToolCall

if TYPE_CHECKING:
    from backend.inference.engine_server import EngineApp

FINGERPRINT = "fp_orch_mind"


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str
    text: Text | None = None


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Text | list[ContentPart] | None = None
    tool_calls: list[ToolCallIn] | None = Field(None, max_length=16)
    tool_call_id: Annotated[str, StringConstraints(max_length=200)] | None = None

    def text(self) -> str:
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        parts = []
        for part in self.content:
            if part.type != "text":
                raise BadRequest(f"content part type {part.type!r} is not supported: the embedded engine's models read text only")
            parts.append(part.text or "")
        return "\n".join(parts)

    def as_chat_message(self) -> ChatMessage:
        role = "system" if self.role == "developer" else self.role
        return ChatMessage(role=role, content=self.text(), tool_calls=self.tool_calls)


class JsonSchemaFormat(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: Annotated[str, StringConstraints(max_length=64)] = "response"
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    def as_ollama_format(self) -> Any:
        if self.type == "json_object":
            return "json"
        if self.type == "json_schema":
            if self.json_schema is None or not self.json_schema.schema_:
                raise BadRequest("response_format json_schema needs json_schema.schema")
            return self.json_schema.schema_
        return None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class SamplingRequest(BaseModel):
    """What chat and text completions share: model, stream, sampling."""

    model_config = ConfigDict(extra="ignore")

    model: ModelName
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1, le=1_000_000)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    stop: list[StopSequence] | None = Field(None, max_length=16)
    seed: int | None = Field(None, ge=-1, le=2**32 - 1)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    n: int = Field(1, ge=1, le=1, description="One choice per request.")

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if isinstance(data.get("stop"), str):
                data = {**data, "stop": [data["stop"]]}
            if data.get("max_tokens") is None and data.get("max_completion_tokens") is not None:
                data = {**data, "max_tokens": data["max_completion_tokens"]}
        return data

    def options(self) -> GenerationOptions:
        return GenerationOptions(temperature=self.temperature, top_p=self.top_p, stop=self.stop, seed=self.seed,
                                 num_predict=self.max_tokens, frequency_penalty=self.frequency_penalty,
                                 presence_penalty=self.presence_penalty)

    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatCompletionRequest(SamplingRequest):
    messages: list[Message] = Field(min_length=1, max_length=MAX_MESSAGES)
    response_format: ResponseFormat | None = None
    tools: Annotated[list[dict[str, Any]], Field(max_length=64)] | None = None
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None

    def tool_choice_name(self) -> str:
        if isinstance(self.tool_choice, dict):
            name = (self.tool_choice.get("function") or {}).get("name")
            if not isinstance(name, str):
                raise BadRequest("tool_choice must be 'none', 'auto', 'required' or {'type': 'function', 'function': {'name': …}}")
            return name
        return self.tool_choice or "auto"


class CompletionRequest(SamplingRequest):
    prompt: Text | list[Text]

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, value: Any) -> Any:
        if isinstance(value, list):
            if len(value) != 1:
                raise ValueError("send one prompt per request")
            return value[0]
        return value


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: ModelName
    input: Text | list[Text]
    encoding_format: Literal["float", "base64"] = "float"

    @field_validator("input", mode="before")
    @classmethod
    def _texts(cls, value: Any) -> Any:
        return embed_inputs(value)


def error_body(message: str, status: int) -> dict[str, Any]:
    kind = {400: "invalid_request_error", 404: "not_found_error", 503: "server_error", 507: "server_error"}.get(status, "api_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def sse(payload: Any) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()


def openai_tool_calls(calls: list[ToolCall], *, streaming: bool = False) -> list[dict[str, Any]]:
    out = []
    for index, call in enumerate(calls):
        item = {"id": "call_" + secrets.token_hex(12), "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments, ensure_ascii=False)}}
        out.append({"index": index, **item} if streaming else item)
    return out


def usage(final: Finished | None) -> dict[str, int]:
    prompt = final.prompt_tokens if final else 0
    completion = final.eval_count if final else 0
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class Choices:
    """Generation events as OpenAI chat.completion (``chat``) or text_completion chunks and bodies."""

    def __init__(self, model: str, chat: bool, include_usage: bool) -> None:
        self.model = model
        self.chat = chat
        self.include_usage = include_usage
        self.id = ("chatcmpl-" if chat else "cmpl-") + secrets.token_hex(12)
        self.created = int(time.time())

    def _envelope(self, choices: list[dict[str, Any]], streaming: bool) -> dict[str, Any]:
        kind = ("chat.completion" if self.chat else "text_completion") + (".chunk" if streaming and self.chat else "")
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model,
                "system_fingerprint": FINGERPRINT, "choices": choices}

    def chunk(self, event: Event, first: bool) -> dict[str, Any]:
        finish = event.reason if isinstance(event, Finished) else None
        if self.chat:
            delta: dict[str, Any] = {"role": "assistant"} if first else {}
            if isinstance(event, TextDelta):
                delta["content"] = event.text
            elif isinstance(event, ToolCalls):
                delta["tool_calls"] = openai_tool_calls(event.calls, streaming=True)
            choice: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        else:
            choice = {"index": 0, "text": event.text if isinstance(event, TextDelta) else "", "logprobs": None,
                      "finish_reason": finish}
        body = self._envelope([choice], streaming=True)
        if self.include_usage:
            body["usage"] = None
        return body

    async def stream(self, first: Event, pump: RecordPump) -> AsyncIterator[bytes]:
        final: Finished | None = None
        try:
            yield sse(self.chunk(first, first=True))
            final = first if isinstance(first, Finished) else None
            async for item in pump.items():
                if isinstance(item, OrchMindError):
                    yield sse({"error": error_body(item.message, 500)["error"]})
                    return
                yield sse(self.chunk(item, first=False))
                final = item if isinstance(item, Finished) else final
            if self.include_usage:
                yield sse({**self._envelope([], streaming=True), "usage": usage(final)})
            yield b"data: [DONE]\n\n"
        finally:
            pump.stop()

    async def whole(self, first: Event, pump: RecordPump) -> dict[str, Any]:
        answer = await pump.collect(first)
        reason = answer.finished.reason if answer.finished else "stop"
        if self.chat:
            message: dict[str, Any] = {"role": "assistant", "content": answer.content or (None if answer.calls else "")}
            if answer.calls:
                message["tool_calls"] = openai_tool_calls(answer.calls)
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": reason}
        else:
            choice = {"index": 0, "text": answer.content, "logprobs": None, "finish_reason": reason}
        return {**self._envelope([choice], streaming=False), "usage": usage(answer.finished)}


class OpenAIRoutes:
    def __init__(self, engine: EngineApp) -> None:
        self.engine = engine

    def _model_card(self, manifest: Any) -> dict[str, Any]:
        return {"id": manifest.name, "object": "model", "created": int(manifest.created_at), "owned_by": "orch-mind"}

    async def models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [self._model_card(m) for m in self.engine.store.list()
                                                         if not m.unavailable_reason()]})

    async def model(self, request: Request) -> Response:
        return JSONResponse(self._model_card(self.engine.manifest(request.path_params["model"])))

    async def _answer(self, request: Request, body: SamplingRequest, plan_args: dict[str, Any], chat: bool) -> Response:
        engine = self.engine
        manifest = engine.manifest(body.model)
        plan = engine.plan(manifest, options=body.options(), **plan_args)
        choices = Choices(body.model, chat, body.include_usage())

        async def respond(first: Event, pump: RecordPump) -> Response:
            if body.stream:
                return StreamingResponse(choices.stream(first, pump), media_type="text/event-stream",
                                         headers={"cache-control": "no-cache"})
            return JSONResponse(await choices.whole(first, pump))

        return await engine.serve(request, manifest, plan, respond)

    async def chat_completions(self, request: Request) -> Response:
        body = await self.engine.parse(request, ChatCompletionRequest)
        messages = conversation([m.as_chat_message() for m in body.messages])
        fmt = body.response_format.as_ollama_format() if body.response_format else None
        return await self._answer(request, body, {"messages": messages, "fmt": fmt, "tools": body.tools,
                                                  "tool_choice": body.tool_choice_name()}, chat=True)

    async def completions(self, request: Request) -> Response:
        body = await self.engine.parse(request, CompletionRequest)
        return await self._answer(request, body, {"messages": [{"role": "user", "content": body.prompt}]}, chat=False)

    async def embeddings(self, request: Request) -> Response:
        body = await self.engine.parse(request, EmbeddingRequest)
        manifest = self.engine.manifest(body.model)
        texts = list(body.input)
        vectors, tokens = await run_in_threadpool(self.engine.runner.embed, manifest, texts)
        data = []
        for index, vector in enumerate(vectors):
            embedding: Any = vector
            if body.encoding_format == "base64":
                embedding = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        return JSONResponse({"object": "list", "data": data, "model": manifest.name,
                             "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})
