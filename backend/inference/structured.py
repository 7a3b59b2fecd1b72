"""Structured output and tool calls, enforced with llama.cpp grammars.

A client that asks for JSON (Ollama's ``format``, OpenAI's ``response_format``) or declares tools
relies on the reply parsing: an editor plug-in or an agent framework has no use for "almost JSON".
So the reply is not asked for politely in the prompt and hoped for; it is *constrained*: the schema
becomes a GBNF grammar (llama-cpp-python's converter) and the sampler can only pick tokens the
grammar allows, so the text always parses and matches the schema (unless ``num_predict`` cuts it
off, which the answer then says: ``done_reason``/``finish_reason`` ``length``).

Tool calls use one format for every model, the one many open models are trained on (Hermes/Qwen
style): the tools are described in the system prompt and a call is
``<tool_call>{"name": …, "arguments": {…}}</tool_call>``. With ``tool_choice`` ``auto`` (Ollama's
only mode) the model writes freely; if its answer starts with ``<tool_call>``, the rest is generated
under a grammar built from the declared tools' parameter schemas, so the arguments always match.
``required`` or a named tool starts the answer with the call.

Schemas come from clients, so they are bounded (size, depth, repetition counts) and the grammar is
checked by llama.cpp's own parser before any sampler uses it: a grammar llama.cpp cannot parse would
otherwise crash the process.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from backend.errors import OrchMindError

MAX_SCHEMA_CHARS = 64_000
MAX_SCHEMA_DEPTH = 24
MAX_REPEAT = 1_000  # minItems/maxItems/minLength/maxLength …: the converter unrolls them into rules
MAX_GRAMMAR_CHARS = 400_000
MAX_TOOLS = 64
MAX_CALLS = 4  # tool calls in one answer
TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
REPEAT_KEYS = ("minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties")


class StructuredOutputError(OrchMindError):
    """A schema or tool list the engine cannot turn into a grammar: the client's to fix (HTTP 400)."""

    code = "invalid_request"


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]

    def declaration(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "parameters": self.parameters}


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Grammar:
    """GBNF text and the rule to start from (llama.cpp's sampler takes both)."""

    text: str
    root: str = "root"


def _check_schema(schema: Any, depth: int = 0) -> None:
    if depth > MAX_SCHEMA_DEPTH:
        raise StructuredOutputError(f"the JSON schema nests more than {MAX_SCHEMA_DEPTH} levels")
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key in REPEAT_KEYS and isinstance(value, int) and value > MAX_REPEAT:
                raise StructuredOutputError(f"the JSON schema's {key} is {value}; the engine enforces at most {MAX_REPEAT}")
            _check_schema(value, depth + 1)
    elif isinstance(schema, list):
        for value in schema:
            _check_schema(value, depth + 1)


# JSON forbids raw control characters in strings; llama-cpp-python's converter allowed them, so a
# model could write a newline inside a string and the reply would not parse.
JSON_CHAR = r'[^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F])'
NUMBER_LIMIT = 10**15 - 1  # the converter's own integers have at most 16 digits
BOUND_KEYS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def _digit_strings(lo: str, hi: str) -> str:
    """GBNF for the digit strings as long as ``lo`` and ``hi`` (equal lengths) between them."""
    if lo == hi:
        return f'"{lo}"'
    same = next(i for i, (a, b) in enumerate(zip(lo, hi)) if a != b)
    prefix = f'"{lo[:same]}" ' if same else ""
    first, last, rest = int(lo[same]), int(hi[same]), len(lo) - same - 1
    if rest == 0:
        return f"{prefix}[{first}-{last}]"
    if lo[same + 1:] == "0" * rest and hi[same + 1:] == "9" * rest:
        return f"{prefix}[{first}-{last}] [0-9]{{{rest}}}"
    options = [f'"{first}" ({_digit_strings(lo[same + 1:], "9" * rest)})']
    if first + 1 <= last - 1:
        options.append(f"[{first + 1}-{last - 1}] [0-9]{{{rest}}}")
    options.append(f'"{last}" ({_digit_strings("0" * rest, hi[same + 1:])})')
    return f"{prefix}({' | '.join(options)})"


