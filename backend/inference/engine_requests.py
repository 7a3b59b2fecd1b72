"""The embedded engine's requests, one pydantic model per endpoint: the subset of Ollama's API we speak.

Everything a client sends is validated here before anything runs or is stored, so a hostile or
merely wrong request gets a 400 that names the field, and a model can never be saved with options
or a system prompt that would break every later chat with it. Unknown top-level fields are ignored
(clients send fields for features we do not have, as they do to Ollama); known fields must have
the right type and range.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator, model_validator

from backend.errors import field_problems

MAX_TEXT_CHARS = 1_000_000
MAX_SYSTEM_CHARS = 32_000
MAX_MESSAGES = 1_000
MAX_EMBED_INPUTS = 512
MAX_STOP_SEQUENCES = 16

Text = Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS)]
System = Annotated[str, StringConstraints(max_length=MAX_SYSTEM_CHARS)]
ModelName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
StopSequence = Annotated[str, StringConstraints(min_length=1, max_length=200)]
MAX_TOOL_CALLS = 16
DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class GenerationOptions(BaseModel):
    """Ollama's ``options`` (and a model's stored ``parameters``): the ones the engine honours.

    Other Ollama options (num_gpu, num_thread, mirostat …) are accepted and ignored, as they have
    no meaning for this engine; the ones below are checked, because they are stored with models."""

    model_config = ConfigDict(extra="ignore")

    temperature: float | None = Field(None, ge=0, le=100, description="Sampling temperature; 0 is greedy.")
    top_k: int | None = Field(None, ge=0, le=1_000_000, description="Sample from the k most likely tokens.")
    top_p: float | None = Field(None, ge=0, le=1, description="Nucleus sampling threshold.")
    min_p: float | None = Field(None, ge=0, le=1, description="Drop tokens below this share of the best one.")
    repeat_penalty: float | None = Field(None, ge=0, le=100, description="Penalty for repeating recent tokens.")
    presence_penalty: float | None = Field(None, ge=-100, le=100)
    frequency_penalty: float | None = Field(None, ge=-100, le=100)
    seed: int | None = Field(None, ge=-1, le=2**32 - 1, description="Sampling seed; -1 is random.")
    num_predict: int | None = Field(None, ge=-2, le=1_000_000, description="Token cap; -1 means none.")
    num_ctx: int | None = Field(None, ge=64, le=1_048_576, description="Context window in tokens.")
    stop: list[StopSequence] | None = Field(None, max_length=MAX_STOP_SEQUENCES)

    @model_validator(mode="before")
    @classmethod
    def _stop_as_list(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("stop"), str):
            return {**data, "stop": [data["stop"]]}
        return data

    def stored(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class EngineRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _name_is_model(cls, data: Any) -> Any:
        """Older clients send ``name`` where newer ones send ``model``."""
        if isinstance(data, dict) and "model" not in data and "name" in data:
            return {**data, "model": data["name"]}
        return data


class ModelRequest(EngineRequest):
    model: ModelName


class FunctionCall(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    arguments: dict[str, Any] = Field(default_factory=dict)

    @field_validator("arguments", mode="before")
    @classmethod
    def _json_text(cls, value: Any) -> Any:
        """OpenAI sends arguments as JSON text, Ollama as an object."""
        if isinstance(value, str):
            try:
                value = json.loads(value or "{}")
            except json.JSONDecodeError as exc:
                raise ValueError("arguments must be a JSON object (or JSON text of one)") from exc
        return value


class ToolCallIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: Annotated[str, StringConstraints(max_length=200)] | None = None
    function: FunctionCall


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant", "tool"]
    content: Text = ""
    tool_calls: list[ToolCallIn] | None = Field(None, max_length=MAX_TOOL_CALLS)
    tool_name: Annotated[str, StringConstraints(max_length=64)] | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return "" if value is None else value  # an assistant turn that only called tools


KeepAlive = str | int | float | None
ToolList = Annotated[list[dict[str, Any]], Field(max_length=64)]


class GenerationRequest(ModelRequest):
    options: GenerationOptions = Field(default_factory=GenerationOptions)
    stream: bool = True
    keep_alive: float | None = Field(None, description="Seconds (or a duration such as \"5m\") to keep the model loaded.")
    format: Literal["", "json"] | dict[str, Any] | None = Field(None, description='"json" or a JSON schema the answer must match.')
    think: bool | Literal["low", "medium", "high"] | None = Field(None, description="Ignored: no model here thinks aloud.")


    @field_validator("keep_alive", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return keep_alive_seconds(value)


class ChatRequest(GenerationRequest):
    messages: list[ChatMessage] = Field(default_factory=list, max_length=MAX_MESSAGES)
    tools: ToolList | None = None


class GenerateRequest(GenerationRequest):
    prompt: Text = ""
    system: System | None = None
    raw: bool = Field(False, description="Send the prompt as is, without the chat template.")


class EmbeddingsRequest(ModelRequest):
    """The legacy ``/api/embeddings``: one prompt, one vector."""

    prompt: Text = ""


class CopyRequest(EngineRequest):
    source: ModelName
    destination: ModelName


class PullRequest(EngineRequest):
    model: Annotated[str, StringConstraints(max_length=500)] = ""


def keep_alive_seconds(value: KeepAlive) -> float | None:
    """Ollama's ``keep_alive``: seconds as a number, or a Go duration ("5m", "1h30m", "0", "-1m");
    negative keeps the model loaded; None is the engine's default."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    sign = -1.0 if text.startswith("-") else 1.0
    parts = DURATION_PART.findall(text.lstrip("+-"))
    if not parts or "".join(n + u for n, u in parts) != text.lstrip("+-"):
        raise ValueError(f"keep_alive {text[:40]!r} is not a duration (examples: 300, \"5m\", \"1h\", 0, -1)")
    return sign * sum(float(n) * DURATION_UNITS[u] for n, u in parts)


def embed_inputs(value: Any) -> list[str]:
    """Ollama's and OpenAI's embedding ``input``: one string or a list of strings (not token arrays)."""
    value = [value] if isinstance(value, str) else value
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_EMBED_INPUTS or not all(isinstance(v, str) for v in value):
        raise ValueError(f"input must be a string or a list of up to {MAX_EMBED_INPUTS} strings (token arrays are not supported)")
    return value


class EmbedRequest(ModelRequest):
    input: list[Text]
    truncate: bool = True

    @field_validator("input", mode="before")
    @classmethod
    def _texts(cls, value: Any) -> Any:
        return embed_inputs(value)

    def texts(self) -> list[str]:
        return list(self.input)


Digest = Annotated[str, StringConstraints(max_length=80)]


class CreateRequest(EngineRequest):
    model: ModelName
    from_: ModelName | None = Field(None, alias="from")
    files: dict[Annotated[str, StringConstraints(max_length=200)], Digest] | None = Field(None, max_length=1)
    adapters: dict[Annotated[str, StringConstraints(max_length=200)], Digest] | None = Field(None, max_length=1)
    system: System | None = None
    parameters: GenerationOptions = Field(default_factory=GenerationOptions)
    quantize: str | None = None
    stream: bool = True


class ModelOnlyRequest(ModelRequest):
    pass


def describe(error: ValidationError) -> str:
    """One line a person can act on: which field, what is wrong with it."""
    return "invalid request: " + field_problems(error, "body")
