"""One generation in the embedded engine, whichever API asked for it (Ollama's or OpenAI's).

Each endpoint turns its request into a :class:`GenerationPlan` (messages, sampling, grammar, tools)
and turns the :class:`TextDelta` / :class:`ToolCalls` / :class:`Finished` events that come back into
its own wire format. So both APIs share one prompt renderer, one queue per model and one set of
rules for tool calls and structured output.

The prompt is rendered with the model's chat template (``chat_templates``) and completed by
llama.cpp directly (``create_completion``), which is what lets a tool call be detected at the start of
an answer and finished under a grammar (see ``structured``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from backend.errors import OrchMindError
from backend.inference.engine_requests import ChatMessage
from backend.inference.llama_runner import EngineError, LlamaRunner, LoadedModel, StopSignal
from backend.inference.model_store import ModelManifest
from backend.inference.structured import (
    TOOL_CALL_OPEN,
    Grammar,
    GrammarChecker,
    Tool,
    ToolCall,
    call_text,
    calls_grammar,
    llama_grammar,
    parse_calls,
    tool_result_text,
    tools_prompt,
)

log = logging.getLogger("orch_mind.engine")


class BadRequest(OrchMindError):
    """The client's request cannot be served as sent (HTTP 400)."""

    code = "invalid_request"


class PromptTooLong(BadRequest):
    code = "prompt_too_long"


class EngineBusy(OrchMindError):
    """Too many requests running or waiting (HTTP 503)."""

    code = "busy"


@dataclass
class GenerationPlan:
    messages: list[dict[str, str]]  # role/content only: earlier tool calls and results already written as text
    sampling: dict[str, Any]  # llama.cpp keyword arguments (temperature, top_k, max_tokens, stop, seed …)
    grammar: Grammar | None = None  # the whole answer must match (format / response_format)
    tools: list[Tool] = field(default_factory=list)
    tool_choice: str = "auto"  # "auto", "none", "required", or the one tool's name
    raw_prompt: str | None = None  # /api/generate raw: no template
    num_ctx: int | None = None
    keep_alive: float | None = None  # seconds; None = the engine's default


@dataclass
class TextDelta:
    text: str


@dataclass
class ToolCalls:
    calls: list[ToolCall]


@dataclass
class Finished:
    reason: str  # "stop", "length" or "tool_calls"
    prompt_tokens: int
    eval_count: int
    load_ns: int
    total_ns: int
    prompt_eval_ns: int
    eval_ns: int


Event = TextDelta | ToolCalls | Finished


@dataclass
class Answer:
    """A generation's events gathered: its text, its tool calls and how it finished."""

    text: list[str] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    finished: Finished | None = None

    @property
    def content(self) -> str:
        return "".join(self.text)

_grammars = GrammarChecker()


def conversation(messages: list[ChatMessage]) -> list[dict[str, str]]:
    """Messages as the prompt sees them: an assistant turn's tool calls written as the model writes
    them, and tool results as ``<tool_response>`` user turns (consecutive ones joined), which every
    chat template accepts (not all know a ``tool`` role)."""
    out: list[dict[str, str]] = []
    for message in messages:
        if message.role == "tool":
            text = tool_result_text(message.content)
            if out and out[-1].get("tool"):
                out[-1]["content"] += "\n" + text
            else:
                out.append({"role": "user", "content": text, "tool": "1"})
            continue
        content = message.content
        if message.role == "assistant" and message.tool_calls:
            calls = call_text([ToolCall(c.function.name, c.function.arguments) for c in message.tool_calls])
            content = f"{content}\n{calls}" if content else calls
        out.append({"role": message.role, "content": content})
    return [{"role": m["role"], "content": m["content"]} for m in out]


def with_tools_prompt(messages: list[dict[str, str]], tools: list[Tool]) -> list[dict[str, str]]:
    """The tools' declarations added to the system prompt (one is created if there is none)."""
    section = tools_prompt(tools)
    if messages and messages[0]["role"] == "system":
        return [{"role": "system", "content": messages[0]["content"] + "\n\n" + section}, *messages[1:]]
    return [{"role": "system", "content": section}, *messages]


