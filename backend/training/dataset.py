"""Training examples from conversations: pure functions that take data and return data.

Done the way the original app did not: every sample is rendered with the base model's own chat
template (the same one llama.cpp applies at inference), the loss covers only the voice being learned
(prompt tokens are masked with -100), long conversations are cut between turns into windows that
fit, and the train/validation split is held out by conversation, so no conversation leaks across.

No turn is lost silently: a single exchange longer than the window is split at sentence (then word)
boundaries into several windows, each a whole rendered exchange that ends with the template's
end-of-turn marker; its prompt is shortened from the front when it alone would fill the window. A
window is never cut mid-token, so a sample's text is exactly what is trained. What cannot be made to
fit is left out and named in the stats (``left_out``), which the preview shows.

Voices: ``assistant`` learns the assistant's answers (default); ``user`` learns to write like the
user, by swapping the roles so the user's messages become the model's replies.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from backend.config import DEFAULT_SYSTEM_PROMPT

Voice = Literal["assistant", "user"]
IGNORE_INDEX = -100
MAX_NOTES = 50
PROMPT_SHARE = 0.5  # an over-long exchange's prompt keeps at most this share of the window


class ChatTokenizer(Protocol):
    def apply_chat_template(self, conversation: list[dict[str, str]], tokenize: bool = ..., add_generation_prompt: bool = ..., **kwargs: Any) -> Any: ...
    def __call__(self, text: str, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class Turn:
    role: str  # user | assistant
    text: str


@dataclass(frozen=True)
class SourceConversation:
    id: str
    title: str
    created_at: datetime | None
    turns: tuple[Turn, ...]


@dataclass(frozen=True)
class DatasetOptions:
    voice: Voice = "assistant"
    max_tokens: int = 512
    validation_percent: int = 10
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    min_chars: int = 1
    title_contains: str | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None
    max_turns_per_sample: int = 12

    def __post_init__(self) -> None:
        if self.voice not in ("assistant", "user"):
            raise ValueError("voice must be 'assistant' or 'user'")
        if not 32 <= self.max_tokens <= 32768:
            raise ValueError("max_tokens must be between 32 and 32768")
        if not 0 <= self.validation_percent <= 50:
            raise ValueError("validation_percent must be between 0 and 50")


@dataclass
class Sample:
    conversation_id: str
    input_ids: list[int]
    labels: list[int]
    text: str
    prompt: list[dict[str, str]] = field(default_factory=list)  # system + first user turn, for sample replies

    @property
    def trained_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE_INDEX)


@dataclass
class DatasetStats:
    conversations: int = 0
    samples: int = 0
    train_samples: int = 0
    validation_samples: int = 0
    tokens: int = 0
    trained_tokens: int = 0
    duplicates_dropped: int = 0
    split_turns: int = 0  # over-long exchanges split into several windows
    left_out_turns: int = 0  # exchanges that could not be made to fit (named in left_out)
    filtered_conversations: int = 0
    left_out: list[str] = field(default_factory=list)  # titles of conversations with an exchange left out, at most MAX_NOTES

    def note(self, text: str) -> None:
        if len(self.left_out) < MAX_NOTES:
            self.left_out.append(text)


@dataclass
class Dataset:
    train: list[Sample] = field(default_factory=list)
    validation: list[Sample] = field(default_factory=list)
    stats: DatasetStats = field(default_factory=DatasetStats)


def is_validation(conversation_id: str, percent: int) -> bool:
    """Deterministic hold-out by conversation: the same conversation always lands on the same side."""
    return int(hashlib.sha256(conversation_id.encode()).hexdigest()[:8], 16) % 100 < percent


def keep(conversation: SourceConversation, options: DatasetOptions) -> bool:
    if options.title_contains and options.title_contains.lower() not in conversation.title.lower():
        return False
    if options.date_from and (conversation.created_at is None or conversation.created_at < options.date_from):
        return False
    if options.date_to and (conversation.created_at is None or conversation.created_at > options.date_to):
        return False
    return sum(len(t.text) for t in conversation.turns) >= options.min_chars


def voiced(turns: Sequence[Turn], voice: Voice) -> list[Turn]:
    """Merge consecutive same-role turns, swap roles for the user's voice, start on a prompt."""
    merged: list[Turn] = []
    for turn in turns:
        if turn.role not in ("user", "assistant") or not turn.text.strip():
            continue
        role = turn.role if voice == "assistant" else ("assistant" if turn.role == "user" else "user")
        if merged and merged[-1].role == role:
            merged[-1] = Turn(role, merged[-1].text + "\n\n" + turn.text)
        else:
            merged.append(Turn(role, turn.text))
    while merged and merged[0].role == "assistant":
        merged.pop(0)  # a reply with no prompt teaches nothing about answering
    return merged


def encode_turns(tokenizer: ChatTokenizer, system_prompt: str, turns: Sequence[Turn]) -> tuple[list[int], list[int], str]:
    """Token ids and labels for one rendered conversation; labels keep only the assistant turns
    (content and end-of-turn marker), found by rendering each prefix with the same template."""
    messages = [{"role": "system", "content": system_prompt}] + [{"role": t.role, "content": t.text} for t in turns]
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    spans = []
    for index in range(1, len(messages)):
        if messages[index]["role"] != "assistant":
            continue
        start = len(tokenizer.apply_chat_template(messages[:index], tokenize=False, add_generation_prompt=True))
        end = len(tokenizer.apply_chat_template(messages[: index + 1], tokenize=False))
        spans.append((start, end))
    encoded = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(encoded["input_ids"])
    labels = [token if any(s <= begin < e for s, e in spans) else IGNORE_INDEX
              for token, (begin, _end) in zip(ids, encoded["offset_mapping"])]
    return ids, labels, full


