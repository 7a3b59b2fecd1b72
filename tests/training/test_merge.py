"""Merging real adapters trained on SmolLM2: the merged update is the weighted sum of the updates."""

import pytest
import torch

from backend.training.adapters import AdapterStore
from backend.training.merge import MergeError, merge_adapters
from tests.conftest import install_adapters


def delta(model, adapter, module="base_model.model.model.layers.0.self_attn.q_proj"):
    layer = dict(model.named_modules())[module]
    return layer.get_delta_weight(adapter).detach()


@pytest.mark.slow
def test_cat_merge_is_the_weighted_sum_of_updates_and_records_provenance(layout, base_in_layout, styled_adapters):
    from peft import PeftModel

    from backend.training.base_models import load_model_and_tokenizer

    install_adapters(layout, styled_adapters, "pirate", "surfer")
    validation = [{"input_ids": [1, 2, 3, 4], "labels": [-100, 2, 3, 4]}]
    merged = merge_adapters(layout, ["pirate", "surfer"], "crew", method="cat", weights=[0.7, 0.3], validation=validation)
    assert merged.provenance["method"] == "cat" and merged.provenance["weights"] == [0.7, 0.3]
    assert [s["name"] for s in merged.provenance["sources"]] == ["pirate", "surfer"]
    assert set(merged.metrics["inputs_eval_loss"]) == {"pirate", "surfer"} and merged.metrics["eval_loss"] > 0
    assert merged.files["adapter.gguf"]["size"] > 0 and merged.rank == 8

    store = AdapterStore(layout)
    model, _ = load_model_and_tokenizer(base_in_layout)
    peft_model = PeftModel.from_pretrained(model, store.path("pirate"), adapter_name="pirate")
    peft_model.load_adapter(store.path("surfer"), adapter_name="surfer")
    peft_model.load_adapter(store.path("crew"), adapter_name="crew")
    expected = 0.7 * delta(peft_model, "pirate") + 0.3 * delta(peft_model, "surfer")
    assert torch.allclose(delta(peft_model, "crew"), expected, atol=1e-6)

    ties = merge_adapters(layout, ["pirate", "surfer"], "crew-ties", method="ties", density=0.5)
    assert ties.provenance["method"] == "ties" and ties.provenance["density"] == 0.5


def test_refuses_adapters_of_different_bases_and_bad_arguments(layout, base_in_layout):
    import json
    import shutil

    store = AdapterStore(layout)
    for name, sha in (("a", "1" * 64), ("b", "2" * 64)):
        folder = store.path(name)
        folder.mkdir(parents=True)
        (folder / "manifest.json").write_text(json.dumps({
            "name": name, "base": {"reference": "smollm2", "sha256": sha, "gguf": "x.gguf"}, "rank": 4, "alpha": 8,
            "target_modules": ["q_proj"], "files": {}}))
    with pytest.raises(MergeError) as different:
        merge_adapters(layout, ["a", "b"], "c", method="ties")
    assert different.value.code == "incompatible" and "different base" in different.value.message
    with pytest.raises(MergeError):
        merge_adapters(layout, ["a"], "c")
    with pytest.raises(MergeError):
        merge_adapters(layout, ["a", "b"], "c", method="average")
    shutil.rmtree(store.root)