def generate(runner: LlamaRunner, manifest: ModelManifest, plan: GenerationPlan, stop: threading.Event) -> Iterator[Event]:
    """The events of one generation; waits its turn for the model (giving up if ``stop`` is set first)."""
    started = time.perf_counter_ns()
    loaded = runner.checkout(manifest, plan.num_ctx)
    try:
        load_ns = 0 if loaded.load_reported else int(loaded.load_seconds * 1e9)  # Ollama: only the request that loaded it
        loaded.load_reported = True
        if not loaded.lock.acquire(stop):
            return
        try:
            if not stop.is_set():
                yield from _run(loaded, plan, stop, started, load_ns)
        finally:
            loaded.lock.release()
    finally:
        runner.checkin(loaded, plan.keep_alive)


def _prompt(loaded: LoadedModel, plan: GenerationPlan) -> tuple[list[int], list[str], Any]:
    """Prompt tokens, stop strings and stopping criteria."""
    llama = loaded.llama
    if plan.raw_prompt is not None:
        return llama.tokenize(plan.raw_prompt.encode("utf-8"), add_bos=True, special=True), [], None
    messages = plan.messages
    if plan.tools and plan.tool_choice != "none":
        messages = with_tools_prompt(messages, plan.tools)
    try:
        rendered = loaded.formatter(messages=messages)
    except Exception as exc:  # noqa: BLE001 - a GGUF's Jinja template may raise on any message list
        raise BadRequest(f"the model's chat template does not accept these messages: {exc}") from exc
    stops = [rendered.stop] if isinstance(rendered.stop, str) else list(rendered.stop or [])
    tokens = llama.tokenize(rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True)
    return tokens, [*stops, *loaded.template.stop], rendered.stopping_criteria


def _run(loaded: LoadedModel, plan: GenerationPlan, stop: threading.Event, started: int, load_ns: int) -> Iterator[Event]:
    llama = loaded.llama
    tokens, template_stops, criteria = _prompt(loaded, plan)
    if len(tokens) >= loaded.n_ctx:
        raise PromptTooLong(f"prompt is too long: {len(tokens)} tokens for a context of {loaded.n_ctx}")
    sampling = dict(plan.sampling)
    user_stops = sampling.pop("stop", None) or []
    sampling.setdefault("max_tokens", None)  # llama.cpp's completion default is 16 tokens; Ollama's is no cap
    budget = sampling["max_tokens"]
    tools = plan.tools if plan.tool_choice != "none" else []
    forced = [t for t in tools if plan.tool_choice in ("required", t.name)]
    if plan.tool_choice not in ("auto", "none", "required") and not forced:
        raise BadRequest(f"tool_choice names {plan.tool_choice!r}, which is not among the tools")
    eval_count = 0
    first_token_ns = None
    reason = "stop"
    call_tools: list[Tool] = forced
    if not forced:
        grammar = None
        if plan.grammar is not None:
            _grammars.check(llama, plan.grammar)
            grammar = llama_grammar(plan.grammar)
        held = ""  # the start of an answer that may still become a tool call
        deciding = bool(tools) and plan.grammar is None
        try:
            chunks = llama.create_completion(prompt=tokens, stream=True, stop=[*user_stops, *template_stops],
                                             stopping_criteria=criteria, grammar=grammar, **sampling)
        except ValueError as exc:
            raise EngineError(f"generation failed: {exc}") from exc
        try:
            for chunk in chunks:
                if stop.is_set():
                    return
                choice = chunk["choices"][0]
                if choice.get("finish_reason"):
                    reason = "length" if choice["finish_reason"] == "length" else "stop"
                text = choice.get("text") or ""
                if not text:
                    continue
                eval_count += 1
                first_token_ns = first_token_ns or time.perf_counter_ns()
                if deciding:
                    held += text
                    head = held.lstrip()
                    if head.startswith(TOOL_CALL_OPEN):
                        call_tools = tools
                        break
                    if TOOL_CALL_OPEN.startswith(head):
                        continue
                    deciding = False
                    text, held = held, ""
                yield TextDelta(text)
        finally:
            chunks.close()
        if held and not call_tools:
            yield TextDelta(held)
    if call_tools:
        remaining = None if budget is None else max(1, budget - eval_count)
        calls, used, cut = _tool_calls(loaded, call_tools, tokens, sampling, remaining, stop)
        eval_count += used
        first_token_ns = first_token_ns or time.perf_counter_ns()
        if calls:
            yield ToolCalls(calls)
            reason = "tool_calls"
        else:
            reason = "length" if cut else "stop"
    end = time.perf_counter_ns()
    first_token_ns = first_token_ns or end
    yield Finished(reason, len(tokens), eval_count, load_ns, end - started, first_token_ns - started, end - first_token_ns)