def _naturals(lo: int, hi: int) -> str:
    """GBNF for the whole numbers ``lo``..``hi`` (0 <= lo <= hi) written without leading zeros."""
    options = []
    for length in range(len(str(lo)), len(str(hi)) + 1):
        start, end = max(lo, 10 ** (length - 1) if length > 1 else 0), min(hi, 10**length - 1)
        if start <= end:
            options.append(_digit_strings(str(start), str(end)))
    return f"({' | '.join(options)})"


def integer_range(lo: int, hi: int) -> str:
    """GBNF for the integers ``lo``..``hi``, as JSON writes them."""
    options = []
    if lo < 0:
        options.append(f'"-" {_naturals(max(1, -hi), -lo)}')
    if hi >= 0:
        options.append(_naturals(max(0, lo), hi))
    return f"({' | '.join(options)})"


def _bounds(schema: dict[str, Any]) -> tuple[float, float, bool, bool]:
    lo, hi = schema.get("minimum", -NUMBER_LIMIT), schema.get("maximum", NUMBER_LIMIT)
    lo_open = hi_open = False
    if isinstance(schema.get("exclusiveMinimum"), bool):  # draft 4: a flag on minimum
        lo_open = schema["exclusiveMinimum"]
    elif "exclusiveMinimum" in schema:
        lo, lo_open = max(lo, schema["exclusiveMinimum"]), True
    if isinstance(schema.get("exclusiveMaximum"), bool):
        hi_open = schema["exclusiveMaximum"]
    elif "exclusiveMaximum" in schema:
        hi, hi_open = min(hi, schema["exclusiveMaximum"]), True
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lo, hi)):
        raise StructuredOutputError("minimum and maximum must be numbers")
    return max(lo, -NUMBER_LIMIT), min(hi, NUMBER_LIMIT), lo_open, hi_open


def bounded_number(schema: dict[str, Any]) -> str:
    """GBNF for an integer or number between the schema's bounds (llama-cpp-python's converter
    ignores them). Numbers: whole values in range, or a whole part and a non-zero fraction that keep
    the value inside (values between -1 and 0 only as -0.x; no exponents)."""
    lo, hi, lo_open, hi_open = _bounds(schema)
    whole_lo = math.floor(lo) + 1 if lo_open and lo == math.floor(lo) else math.ceil(lo)
    whole_hi = math.ceil(hi) - 1 if hi_open and hi == math.ceil(hi) else math.floor(hi)
    options = [integer_range(whole_lo, whole_hi)] if whole_lo <= whole_hi else []
    if schema.get("type") == "number":
        fraction = '"." [0-9]{0,14} [1-9]'
        top = math.floor(hi) - 1  # n.f < n + 1 <= hi
        if max(0, math.ceil(lo)) <= top:
            options.append(f"{_naturals(max(0, math.ceil(lo)), top)} {fraction}")
        bottom = math.floor(-lo) - 1  # -(n.f) > -(n + 1) >= lo
        if hi >= 0 and 0 <= bottom or hi < 0 and math.ceil(-hi) <= bottom:
            options.append(f'"-" {_naturals(max(0, math.ceil(-hi)), bottom)} {fraction}')
    if not options:
        raise StructuredOutputError(f"no {schema.get('type')} satisfies minimum {lo} and maximum {hi}")
    return f"({' | '.join(options)})"


def _converter(prop_order: list[str] | None) -> Any:
    from llama_cpp.llama_grammar import RESERVED_NAMES, BuiltinRule, SchemaConverter

    class Converter(SchemaConverter):
        """llama-cpp-python's converter with JSON-valid strings and enforced numeric bounds."""

        def _add_primitive(self, name: str, rule: Any) -> Any:
            return super()._add_primitive(name, BuiltinRule(JSON_CHAR, []) if name == "char" else rule)

        def visit(self, schema: Any, name: str) -> Any:
            if isinstance(schema, dict) and schema.get("type") in ("integer", "number") and any(k in schema for k in BOUND_KEYS):
                rule_name = name + "-" if name in RESERVED_NAMES else name or "root"
                return self._add_rule(rule_name, bounded_number(schema) + " space")
            return super().visit(schema, name)

    return Converter(prop_order={n: i for i, n in enumerate(prop_order or [])}, allow_fetch=False, dotall=False, raw_pattern=False)


