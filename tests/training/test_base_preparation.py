"""GGUF -> training folder, streamed: memory bounded by one tensor, resumable, exact, refused early."""

import json

import numpy as np
import pytest

from backend.errors import CancelledError
from backend.training import base_preparation
from backend.training.base_models import resolve_base
from backend.training.base_preparation import PreparationError, is_prepared, preparation_cost, prepare_base
from backend.training.trainability import NotTrainableError


@pytest.mark.slow
def test_preparation_peak_memory_and_disk_stay_within_the_bound_and_the_estimate(prepared_1b):
    gguf, target, peak = prepared_1b  # prepared in a child process, as resolve_base prepares a GGUF
    cost = preparation_cost(gguf)
    bf16_bytes = cost.parameters * 2
    assert peak <= 0.25 * bf16_bytes + 1024**3, f"peak {peak / 1e9:.2f} GB for a {bf16_bytes / 1e9:.2f} GB bf16 base"
    assert 0.75 * cost.peak_ram_bytes <= peak <= 1.25 * cost.peak_ram_bytes, (peak, cost.peak_ram_bytes)
    on_disk = sum(f.stat().st_size for f in target.iterdir())
    assert on_disk <= 2 * cost.parameters + 16 * 1024**2 and abs(on_disk - cost.disk_bytes) < 16 * 1024**2
    assert is_prepared(target) and not target.with_name("prepared.partial").exists()


@pytest.mark.slow
def test_a_stopped_preparation_goes_on_from_its_last_finished_shard(tmp_path, monkeypatch):
    from backend.inference.default_models import default_chat_gguf

    monkeypatch.setattr(base_preparation, "SHARD_BYTES", 32 * 1024**2)
    gguf = default_chat_gguf()
    target = tmp_path / "prepared"
    seen: list[tuple[int, int]] = []
    with pytest.raises(CancelledError):
        prepare_base(gguf, target, on_progress=lambda done, total: seen.append((done, total)), should_stop=lambda: len(seen) > 120)
    progress = json.loads((target.with_name("prepared.partial") / "progress.json").read_text())
    finished = len(progress["shards"])
    assert finished >= 1 and not target.exists()
    again: list[tuple[int, int]] = []
    prepare_base(gguf, target, on_progress=lambda done, total: again.append((done, total)))
    assert again[0][0] > 0, "the second run starts after the shards the first one finished"
    assert again[-1][0] == again[-1][1] == seen[0][1] and is_prepared(target)
    index = json.loads((target / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > finished


@pytest.mark.slow
def test_a_prepared_base_is_the_model_transformers_reads_from_the_gguf(gemma_base):
    """The same weights (to bf16's precision) and the same logits as transformers' own GGUF loader,
    for a second architecture (Gemma 3, real weights in Q4_K_M: its norms are stored offset by one);
    llama (and its q/k permutation) is covered by SmolLM2 in every run."""
    import torch
    from transformers import AutoModelForCausalLM

    gguf = gemma_base.gguf_path  # the session's Gemma, prepared by resolve_base
    ours = AutoModelForCausalLM.from_pretrained(gemma_base.hf_dir, dtype=torch.float32)
    reference = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    theirs = reference.state_dict()
    for name, value in ours.state_dict().items():
        scale = theirs[name].abs().max().clamp_min(1e-12)
        assert ((value - theirs[name]).abs().max() / scale) < 2 ** -7, name
    ids = torch.tensor([[1, 450, 7042, 310, 3444, 338]])
    with torch.no_grad():
        mine, expected = ours(ids).logits[0], reference(ids).logits[0]
    assert (mine - expected).abs().max() < 0.03 * expected.abs().max()
    assert torch.equal(mine.argmax(-1), expected.argmax(-1))


def test_smollm2_prepared_matches_its_gguf_and_answers(shared_base):
    """The packaged model through the streamed preparation: bf16 shards, tied embeddings, the same
    greedy answer as transformers' fp32 load of the GGUF gave before (\"Paris\")."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    index = json.loads((shared_base.hf_dir / "model.safetensors.index.json").read_text())
    assert "lm_head.weight" not in index["weight_map"]  # tied to the embeddings, as in the GGUF
    model = AutoModelForCausalLM.from_pretrained(shared_base.hf_dir, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(shared_base.hf_dir)
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                        add_generation_prompt=True, return_tensors="pt", return_dict=True)["input_ids"]
    reply = tokenizer.decode(model.generate(ids, max_new_tokens=12, do_sample=False)[0, ids.shape[1]:])
    assert "Paris" in reply


def _retyped_copy(source, target, tensor_name, dtype):
    """A copy of the GGUF at ``source`` with one tensor stored as ``dtype`` (e.g. F64, a type nothing
    here can convert); every metadata field is copied as it is."""
    from gguf import GGUFReader, GGUFValueType, GGUFWriter

    reader = GGUFReader(source)
    arch = reader.fields["general.architecture"].contents()
    writer = GGUFWriter(str(target), arch)
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        kind = field.types[0]
        sub = field.types[-1] if kind == GGUFValueType.ARRAY else None
        writer.add_key_value(name, field.contents(), kind, sub_type=sub)
    for tensor in reader.tensors:
        if tensor.name == tensor_name:
            writer.add_tensor(tensor.name, np.asarray(tensor.data, dtype=np.float32).astype(dtype))
        else:
            writer.add_tensor(tensor.name, np.asarray(tensor.data), raw_dtype=tensor.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return target


def test_a_gguf_with_a_type_nothing_can_convert_is_refused_before_any_work(shared_base, layout, tmp_path):
    gguf = _retyped_copy(shared_base.gguf_path, tmp_path / "odd.gguf", "blk.0.attn_norm.weight", np.float64)
    with pytest.raises(NotTrainableError) as info:
        resolve_base(str(gguf), layout)
    assert isinstance(info.value, PreparationError) and "F64" in info.value.message and "Q8_0" in info.value.message
    assert not any(layout.models_dir.glob("hf/*")), "nothing was written"
