"""Hostile inputs a peer could send: each is rejected and nothing reaches the adapter store."""

import hashlib
import json
import struct
import uuid

import numpy as np
import pytest
from safetensors.numpy import save_file

from backend.p2p.verify import VerificationError, accept_adapter, first_non_finite, parse_manifest, read_safetensors_header
from backend.training.adapters import AdapterStore

MODULE = "model.layers.0.self_attn.q_proj"  # SmolLM2-135M: 576 -> 576
RANK = 4


def good_tensors():
    rng = np.random.default_rng(0)
    return {f"base_model.model.{MODULE}.lora_A.weight": rng.standard_normal((RANK, 576)).astype(np.float32),
            f"base_model.model.{MODULE}.lora_B.weight": rng.standard_normal((576, RANK)).astype(np.float32)}


def stage(layout, base, tensors=None, *, mutate=None, extra_files=None, manifest_changes=None):
    staging = layout.staging_dir / uuid.uuid4().hex[:8]
    staging.mkdir()
    save_file(tensors or good_tensors(), str(staging / "adapter_model.safetensors"))
    (staging / "adapter_config.json").write_text(json.dumps({"r": RANK, "lora_alpha": 8, "target_modules": ["q_proj"]}))
    files = {p.name: {"sha256": hashlib.sha256(p.read_bytes()).hexdigest(), "size": p.stat().st_size} for p in staging.iterdir()}
    manifest = {"name": "from-peer", "base": {"reference": "smollm2", "sha256": base.sha256, "gguf": "x.gguf"}, "rank": RANK,
                "alpha": 8, "target_modules": ["q_proj"], "files": files, **(manifest_changes or {})}
    if mutate:
        mutate(staging)
    for name, data in (extra_files or {}).items():
        (staging / name).write_bytes(data)
    return staging, parse_manifest(json.dumps(manifest).encode())


def test_a_sane_adapter_is_accepted(layout, base_in_layout):
    staging, manifest = stage(layout, base_in_layout)
    target = accept_adapter(layout, staging, manifest, base_in_layout.hf_dir, base_in_layout.sha256)
    assert target == AdapterStore(layout).path("from-peer") and (target / "manifest.json").exists()
    assert not staging.exists()


def test_hashes_the_sidecar_computed_while_writing_are_checked_against_the_manifest(layout, base_in_layout):
    """The sidecar hashes each file as it writes it; those hashes stand in for reading the files
    again, and must match the signed manifest as a re-read would."""
    staging, manifest = stage(layout, base_in_layout)
    wrong = {"adapter_model.safetensors": "0" * 64}
    with pytest.raises(VerificationError, match="does not match its hash"):
        accept_adapter(layout, staging, manifest, base_in_layout.hf_dir, base_in_layout.sha256, wrong)
    staging, manifest = stage(layout, base_in_layout)
    written = {name: record["sha256"] for name, record in manifest.files.items()}
    assert accept_adapter(layout, staging, manifest, base_in_layout.hf_dir, base_in_layout.sha256, written).exists()


def flip_last_byte(staging):
    path = staging / "adapter_model.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("case, kwargs, fragment", [
    ("wrong hash", {"mutate": flip_last_byte}, "does not match its hash"),
    ("pickle file", {"extra_files": {"adapter_model.bin": b"\x80\x04pickle"}}, "do not match the manifest"),
    ("unsolicited file", {"extra_files": {"notes.txt": b"hello"}}, "do not match the manifest"),
    ("NaN tensor", {"tensors": {**good_tensors(), f"base_model.model.{MODULE}.lora_A.weight": np.full((RANK, 576), np.nan, np.float32)}}, "NaN"),
    ("one infinity", {"tensors": {**good_tensors(), f"base_model.model.{MODULE}.lora_B.weight":
                                  np.where(np.arange(576 * RANK).reshape(576, RANK) == 1234, np.inf, 0.5).astype(np.float32)}}, "NaN or infinite"),
    ("NaN in half precision", {"tensors": {name: np.where(np.indices(t.shape).sum(0) == 7, np.nan, t).astype(np.float16)
                                           for name, t in good_tensors().items()}}, "NaN or infinite"),
    ("wrong shape", {"tensors": {f"base_model.model.{MODULE}.lora_A.weight": np.zeros((RANK, 100), np.float32)}}, "expected [4, 576]"),
    ("unknown layer", {"tensors": {"base_model.model.model.layers.99.evil.lora_A.weight": np.zeros((RANK, 576), np.float32)}}, "does not belong"),
    ("other base", {"manifest_changes": {"base": {"reference": "smollm2", "sha256": "0" * 64, "gguf": "x"}}}, "different base"),
])
def test_hostile_adapters_are_rejected_and_nothing_is_written(layout, base_in_layout, case, kwargs, fragment):
    staging, manifest = stage(layout, base_in_layout, **kwargs)
    with pytest.raises(VerificationError) as info:
        accept_adapter(layout, staging, manifest, base_in_layout.hf_dir, base_in_layout.sha256)
    assert fragment in info.value.message, case
    assert not staging.exists(), "the staging area is cleared"
    assert AdapterStore(layout).list() == [] and not AdapterStore(layout).path("from-peer").exists()