def schema_grammar(schema: Any, prop_order: list[str] | None = None) -> str:
    """GBNF for one JSON schema (checked for size first)."""
    if not isinstance(schema, dict):
        raise StructuredOutputError("a JSON schema must be a JSON object")
    text = json.dumps(schema)
    if len(text) > MAX_SCHEMA_CHARS:
        raise StructuredOutputError(f"the JSON schema is too large ({len(text):,} characters; at most {MAX_SCHEMA_CHARS:,})")
    _check_schema(schema)
    try:
        converter = _converter(prop_order)
        converter.visit(converter.resolve_refs(json.loads(text), "request"), "")
        grammar = converter.format_grammar()
    except StructuredOutputError:
        raise
    except RecursionError as exc:
        raise StructuredOutputError("the JSON schema is too deeply recursive to enforce") from exc
    except Exception as exc:  # noqa: BLE001 - the converter raises bare Exceptions/KeyErrors for what it does not support
        raise StructuredOutputError(f"the JSON schema cannot be enforced: {exc}") from exc
    if len(grammar) > MAX_GRAMMAR_CHARS:
        raise StructuredOutputError("the JSON schema expands to too large a grammar; lower its repetition counts")
    return grammar


def json_grammar() -> Grammar:
    """Any JSON object (Ollama's ``format: "json"``, OpenAI's ``json_object``)."""
    from llama_cpp.llama_grammar import JSON_GBNF

    return Grammar(JSON_GBNF)


def format_grammar(fmt: Any) -> Grammar | None:
    """Ollama's ``format``: ``""``/None (free text), ``"json"``, or a JSON schema object."""
    if fmt in (None, ""):
        return None
    if fmt == "json":
        return json_grammar()
    if isinstance(fmt, dict):
        return Grammar(schema_grammar(fmt))
    raise StructuredOutputError('format must be "json" or a JSON schema object')


def parse_tools(raw: list[Any]) -> list[Tool]:
    """Ollama's and OpenAI's ``tools`` (``{"type": "function", "function": {name, description, parameters}}``)."""
    if len(raw) > MAX_TOOLS:
        raise StructuredOutputError(f"too many tools ({len(raw)}; at most {MAX_TOOLS})")
    tools = []
    for index, item in enumerate(raw):
        function = item.get("function") if isinstance(item, dict) else None
        if not isinstance(function, dict) or (item.get("type") or "function") != "function":
            raise StructuredOutputError(f"tools[{index}] must be {{'type': 'function', 'function': {{'name': …}}}}")
        name = function.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
            raise StructuredOutputError(f"tools[{index}].function.name must be 1-64 letters, digits, '_', '.' or '-'")
        parameters = function.get("parameters") or {"type": "object", "properties": {}}
        if not isinstance(parameters, dict):
            raise StructuredOutputError(f"tools[{index}].function.parameters must be a JSON schema object")
        description = function.get("description") or ""
        if not isinstance(description, str):
            raise StructuredOutputError(f"tools[{index}].function.description must be text")
        tools.append(Tool(name, description[:4000], parameters))
    if len({t.name for t in tools}) != len(tools):
        raise StructuredOutputError("two tools have the same name")
    return tools


def tools_prompt(tools: list[Tool]) -> str:
    """The system-prompt section that declares the tools and the call format."""
    declarations = "\n".join(json.dumps(t.declaration(), ensure_ascii=False) for t in tools)
    return ("You can call functions (tools) to help answer. The available tools, one JSON declaration per line:\n"
            f"<tools>\n{declarations}\n</tools>\n"
            "To call a tool, reply with only this, and nothing before it:\n"
            f'{TOOL_CALL_OPEN}\n{{"name": "<tool name>", "arguments": {{<arguments as JSON>}}}}\n{TOOL_CALL_CLOSE}\n'
            "Tool results come back inside <tool_response></tool_response>. If no tool is needed, answer normally.")