def _tool_calls(loaded: LoadedModel, tools: list[Tool], tokens: list[int], sampling: dict[str, Any],
                max_tokens: int | None, stop: threading.Event) -> tuple[list[ToolCall], int, bool]:
    """Write the answer's tool calls under the tools' grammar: (calls, tokens used, cut off)."""
    llama = loaded.llama
    grammar = calls_grammar(tools)
    _grammars.check(llama, grammar)
    opening = llama.tokenize(f"{TOOL_CALL_OPEN}\n".encode(), add_bos=False, special=True)
    options = {**sampling, "max_tokens": max_tokens}
    text = ""
    used = 0
    reason = None
    chunks = llama.create_completion(prompt=tokens + opening, stream=True, grammar=llama_grammar(grammar), **options)
    try:
        for chunk in chunks:
            if stop.is_set():
                break
            choice = chunk["choices"][0]
            text += choice.get("text") or ""
            used += 1
            reason = choice.get("finish_reason") or reason
    finally:
        chunks.close()
    calls = parse_calls(TOOL_CALL_OPEN + "\n" + text) or []
    unique: list[ToolCall] = []
    for call in calls:  # small models repeat a call verbatim; once is what they meant
        if call not in unique:
            unique.append(call)
    return unique, used, reason == "length"


class RecordPump:
    """Runs a generation in its own thread and hands its events to the response.

    The generator holds the model's lock while it runs; if the client goes away mid-stream, the
    response's ``finally`` sets ``stop`` and the worker closes the generator in its own thread, so
    the lock is always released and the next request is served (a request still waiting for the
    model leaves the queue at once). Events reach the event loop with ``call_soon_threadsafe`` (no
    thread-pool hop a token), and text that queued up while the client was busy is sent as one
    event: fewer records, same text.
    """

    def __init__(self, events: Iterator[Event], loop: asyncio.AbstractEventLoop, stop: StopSignal,
                 on_finished: Any = None) -> None:
        self._events = events
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
            for event in self._events:
                if self._stop.is_set():
                    break
                self._put(event)
        except OrchMindError as exc:
            self._put(exc)
        except Exception as exc:  # noqa: BLE001 - reported to the client as an error record
            log.exception("generation failed")
            self._put(EngineError(f"generation failed: {exc}"))
        finally:
            getattr(self._events, "close", lambda: None)()
            self._on_finished()
            self._put(_DONE)

    async def get(self) -> Event:
        """The first event (errors raised, so the response can still get a real status)."""
        item = await self._queue.get()
        if isinstance(item, OrchMindError):
            raise item
        if item is _DONE:
            raise EngineError("the model produced no output")
        return item

    async def events(self, first: Event) -> AsyncIterator[Event | OrchMindError]:
        """``first`` (from :meth:`get`) and then the rest."""
        yield first
        async for item in self.items():
            yield item

    async def collect(self, first: Event) -> Answer:
        """The whole answer, for a client that did not ask to stream (an error is raised)."""
        answer = Answer()
        async for item in self.events(first):
            if isinstance(item, OrchMindError):
                raise item
            if isinstance(item, TextDelta):
                answer.text.append(item.text)
            elif isinstance(item, ToolCalls):
                answer.calls += item.calls
            else:
                answer.finished = item
        return answer

    async def items(self) -> AsyncIterator[Event | OrchMindError]:
        """The remaining events, consecutive text joined; an error ends them."""
        while True:
            item = await self._queue.get()
            while isinstance(item, TextDelta) and not self._queue.empty():
                following = self._queue.get_nowait()
                if not isinstance(following, TextDelta):
                    yield item
                    item = following
                    break
                item = TextDelta(item.text + following.text)
            if item is _DONE:
                return
            yield item
            if isinstance(item, OrchMindError):
                return


_DONE = object()
