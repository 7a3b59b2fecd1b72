"""Build the messages sent to the model: pure functions, no I/O.

The context window is a budget. In order: the system prompt and the new user message always go in;
a reply reserve is kept free; memories take up to a share of what is left (best first); earlier
turns fill the rest, newest first. What did not fit is reported, so the UI can say so.

Token counts are estimated (about 3.2 characters a token, rounded up, plus a few tokens a message):
the Ollama API has no tokenizer endpoint, and overestimating is the safe side.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

CHARS_PER_TOKEN = 3.2
MESSAGE_OVERHEAD_TOKENS = 6
REPLY_RESERVE_TOKENS = 384
MEMORY_SHARE = 0.5


class MemoryHit(Protocol):
    chunk_id: str
    title: str
    role: str
    created_at: str | None
    text: str


_SPEAKERS = {"user": "the user said", "assistant": "the assistant said"}


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN) + MESSAGE_OVERHEAD_TOKENS


@dataclass
class PromptReport:
    used_memories: list[str] = field(default_factory=list)  # chunk ids, in prompt order
    dropped_turns: int = 0
    estimated_tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"used_memories": self.used_memories, "dropped_turns": self.dropped_turns, "estimated_tokens": self.estimated_tokens}


def memory_block(hits: Sequence[MemoryHit]) -> str:
    """The retrieved memories, best first, each with its conversation, date and who said it."""
    lines = ["Relevant memories from the user's earlier conversations, best match first (cite them as [1], [2], … "
             "when you use them):"]
    for number, hit in enumerate(hits, 1):
        said = ", ".join(part for part in ((hit.created_at or "")[:10], _SPEAKERS.get(hit.role, "")) if part)
        lines.append(f"[{number}] {hit.title} ({said}): {hit.text}")
    return "\n".join(lines)


def build_messages(system_prompt: str, history: Sequence[dict[str, str]], user_message: str, hits: Sequence[MemoryHit],
                   context_tokens: int) -> tuple[list[dict[str, str]], PromptReport]:
    report = PromptReport()
    budget = context_tokens - REPLY_RESERVE_TOKENS - estimate_tokens(system_prompt) - estimate_tokens(user_message)
    if budget < 0:
        raise ValueError(f"The message is too long for this model's context of {context_tokens} tokens; shorten it.")
    chosen: list[MemoryHit] = []
    memory_budget = int(budget * MEMORY_SHARE)
    used = estimate_tokens(memory_block([])) if hits else 0
    for hit in hits:
        cost = estimate_tokens(hit.text) + 8
        if used + cost > memory_budget:
            continue
        chosen.append(hit)
        used += cost
    system = system_prompt + ("\n\n" + memory_block(chosen) if chosen else "")
    budget -= used if chosen else 0
    kept: list[dict[str, str]] = []
    for turn in reversed(history):
        cost = estimate_tokens(turn["content"])
        if cost > budget:
            break
        kept.append(turn)
        budget -= cost
    kept.reverse()
    report.dropped_turns = len(history) - len(kept)
    report.used_memories = [hit.chunk_id for hit in chosen]
    messages = [{"role": "system", "content": system}, *kept, {"role": "user", "content": user_message}]
    report.estimated_tokens = sum(estimate_tokens(m["content"]) for m in messages)
    return messages, report
