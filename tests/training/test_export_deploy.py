"""Export a trained adapter to GGUF, deploy it to the embedded engine, and prove it is active."""

import ollama
import pytest

from backend.inference.engine import EmbeddedEngine
from backend.training.adapters import AdapterStore
from backend.training.deploy import DeployError, deploy_adapter
from tests.conftest import install_adapters


@pytest.fixture
def trained_adapter(layout, base_in_layout, styled_adapters):
    """The session's pirate LoRA (trained on SmolLM2, exported with its GGUF), in this test's data dir."""
    install_adapters(layout, styled_adapters, "pirate")
    return AdapterStore(layout).get("pirate")


@pytest.mark.slow
def test_exported_gguf_adapter_changes_the_engines_output(layout, trained_adapter):
    manifest = trained_adapter
    assert set(manifest.files) == {"adapter.gguf", "adapter_config.json", "adapter_model.safetensors"}
    assert manifest.base["reference"] == "smollm2" and len(manifest.base["sha256"]) == 64
    assert manifest.metrics["eval_loss"] < manifest.metrics["base_eval_loss"]
    assert "/" not in manifest.base["gguf"], "no local paths in a manifest that may travel"
    assert [a.name for a in AdapterStore(layout).list()] == ["pirate"]

    engine = EmbeddedEngine(layout).start()
    try:
        client = ollama.Client(host=engine.host)
        deployed = deploy_adapter(client, layout, "pirate", "pirate-voice")
        assert deployed["smoke"]["adapted"] != deployed["smoke"]["base"] and deployed["route"] == "adapter"
        answer = client.chat(model="pirate-voice", messages=[{"role": "user", "content": "What is 21 plus 21?"}],
                             options={"temperature": 0, "seed": 1}).message.content
        assert "Arr" in answer
        assert "pirate-voice:latest" in [m.model for m in client.list().models]

        with pytest.raises(DeployError) as refused:
            deploy_adapter(client, layout, "pirate", "broken", base_model="no-such-base")
        assert "refused" in refused.value.message
        assert "broken:latest" not in [m.model for m in client.list().models], "a failed deploy leaves no model behind"
    finally:
        engine.stop()


@pytest.mark.slow
def test_merged_model_export_answers_in_the_fine_tuned_style(layout, trained_adapter, tmp_path):
    from click.testing import CliRunner
    from llama_cpp import Llama

    from backend.cli import main

    result = CliRunner().invoke(main, ["adapters", "export", "pirate", str(tmp_path / "out"), "--merged"])
    assert result.exit_code == 0, result.output
    merged = tmp_path / "out" / "pirate.gguf"
    assert merged.read_bytes()[:4] == b"GGUF"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["pirate.gguf"], "no scratch folder is left behind"
    again = CliRunner().invoke(main, ["adapters", "export", "pirate", str(tmp_path / "out"), "--merged"])
    assert again.exit_code != 0 and "exists already" in again.output
    llama = Llama(model_path=str(merged), n_ctx=512, verbose=False)
    answer = llama.create_chat_completion(
        messages=[{"role": "system", "content": trained_adapter.provenance["system_prompt"]},
                  {"role": "user", "content": "What is 21 plus 21?"}], temperature=0, max_tokens=24)
    assert "Arr" in answer["choices"][0]["message"]["content"]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["refuse", "ignore"])
def test_an_engine_without_adapters_gets_a_merged_model_instead(layout, trained_adapter, mode):
    """Against the stand-in for current Ollama (``tests/training/ollama_stand_in.py``): it refuses
    ``adapters`` at /api/create, or drops them silently; either way the deploy folds the adapter into
    the base GGUF, uploads that, says so, and the model answers in the adapter's voice."""
    from tests.training.ollama_stand_in import OllamaStandIn

    engine = EmbeddedEngine(layout).start()
    try:
        with OllamaStandIn(engine.host, mode) as ollama_now:
            client = ollama.Client(host=ollama_now.host)
            deployed = deploy_adapter(client, layout, "pirate", "pirate-merged")
            assert deployed["route"] == "merged" and ("refused" if mode == "refuse" else "ignored") in deployed["why_merged"]
            assert deployed["merged"]["merged"] > 0 and deployed["merged"]["bytes"] > 0
            assert [bool(c.get("adapters")) for c in ollama_now.creates][-1] is False, "the last create sends a whole model"
            answer = client.chat(model="pirate-merged", messages=[{"role": "user", "content": "What is 21 plus 21?"}],
                                 options={"temperature": 0, "seed": 1}).message.content
            assert "Arr" in answer
            models = [m.model for m in client.list().models]
            assert "pirate-merged:latest" in models and models.count("pirate-merged:latest") == 1
        assert not list(layout.models_dir.glob(".deploy-*")), "the merged file is not left in the data dir"
    finally:
        engine.stop()
