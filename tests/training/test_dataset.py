"""Dataset building with the real SmolLM2 tokenizer and its own chat template."""

import pytest
from transformers import AutoTokenizer

from backend.training.dataset import IGNORE_INDEX, DatasetOptions, SourceConversation, Turn, build_dataset, is_validation


@pytest.fixture(scope="module")
def tokenizer(shared_base):
    return AutoTokenizer.from_pretrained(shared_base.hf_dir)


def decode_trained(tokenizer, sample):
    return tokenizer.decode([t for t, label in zip(sample.input_ids, sample.labels) if label != IGNORE_INDEX])


def test_loss_covers_only_the_assistant_turns(tokenizer):
    conversation = SourceConversation("a", "t", None, (Turn("user", "Hi there"), Turn("assistant", "Hello!"),
                                                        Turn("user", "Bye"), Turn("assistant", "See you.")))
    dataset = build_dataset(tokenizer, [conversation], DatasetOptions(validation_percent=0))
    (sample,) = dataset.train
    assert decode_trained(tokenizer, sample) == "Hello!<|im_end|>\nSee you.<|im_end|>\n" or \
        decode_trained(tokenizer, sample).replace("\n", "") == "Hello!<|im_end|>See you.<|im_end|>"
    assert "<|im_start|>system\nYou are Orch-Mind" in sample.text
    assert sample.text == tokenizer.apply_chat_template(
        [{"role": "system", "content": DatasetOptions().system_prompt}, {"role": "user", "content": "Hi there"},
         {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Bye"}, {"role": "assistant", "content": "See you."}],
        tokenize=False), "rendered with the model's own chat template"


def test_user_voice_learns_the_users_messages(tokenizer):
    conversation = SourceConversation("a", "t", None, (Turn("user", "first"), Turn("assistant", "reply"), Turn("user", "MY WORDS")))
    (sample,) = build_dataset(tokenizer, [conversation], DatasetOptions(voice="user", validation_percent=0)).train
    trained = decode_trained(tokenizer, sample)
    assert "MY WORDS" in trained and "reply" not in trained and "first" not in trained


def test_long_conversations_are_cut_between_turns_and_counted(tokenizer):
    turns = []
    for i in range(12):
        turns += [Turn("user", f"question {i} " + "word " * 30), Turn("assistant", f"answer {i} " + "word " * 30)]
    dataset = build_dataset(tokenizer, [SourceConversation("long", "t", None, tuple(turns))],
                            DatasetOptions(max_tokens=200, validation_percent=0, max_turns_per_sample=24))
    assert len(dataset.train) > 1 and dataset.stats.split_turns == dataset.stats.left_out_turns == 0
    for sample in dataset.train:
        assert len(sample.input_ids) <= 200 and sample.text.rstrip().endswith("<|im_end|>")


def test_an_exchange_longer_than_the_window_is_split_at_sentences_and_nothing_is_lost(tokenizer):
    sentences = [f"Sentence number {i} talks about the garden." for i in range(120)]
    huge = SourceConversation("huge", "Garden essay", None, (Turn("user", "Write about my garden."), Turn("assistant", " ".join(sentences))))
    split = build_dataset(tokenizer, [huge], DatasetOptions(max_tokens=96, validation_percent=0))
    assert split.stats.split_turns == 1 and split.stats.left_out_turns == 0 and len(split.train) > 5
    trained = " ".join(decode_trained(tokenizer, sample).replace("<|im_end|>", "").strip() for sample in split.train)
    assert trained.split() == " ".join(sentences).split(), "every word trained once, in order, none cut"
    for sample in split.train:
        assert len(sample.input_ids) <= 96
        assert sample.text.rstrip().endswith("<|im_end|>") and "<|im_end|>" in decode_trained(tokenizer, sample)
        assert tokenizer.decode(sample.input_ids) == sample.text, "the sample's text is exactly what is trained"
        assert "Write about my garden." in sample.text
        assert decode_trained(tokenizer, sample).strip().startswith("Sentence number")  # cut at sentence starts


def test_a_long_prompt_is_shortened_from_the_front_and_what_cannot_fit_is_named(tokenizer):
    pasted = " ".join(f"Line {i} of the pasted document." for i in range(200))
    long_prompt = SourceConversation("p", "Pasted doc", None, (Turn("user", pasted), Turn("assistant", "A short summary.")))
    dataset = build_dataset(tokenizer, [long_prompt], DatasetOptions(max_tokens=128, validation_percent=0))
    (sample,) = dataset.train
    assert len(sample.input_ids) <= 128 and "Line 199 of the pasted document." in sample.text and "Line 0 " not in sample.text
    assert decode_trained(tokenizer, sample).startswith("A short summary.")
    hopeless = DatasetOptions(max_tokens=32, validation_percent=0, system_prompt="A system prompt that is long. " * 10)
    none = build_dataset(tokenizer, [SourceConversation("x", "Too long", None, (Turn("user", "q"), Turn("assistant", "an answer")))], hopeless)
    assert not none.train and none.stats.left_out_turns == 1 and none.stats.left_out == ["Too long"]


def test_split_is_by_conversation_deterministic_and_deduplicated(tokenizer):
    conversations = [SourceConversation(f"c{i}", "t", None, (Turn("user", f"q{i}"), Turn("assistant", f"a{i}"))) for i in range(200)]
    conversations.append(SourceConversation("dup", "t", None, (Turn("user", "q1"), Turn("assistant", "a1"))))
    dataset = build_dataset(tokenizer, conversations, DatasetOptions(validation_percent=20))
    train_ids = {s.conversation_id for s in dataset.train}
    validation_ids = {s.conversation_id for s in dataset.validation}
    assert not train_ids & validation_ids and 20 <= len(validation_ids) <= 60
    assert all(is_validation(cid, 20) for cid in validation_ids)
    assert dataset.stats.duplicates_dropped == 1


def test_filters_by_title_and_length(tokenizer):
    conversations = [SourceConversation("a", "Garden plans", None, (Turn("user", "q"), Turn("assistant", "a" * 50))),
                     SourceConversation("b", "Taxes", None, (Turn("user", "q"), Turn("assistant", "a" * 50)))]
    dataset = build_dataset(tokenizer, conversations, DatasetOptions(title_contains="garden", validation_percent=0))
    assert [s.conversation_id for s in dataset.train] == ["a"] and dataset.stats.filtered_conversations == 1
