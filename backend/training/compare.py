"""Up to three adapters (and their base) answering the same prompts, side by side.

One base model is loaded once and every adapter is attached to it by name, so a comparison costs one
load plus the replies. Adapters trained on different bases cannot be compared this way (their
replies would differ for reasons other than the training), so that is refused with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from backend.config import DataLayout
from backend.errors import ValidationError
from backend.training.adapters import AdapterStore, validate_adapter_name
from backend.training.base_models import load_model_and_tokenizer, resolve_base

MAX_ADAPTERS = 3
MAX_PROMPTS = 5
REPLY_TOKENS = 96


@dataclass(frozen=True)
class Comparison:
    adapters: list[str]
    rows: list[dict[str, Any]]  # {"prompt", "base", "replies": {adapter: text}}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_request(names: list[str], prompts: list[str]) -> tuple[list[str], list[str]]:
    names = [validate_adapter_name(n) for n in dict.fromkeys(names)]
    prompts = [p.strip() for p in prompts if p.strip()]
    if not 1 <= len(names) <= MAX_ADAPTERS:
        raise ValidationError(f"Pick one to {MAX_ADAPTERS} adapters to compare.")
    if not 1 <= len(prompts) <= MAX_PROMPTS or any(len(p) > 2000 for p in prompts):
        raise ValidationError(f"Give one to {MAX_PROMPTS} prompts of at most 2,000 characters.")
    return names, prompts


def compare_adapters(layout: DataLayout, names: list[str], prompts: list[str], system_prompt: str,
                     progress: Callable[[str, int, int], None] = lambda *_: None) -> Comparison:
    from peft import PeftModel

    from backend.training.trainer import sample_replies

    names, prompts = check_request(names, prompts)
    store = AdapterStore(layout)
    manifests = [store.get(n) for n in names]
    if len({m.base.get("sha256") for m in manifests}) > 1:
        raise ValidationError("These adapters were trained on different base models; compare adapters of the same base.")
    base = resolve_base(manifests[0].base["reference"], layout, allow_paths=False)
    if base.sha256 != manifests[0].base.get("sha256"):
        raise ValidationError(f"The base model {manifests[0].base['reference']!r} here is not the one these adapters were "
                              "trained on (its hash differs).")
    progress("loading the base model", 0, 0)
    model, tokenizer = load_model_and_tokenizer(base)
    model = PeftModel.from_pretrained(model, str(store.path(names[0])), adapter_name=names[0])
    for name in names[1:]:
        model.load_adapter(str(store.path(name)), adapter_name=name)
    device = next(model.parameters()).device

    def reply(prompt: str) -> str:
        messages = [{"role": "system", "content": system_prompt}, {"role": "user", "content": prompt}]
        return sample_replies(model, tokenizer, [messages], device, REPLY_TOKENS)[0]

    total, done = len(prompts) * (len(names) + 1), 0
    rows = []
    for prompt in prompts:
        with model.disable_adapter():
            row: dict[str, Any] = {"prompt": prompt, "base": reply(prompt), "replies": {}}
        done += 1
        progress("answering", done, total)
        for name in names:
            model.set_adapter(name)
            row["replies"][name] = reply(prompt)
            done += 1
            progress("answering", done, total)
        rows.append(row)
    return Comparison(adapters=names, rows=rows)
