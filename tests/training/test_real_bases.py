"""A base of the size people run (a synthetic 1.2B llama GGUF, q8_0, SmolLM2's tokenizer) through the
whole loop on the CPU: prepared by streaming, a few training steps, the adapter exported as GGUF and
as a merged model in the base's own quantization, and deployed both ways. Random weights: this
checks memory, files and code paths at a real size, not what the model says."""

import json

import ollama
import pytest

from backend.inference.engine import EmbeddedEngine
from backend.jobs import JobRegistry
from backend.training.config import TrainConfig
from backend.training.deploy import deploy_adapter
from backend.training.export import export_run, merge_to_gguf
from backend.training.run_folder import RunFolder
from backend.training.runs import prepare_run, run_training
from tests.training.conftest import pirate_conversations


@pytest.mark.slow
def test_a_1b_base_trains_exports_and_deploys_both_ways(layout, prepared_1b, tmp_path):
    from gguf import GGUFReader

    from backend.training.base_models import file_sha256

    gguf, prepared, _ = prepared_1b
    cache = layout.hf_base_dir(file_sha256(gguf))  # the session's preparation, linked where resolve_base looks
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.symlink_to(prepared, target_is_directory=True)
    config = TrainConfig(base=str(gguf), max_steps=2, batch_size=2, max_tokens=64, rank=4, alpha=8, sample_prompts=0,
                         validation_percent=20, checkpoint_every=100)
    job_dir = prepare_run(layout, config, pirate_conversations(10))
    plan = RunFolder(job_dir).plan()
    assert plan["path"] == "cpu-fp32" and plan["fits_ram"] and plan["quantization"] == "none"
    registry = JobRegistry()
    record = registry.wait(registry.start("train", "1.2b", lambda ctx: run_training(ctx, job_dir)), timeout=1800)
    assert record.state == "succeeded", record.error
    measured = record.result["evaluation"]["measured"]
    assert 0.75 <= plan["ram_bytes"] / measured["peak_rss_bytes"] <= 1.25, (plan["ram_bytes"], measured)

    manifest = export_run(layout, job_dir, "big-voice")
    assert manifest.base["sha256"] and (layout.adapters_dir / "big-voice" / "adapter.gguf").stat().st_size > 0
    merged = tmp_path / "merged.gguf"
    report = merge_to_gguf(layout, "big-voice", merged)
    base_types = {t.name: t.tensor_type for t in GGUFReader(gguf).tensors}
    merged_types = {t.name: t.tensor_type for t in GGUFReader(merged).tensors}
    assert report.merged == 4 * 16 and merged_types.keys() == base_types.keys()
    assert sum(merged_types[n] != base_types[n] for n in base_types) == sum(report.raised.values())
    assert merged.stat().st_size <= gguf.stat().st_size * 1.6, "no full-precision copy: the base's own types, a few raised"
    merged.unlink()

    engine = EmbeddedEngine(layout).start()
    try:
        from tests.training.ollama_stand_in import OllamaStandIn

        client = ollama.Client(host=engine.host)
        client.create(model="big-base", files={"model.gguf": client.create_blob(gguf)}, stream=False)
        adapter_route = deploy_adapter(client, layout, "big-voice", "big-adapter", base_model="big-base")
        with OllamaStandIn(engine.host, "refuse") as current_ollama:
            merged_route = deploy_adapter(ollama.Client(host=current_ollama.host), layout, "big-voice", "big-merged",
                                          base_model="big-base")
        assert (adapter_route["route"], merged_route["route"]) == ("adapter", "merged")
        listed = [m.model for m in client.list().models]
        assert "big-adapter:latest" in listed and "big-merged:latest" in listed
    finally:
        engine.stop()
    assert json.loads((job_dir / "config.json").read_text())["quantization"] == "none"
