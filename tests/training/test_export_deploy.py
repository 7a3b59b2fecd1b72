"""Export a trained adapter to GGUF, deploy it to the embedded engine, and prove it is active."""

import ollama
import pytest

from backend.inference.engine import EmbeddedEngine
from backend.jobs import JobRegistry
from backend.training.adapters import AdapterStore
from backend.training.config import TrainConfig
from backend.training.deploy import DeployError, deploy_adapter
from backend.training.export import export_run
from backend.training.runs import prepare_run, run_training
from tests.training.conftest import pirate_conversations


@pytest.fixture
def trained_adapter(layout, base_in_layout):
    job_dir = prepare_run(layout, TrainConfig(epochs=1, batch_size=8, rank=8, alpha=16, learning_rate=1e-3, eval_every=100,
                                              checkpoint_every=100, sample_prompts=0), pirate_conversations(120))
    registry = JobRegistry()
    record = registry.wait(registry.start("train", "t", lambda ctx: run_training(ctx, job_dir)), timeout=600)
    assert record.state == "succeeded", record.error
    return export_run(layout, job_dir, "pirate-math", "Answers sums like a pirate")


@pytest.mark.slow
def test_exported_gguf_adapter_changes_the_engines_output(layout, trained_adapter):
    manifest = trained_adapter
    assert set(manifest.files) == {"adapter.gguf", "adapter_config.json", "adapter_model.safetensors"}
    assert manifest.base["reference"] == "smollm2" and len(manifest.base["sha256"]) == 64
    assert manifest.metrics["eval_loss"] < manifest.metrics["base_eval_loss"]
    assert "/" not in manifest.base["gguf"], "no local paths in a manifest that may travel"
    assert [a.name for a in AdapterStore(layout).list()] == ["pirate-math"]

    engine = EmbeddedEngine(layout).start()
    try:
        client = ollama.Client(host=engine.host)
        deployed = deploy_adapter(client, layout, "pirate-math", "pirate")
        assert deployed["smoke"]["adapted"] != deployed["smoke"]["base"]
        answer = client.chat(model="pirate", messages=[{"role": "user", "content": "What is 21 plus 21?"}],
                             options={"temperature": 0, "seed": 1}).message.content
        assert "Arr" in answer
        assert "pirate:latest" in [m.model for m in client.list().models]

        with pytest.raises(DeployError) as refused:
            deploy_adapter(client, layout, "pirate-math", "broken", base_model="no-such-base")
        assert "refused" in refused.value.message
        assert "broken:latest" not in [m.model for m in client.list().models], "a failed deploy leaves no model behind"
    finally:
        engine.stop()


@pytest.mark.slow
def test_merged_model_export_answers_in_the_fine_tuned_style(layout, trained_adapter, tmp_path):
    from llama_cpp import Llama

    from backend.training.export import merge_to_gguf

    merged = merge_to_gguf(layout, "pirate-math", tmp_path / "merged.gguf")
    assert merged.read_bytes()[:4] == b"GGUF"
    llama = Llama(model_path=str(merged), n_ctx=512, verbose=False)
    answer = llama.create_chat_completion(
        messages=[{"role": "system", "content": trained_adapter.provenance["system_prompt"]},
                  {"role": "user", "content": "What is 21 plus 21?"}], temperature=0, max_tokens=24)
    assert "Arr" in answer["choices"][0]["message"]["content"]
