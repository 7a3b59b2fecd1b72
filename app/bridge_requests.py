"""Bridge calls with more than three arguments take one typed object instead of a positional list.

The UI sends ``{"base": …, "voice": …}`` rather than ten values in a row, so two values of the same
type can never be swapped silently, and each model documents what the call accepts. Strict (no "5"
for 5) and closed (an unknown field is an error: it is a typo or an older UI).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.validation import LongText, ModelName, Query, ShortText
from backend.memory.search import MAX_RESULTS

Voice = Literal["assistant", "user"]


class BridgeRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)


class ChatChanges(BridgeRequest):
    """What a chat's settings bar changes; None leaves a field as it is."""

    title: ShortText | None = None
    model: ModelName | None = None
    system_prompt: LongText | None = None
    memory_enabled: bool | None = None


class MemorySearchRequest(BridgeRequest):
    query: Query
    k: int = Field(10, ge=1, le=MAX_RESULTS)
    mode: Literal["hybrid", "semantic", "keyword"] = "hybrid"
    roles: list[ShortText] = Field(default_factory=list, max_length=10)
    source_ids: list[ShortText] = Field(default_factory=list, max_length=50)
    date_from: ShortText | None = Field(None, description="An ISO date such as 2024-05-31.")
    date_to: ShortText | None = None


class TrainingRequest(BridgeRequest):
    """The Training screen's form: the data to learn from and the run's settings (preview and start)."""

    base: ShortText = "smollm2"
    voice: Voice = "assistant"
    title_contains: ShortText | None = None
    date_from: ShortText | None = None
    date_to: ShortText | None = None
    epochs: int | None = Field(None, description="None: planned from the data size.")
    rank: int = 8
    learning_rate: float | None = Field(None, description="None: planned from the data size.")
    max_tokens: int = 512
    adapter_name: ShortText = "my-adapter"