def calls_grammar(tools: list[Tool]) -> Grammar:
    """GBNF for what follows ``<tool_call>\\n``: one to MAX_CALLS calls, each to a declared tool with
    arguments that match its parameter schema, each closed with ``</tool_call>``."""
    one_of = [{"type": "object", "properties": {"name": {"const": t.name}, "arguments": _object_schema(t.parameters)},
               "required": ["name", "arguments"], "additionalProperties": False} for t in tools]
    schema = one_of[0] if len(one_of) == 1 else {"oneOf": one_of}
    body = schema_grammar(schema, prop_order=["name", "arguments"])
    close = json.dumps("\n" + TOOL_CALL_CLOSE)
    again = json.dumps("\n" + TOOL_CALL_OPEN + "\n")
    outer = f"orch-calls ::= root {close} ({again} root {close}){{0,{MAX_CALLS - 1}}}\n"
    return Grammar(body + "\n" + outer, root="orch-calls")


def _object_schema(parameters: dict[str, Any]) -> dict[str, Any]:
    if parameters.get("type") in (None, "object") and not parameters.get("properties") and "additionalProperties" not in parameters:
        return {"type": "object"}
    return parameters


CALL_BLOCK = re.compile(re.escape(TOOL_CALL_OPEN) + r"\s*(.*?)\s*" + re.escape(TOOL_CALL_CLOSE), re.S)


def parse_calls(text: str) -> list[ToolCall] | None:
    """The calls in ``<tool_call>…</tool_call>`` text, or None if it is not complete, valid calls
    (generation cut off by ``num_predict``)."""
    calls = []
    for block in CALL_BLOCK.findall(text):
        try:
            value = json.loads(block)
        except json.JSONDecodeError:
            return None
        if not isinstance(value, dict) or not isinstance(value.get("name"), str) or not isinstance(value.get("arguments"), dict):
            return None
        calls.append(ToolCall(value["name"], value["arguments"]))
    return calls or None


def call_text(calls: list[ToolCall]) -> str:
    """An earlier assistant turn's calls, written back into the conversation as the model wrote them."""
    return "\n".join(f"{TOOL_CALL_OPEN}\n{json.dumps({'name': c.name, 'arguments': c.arguments}, ensure_ascii=False)}\n{TOOL_CALL_CLOSE}"
                     for c in calls)


def tool_result_text(content: str) -> str:
    return f"<tool_response>\n{content}\n</tool_response>"


class GrammarChecker:
    """Runs llama.cpp's own grammar parser once per grammar (per vocabulary) before a sampler uses
    it; llama.cpp answers an unparsable grammar with a null sampler, which would crash the chain."""

    def __init__(self, capacity: int = 64) -> None:
        self._ok: OrderedDict[tuple[int, str, str], bool] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def check(self, llama: Any, grammar: Grammar) -> None:
        import llama_cpp

        vocab = llama._model.vocab  # noqa: SLF001 - llama-cpp-python keeps the vocabulary here
        key = (id(llama), grammar.root, grammar.text)
        with self._lock:
            if key in self._ok:
                self._ok.move_to_end(key)
                return
        sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar.text.encode("utf-8"), grammar.root.encode("utf-8"))
        if not sampler:
            raise StructuredOutputError("the requested format could not be turned into a grammar the engine can enforce")
        llama_cpp.llama_sampler_free(sampler)
        with self._lock:
            self._ok[key] = True
            while len(self._ok) > self._capacity:
                self._ok.popitem(last=False)


def llama_grammar(grammar: Grammar) -> Any:
    from llama_cpp import LlamaGrammar

    compiled = LlamaGrammar.from_string(grammar.text, verbose=False)
    compiled._root = grammar.root  # noqa: SLF001 - the sampler reads the start rule from here
    return compiled