def _previous_reply_end(turns: list[Turn], start: int, end: int) -> int:
    """The largest end < ``end`` whose last turn is a reply (so a window never ends on a prompt)."""
    end -= 1
    while end > start and turns[end - 1].role != "assistant":
        end -= 1
    return end


def _token_counter(tokenizer: ChatTokenizer) -> Callable[[str], int]:
    return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])


def _tail(text: str, budget: int, count: Callable[[str], int]) -> str:
    """The end of ``text`` (whole sentences, else whole words) within ``budget`` tokens, marked as cut."""
    from backend.memory.chunking import chunk_text

    pieces = chunk_text(text, max(8, budget - 2), overlap_tokens=0, count=count)
    return ("… " + pieces[-1]) if len(pieces) > 1 else text


def split_exchange(tokenizer: ChatTokenizer, options: DatasetOptions, prompt: Turn, reply: Turn) -> list[tuple[list[int], list[int], str]]:
    """An exchange longer than the window as several whole windows: the prompt (its end, when it is
    long) and consecutive parts of the reply cut at sentence or word boundaries; each rendered with
    the template, so each ends with its end-of-turn marker. Empty when no split fits."""
    from backend.memory.chunking import chunk_text

    count = _token_counter(tokenizer)
    limit = options.max_tokens
    if count(prompt.text) > limit * PROMPT_SHARE:
        prompt = Turn(prompt.role, _tail(prompt.text, int(limit * PROMPT_SHARE), count))
    overhead = len(encode_turns(tokenizer, options.system_prompt, [prompt, Turn(reply.role, ".")])[0])
    budget = limit - overhead
    for _attempt in range(4):  # pieces counted apart can tokenise a little longer together: shrink and retry
        if budget < 8:
            return []
        windows = [encode_turns(tokenizer, options.system_prompt, [prompt, Turn(reply.role, part)])
                   for part in chunk_text(reply.text, budget, overlap_tokens=0, count=count)]
        if windows and all(len(ids) <= limit for ids, _, _ in windows):
            return windows
        budget = int(budget * 0.85)
    return []


def build_samples(tokenizer: ChatTokenizer, conversation: SourceConversation, options: DatasetOptions,
                  stats: DatasetStats) -> list[Sample]:
    """Cut the conversation into consecutive windows of whole exchanges that fit ``max_tokens``.

    Every exchange lands in exactly one window, or, when it alone exceeds the limit, in several
    (``split_exchange``, counted in ``stats.split_turns``); one that cannot be split to fit is named
    in ``stats.left_out``. Never silent, never cut mid-turn."""
    turns = voiced(conversation.turns, options.voice)
    samples: list[Sample] = []
    start = 0
    while start < len(turns):
        end = min(len(turns), start + options.max_turns_per_sample)
        end = end if turns[end - 1].role == "assistant" else _previous_reply_end(turns, start, end)
        if end <= start:
            break
        windows: list[tuple[list[int], list[int], str]] = []
        while True:
            ids, labels, text = encode_turns(tokenizer, options.system_prompt, turns[start:end])
            if len(ids) <= options.max_tokens:
                windows = [(ids, labels, text)]
                break
            shorter = _previous_reply_end(turns, start, end)
            if shorter <= start:  # one exchange alone is too long: the prompt before the reply, and the reply
                prompt = Turn("user", "\n\n".join(t.text for t in turns[start:end - 1]))
                windows = split_exchange(tokenizer, options, prompt, turns[end - 1])
                if windows:
                    stats.split_turns += 1
                else:
                    stats.left_out_turns += 1
                    stats.note(conversation.title)
                break
            end = shorter
        for ids, labels, text in windows:
            if any(label != IGNORE_INDEX for label in labels):
                prompt = [{"role": "system", "content": options.system_prompt}, {"role": "user", "content": turns[start].text}]
                samples.append(Sample(conversation.id, ids, labels, text, prompt))
        start = end
    return samples


def build_dataset(tokenizer: ChatTokenizer, conversations: Sequence[SourceConversation], options: DatasetOptions,
                  on_conversation: Callable[[int, int], None] | None = None) -> Dataset:
    """The samples of ``conversations``; ``on_conversation(done, total)`` is called before each one
    (progress, and the place a cancel takes effect)."""
    dataset = Dataset()
    seen: set[str] = set()
    for number, conversation in enumerate(conversations):
        if on_conversation:
            on_conversation(number, len(conversations))
        if not keep(conversation, options):
            dataset.stats.filtered_conversations += 1
            continue
        dataset.stats.conversations += 1
        held_out = is_validation(conversation.id, options.validation_percent)
        for sample in build_samples(tokenizer, conversation, options, dataset.stats):
            digest = hashlib.sha256(repr(sample.input_ids).encode()).hexdigest()
            if digest in seen:
                dataset.stats.duplicates_dropped += 1
                continue
            seen.add(digest)
            (dataset.validation if held_out else dataset.train).append(sample)
            dataset.stats.tokens += len(sample.input_ids)
            dataset.stats.trained_tokens += sample.trained_tokens
    dataset.stats.samples = len(dataset.train) + len(dataset.validation)
    dataset.stats.train_samples = len(dataset.train)
    dataset.stats.validation_samples = len(dataset.validation)
    return dataset
