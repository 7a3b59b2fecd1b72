"""`orch-mind train` and `orch-mind adapters …` as a user runs them from the README, in subprocesses."""

import json

import pytest

from tests.cli_runner import run_cli
from tests.export_factory import simple_conversation, write_chatgpt_export


@pytest.mark.slow
def test_train_then_list_show_export_and_delete_the_adapter(tmp_path, base_in_layout, layout):
    export = write_chatgpt_export(tmp_path / "export.zip", [
        simple_conversation(f"Sum {i}", f"What is {i} plus {i}?", f"Arr matey, {i} plus {i} be {2 * i}!", f"c{i}")
        for i in range(40)])
    assert run_cli("import", str(export)).returncode == 0

    trained = run_cli("train", "--epochs", "1", "--rank", "4", "--alpha", "8", "--batch-size", "8", "--lr", "1e-3",
                  "--name", "cli-pirate")
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "validation loss (base model)" in trained.stdout and "fine-tuned" in trained.stdout
    assert "Saved adapter cli-pirate" in trained.stdout
    folder = layout.adapters_dir / "cli-pirate"
    assert (folder / "adapter_model.safetensors").is_file() and any(folder.glob("*.gguf"))

    assert "cli-pirate" in run_cli("adapters", "list").stdout
    shown = json.loads(run_cli("adapters", "show", "cli-pirate").stdout)
    assert shown["rank"] == 4 and shown["base"]["reference"] == "smollm2"
    assert shown["metrics"]["eval_loss"] < shown["metrics"]["base_eval_loss"]

    assert run_cli("adapters", "export", "cli-pirate", str(tmp_path / "out")).returncode == 0
    assert (tmp_path / "out" / "cli-pirate" / "adapter_model.safetensors").is_file()

    assert run_cli("adapters", "delete", "cli-pirate").returncode == 0
    missing = run_cli("adapters", "show", "cli-pirate")
    assert missing.returncode != 0 and "No adapter called 'cli-pirate'" in missing.stdout + missing.stderr
    assert not folder.exists()


def test_resuming_an_unknown_run_says_so():
    resumed = run_cli("train", "--resume", "train-doesnotexist")
    assert resumed.returncode != 0 and "No training run" in resumed.stdout + resumed.stderr


@pytest.mark.slow
def test_preview_prints_exactly_what_would_be_trained(tmp_path, base_in_layout, layout):
    essay = " ".join(f"Point {i}: keep the soil of the garden moist in summer." for i in range(80))
    export = write_chatgpt_export(tmp_path / "export.zip", [
        simple_conversation("Garden essay", "Write an essay about my garden.", essay, "essay"),
        simple_conversation("Short", "Hi?", "Hello!", "short"),
    ])
    assert run_cli("import", str(export)).returncode == 0
    previewed = run_cli("train", "--preview", "--json", "--max-tokens", "128")
    assert previewed.returncode == 0, previewed.stderr[-2000:]
    preview = json.loads(previewed.stdout)
    assert preview["stats"]["split_turns"] == 1 and preview["stats"]["left_out_turns"] == 0
    assert preview["plan"]["steps"] >= 1 and preview["samples"]
    for sample in preview["samples"]:
        assert sample["tokens"] <= 128 and sample["text"].rstrip().endswith("<|im_end|>")
    assert not list(layout.jobs_dir.glob("train-*")), "a preview trains nothing"
    readable = run_cli("train", "--preview", "--max-tokens", "128")
    assert "over-long exchanges split at sentences" in readable.stdout and "sample 1:" in readable.stdout
