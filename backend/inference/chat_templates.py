"""One chat template per model, used by the engine to answer and by training to build its data.

A model's template is the one in its GGUF (``tokenizer.chat_template``). A base model has none;
then its family's instruction format is used (Gemma's turn markers for gemma*, ChatML otherwise),
so a base model answers in the format it will be fine-tuned on, and an adapter trained here meets
at inference exactly the tokens it was trained on. Without this, llama-cpp-python falls back to
Llama 2's format, and the Gemma 3 base answered with an empty string.
"""

from __future__ import annotations

from dataclasses import dataclass

# Gemma's turn format (user / model turns, a system prompt folded into the first user turn).
GEMMA_TEMPLATE = (
    "{{ bos_token }}"
    "{%- set system = messages[0]['content'] + '\n\n' if messages and messages[0]['role'] == 'system' else '' -%}"
    "{%- set turns = messages[1:] if system else messages -%}"
    "{%- for message in turns -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else 'user' -%}"
    "{{ '<start_of_turn>' + role + '\n' + (system if loop.first and role == 'user' else '') + message['content'] | trim + '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)

# ChatML, as used by many instruction-tuned models (Qwen, SmolLM, …).
CHATML_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\n' }}{%- endif -%}"
)


@dataclass(frozen=True)
class ChatTemplate:
    source: str  # "gguf", or the family whose format stands in for a missing template
    template: str
    stop: tuple[str, ...] = ()


def template_for(architecture: str, gguf_template: str | None) -> ChatTemplate:
    if gguf_template:
        return ChatTemplate("gguf", gguf_template)
    if architecture.startswith("gemma"):
        return ChatTemplate("gemma", GEMMA_TEMPLATE, ("<end_of_turn>",))
    return ChatTemplate("chatml", CHATML_TEMPLATE, ("<|im_end|>",))


def formatter(llama: object, template: ChatTemplate) -> object:
    """llama-cpp-python's Jinja formatter for ``template`` with this model's BOS/EOS tokens."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    model = llama._model  # type: ignore[attr-defined]
    eos_id = llama.token_eos()  # type: ignore[attr-defined]
    bos_id = llama.token_bos()  # type: ignore[attr-defined]
    text = lambda token: model.token_get_text(token) if token >= 0 else ""  # noqa: E731
    return Jinja2ChatFormatter(template=template.template, eos_token=text(eos_id), bos_token=text(bos_id),
                               stop_token_ids=[eos_id])


def prompt_tokens(llama: object, template: ChatTemplate, messages: list[dict[str, str]]) -> list[int]:
    """The tokens the engine feeds the model for ``messages`` (as its chat handler does)."""
    rendered = formatter(llama, template)(messages=messages)  # type: ignore[operator]
    return llama.tokenize(rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True)  # type: ignore[attr-defined]


def chat_handler(llama: object, template: ChatTemplate) -> object:
    """A llama-cpp-python chat handler that renders with ``template`` and stops at its end marker."""
    handler = formatter(llama, template).to_chat_handler()  # type: ignore[attr-defined]

    def with_stops(*args: object, **kwargs: object) -> object:
        stops = kwargs.get("stop") or []
        kwargs["stop"] = [*([stops] if isinstance(stops, str) else stops), *template.stop]
        return handler(*args, **kwargs)

    return with_stops
