"""One chat template everywhere: the tokens a training sample holds are the tokens the engine feeds
the model for the same conversation, for both packaged architectures (SmolLM2's own template;
Gemma's family format standing in for the base model's missing one)."""

from __future__ import annotations

import pytest

from backend.inference.chat_templates import prompt_tokens, template_for
from backend.training.dataset import Turn, encode_turns

pytestmark = pytest.mark.slow  # loads Gemma's dequantised base

SYSTEM = "You are Orch-Mind, a helpful assistant."
TURNS = [Turn("user", "My dog is called Biscuit. What is a good walk length?"),
         Turn("assistant", "For most dogs, 30 to 60 minutes a day.\n\nBiscuit will love it!"),
         Turn("user", "Olá! E para um filhote? 🐶")]


@pytest.fixture(params=["smollm2", "gemma"])
def base(request):
    return request.getfixturevalue("shared_base" if request.param == "smollm2" else "gemma_base")


def test_training_and_the_engine_render_the_same_tokens(base):
    from llama_cpp import Llama
    from transformers import AutoTokenizer

    llama = Llama(model_path=str(base.gguf_path), vocab_only=True, verbose=False)
    template = template_for(llama.metadata.get("general.architecture", ""), llama.metadata.get("tokenizer.chat_template"))
    tokenizer = AutoTokenizer.from_pretrained(base.hf_dir)
    messages = [{"role": "system", "content": SYSTEM}] + [{"role": t.role, "content": t.text} for t in TURNS]

    engine_prompt = prompt_tokens(llama, template, messages)
    trainer_prompt = tokenizer(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False),
                               add_special_tokens=False)["input_ids"]
    assert trainer_prompt == engine_prompt

    ids, labels, _text = encode_turns(tokenizer, SYSTEM, TURNS[:2])  # a training sample: prompt + reply
    engine_full = llama.tokenize(tokenizer.apply_chat_template(messages[:3], tokenize=False).encode(), add_bos=False, special=True)
    assert ids == engine_full
    trained = tokenizer.decode([t for t, label in zip(ids, labels) if label != -100])
    assert trained.startswith("For most dogs") and "Biscuit will love it!" in trained, trained