@pytest.mark.parametrize("manifest, fragment", [
    ({"name": "../../evil", "base": {}, "rank": 4, "alpha": 8, "target_modules": [], "files": {}}, "Invalid adapter name"),
    ({"name": "x", "base": {"sha256": "0" * 64}, "rank": 4, "alpha": 8, "target_modules": [],
      "files": {"../../.bashrc": {"sha256": "0" * 64, "size": 1}}}, "allow-list"),
    ({"name": "x", "base": {"sha256": "0" * 64}, "rank": 4, "alpha": 8, "target_modules": [],
      "files": {"adapter_model.safetensors": {"sha256": "0" * 64, "size": 10**12}}}, "size limit"),
    ({"name": "x", "base": {"sha256": "0" * 64}, "rank": 4, "alpha": 8, "target_modules": [], "files": {}, "exec": "rm"}, "unknown fields"),
])
def test_hostile_manifests_are_rejected(manifest, fragment):
    with pytest.raises(Exception) as info:
        parse_manifest(json.dumps(manifest).encode())
    assert fragment in str(getattr(info.value, "message", info.value))


def test_safetensors_headers_pointing_outside_the_file_are_rejected(tmp_path):
    header = json.dumps({"t": {"dtype": "F32", "shape": [1000, 1000], "data_offsets": [0, 4_000_000]}}).encode()
    path = tmp_path / "evil.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\x00" * 16)
    with pytest.raises(VerificationError) as info:
        read_safetensors_header(path)
    assert "outside the file" in info.value.message
    huge = tmp_path / "huge.safetensors"
    huge.write_bytes(struct.pack("<Q", 2**40) + b"{}")
    with pytest.raises(VerificationError):
        read_safetensors_header(huge)


@pytest.mark.parametrize("dtype, words, bad", [
    ("BF16", [0x3F80, 0x4000, 0xBF80, 0x0000], False),  # 1, 2, -1, 0
    ("BF16", [0x3F80, 0x7FC0, 0x0000, 0x0000], True),  # a NaN
    ("BF16", [0xFF80, 0x3F80, 0x0000, 0x0000], True),  # minus infinity
    ("F16", [0x3C00, 0x7C00, 0x0000, 0x0000], True),  # an infinity
    ("F16", [0x3C00, 0x7BFF, 0xFBFF, 0x0001], False),  # the largest finite values and a subnormal
])
def test_non_finite_values_are_found_in_every_float_type_without_loading_the_weights(tmp_path, dtype, words, bad):
    path = tmp_path / "t.safetensors"
    header = json.dumps({"t": {"dtype": dtype, "shape": [4], "data_offsets": [0, 8]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + struct.pack("<4H", *words))
    assert first_non_finite(path, read_safetensors_header(path)) == ("t" if bad else None)


@pytest.mark.parametrize(("given", "kept"), [
    ({"reference": "../../../../etc/passwd", "gguf": "/home/x/.ollama/blobs/sha256-abc"}, ("", "")),
    ({"reference": "llama3.1:8b", "gguf": "Llama-3.1-8B-Q4_K_M.gguf"}, ("llama3.1:8b", "Llama-3.1-8B-Q4_K_M.gguf")),
    ({"reference": "CON", "gguf": "nul.gguf"}, ("", "")),
    ({"reference": "a\\..\\b", "gguf": "dir/name.gguf"}, ("", "")),
])
def test_a_peers_base_names_are_kept_only_when_they_are_plain_names(given, kept):
    from backend.p2p.verify import safe_base

    base = safe_base({**given, "sha256": "ab" * 32})
    assert (base["reference"], base["gguf"]) == kept and base["sha256"] == "ab" * 32


@pytest.mark.parametrize("name", ["CON", "con", "nul.json", "COM1", "lpt9.safetensors", "AUX"])
def test_device_names_are_refused_as_adapter_names_on_every_platform(name):
    from backend.training.adapters import BadAdapterName, validate_adapter_name

    with pytest.raises(BadAdapterName):
        validate_adapter_name(name)
    assert validate_adapter_name("console-voice") == "console-voice"
