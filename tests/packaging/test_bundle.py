"""The PyInstaller bundle: build it, then run it like a user would, with no venv on the path.

Slow (a full PyInstaller build, reused from .cache/pyinstaller on later runs); the build starts in the
background when the tests are collected, so it overlaps the rest of the suite.
"""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from backend.config import DataLayout
from backend.training.config import TrainConfig
from backend.training.runs import prepare_run
from tests.p2p.network import styled
from tests.packaging.background_build import BUILD

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bundle():
    executable = Path(BUILD.result()["bundle"])  # started at collection (tests/conftest.py)
    assert executable.is_file() and os.access(executable, os.X_OK)
    return executable


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """No venv, no PYTHONPATH, no repo on the path: only what the bundle carries."""
    keep = {k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "TMPDIR")}
    return {**keep, "PATH": "/usr/bin:/bin", "ORCH_MIND_HOME": str(home), "HF_HUB_OFFLINE": "1", **extra}


def test_doctor_from_the_bundle_reports_every_subsystem_ready(bundle, tmp_path):
    completed = subprocess.run([str(bundle), "doctor", "--json"], cwd=tmp_path, env=clean_env(tmp_path / "home"),
                               capture_output=True, text=True, timeout=300)
    report = json.loads(completed.stdout)
    failing = [c for c in report["checks"] if c["required"] and not c["ok"]]
    assert completed.returncode == 0 and report["ready"], failing
    names = {c["name"] for c in report["checks"] if c["ok"]}
    assert {"duckdb_extensions", "embedding_model", "default_chat_model", "p2p_sidecar", "gguf_converters"} <= names
    sidecar = next(c for c in report["checks"] if c["name"] == "p2p_sidecar")
    assert str(bundle.parent) in sidecar["detail"], "the bundled Node runs the sidecar"


def test_first_start_opens_the_window_and_the_bridge_answers(bundle, tmp_path, xvfb_display):
    home = tmp_path / "home"
    report = tmp_path / "self-test.json"
    completed = subprocess.run([str(bundle), "app", "--self-test", str(report)], cwd=tmp_path,
                               env=clean_env(home, DISPLAY=xvfb_display), capture_output=True, text=True, timeout=300)
    assert report.exists(), completed.stderr[-3000:]
    result = json.loads(report.read_text())
    assert completed.returncode == 0, result
    assert result["ping"] == "pong: self-test" and "window" in result["status"]
    assert (home / "models" / "manifests").is_dir() and any((home / "models" / "manifests").rglob("*")), "default models registered"


def test_without_a_display_the_bundle_serves_browser_mode(bundle, tmp_path):
    process = subprocess.Popen([str(bundle)], cwd=tmp_path, env=clean_env(tmp_path / "home"), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 600  # a hang guard: each line is awaited, a loaded machine starts slowly
        url = ""
        while time.time() < deadline and not url:
            line = process.stdout.readline()
            if "http://127.0.0.1:" in line:
                url = line.split("URL in a browser on this machine: ")[-1].strip()
        assert url.startswith("http://127.0.0.1:"), "browser mode prints its loopback URL"
        import httpx

        page = httpx.get(url, timeout=30)
        assert page.status_code == 200 and "Orch-Mind" in page.text
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_bundled_trainer_trains(bundle, tmp_path, shared_base):
    layout = DataLayout(tmp_path / "home")
    link = layout.hf_base_dir(shared_base.sha256)
    link.parent.mkdir(parents=True)
    link.symlink_to(shared_base.hf_dir, target_is_directory=True)
    config = TrainConfig(epochs=1, batch_size=8, rank=4, alpha=8, learning_rate=2e-3, eval_every=100, checkpoint_every=100,
                         sample_prompts=0, target_modules=["q_proj", "v_proj"])
    job_dir = prepare_run(layout, config, styled("Arr", 16))
    completed = subprocess.run([str(bundle), "trainer", str(job_dir)], cwd=tmp_path, env=clean_env(layout.root),
                               capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stderr[-3000:]
    events = [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]
    assert any(e.get("type") == "progress" for e in events) and events[-1]["type"] == "result"
    assert (job_dir / "adapter" / "adapter_model.safetensors").exists()
    converted = subprocess.run([str(bundle), "run-tool", "convert_lora_to_gguf.py", "--base", str(shared_base.hf_dir),
                                "--outtype", "f16", "--outfile", str(tmp_path / "a.gguf"), str(job_dir / "adapter")],
                               cwd=tmp_path, env=clean_env(layout.root), capture_output=True, text=True, timeout=600)
    assert converted.returncode == 0, converted.stderr[-3000:]
    assert (tmp_path / "a.gguf").read_bytes()[:4] == b"GGUF"
