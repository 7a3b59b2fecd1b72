"""The Models screen in real Chromium (browser mode): what each model is, and adding a model found
in another app's folder, with the engine serving it afterwards."""

from __future__ import annotations

import os
import shutil

import pytest

from app.main import BrowserModeServer, build_api
from backend.config import update_settings
from backend.inference.default_models import default_chat_gguf
from backend.inference.model_store import ModelStore
from tests.conftest import app_page


@pytest.fixture
def lmstudio(tmp_path, layout):
    folder = tmp_path / "lmstudio-models" / "community" / "SmolLM2-135M"
    folder.mkdir(parents=True)
    copy = folder / "SmolLM2-135M-Instruct-Q4_1.gguf"
    shutil.copyfile(default_chat_gguf(), copy)
    (folder / "broken.gguf").write_bytes(b"GGUF" + os.urandom(100))
    update_settings({"model_locations": {"lmstudio": [str(tmp_path / "lmstudio-models")], "ollama": [], "jan": [],
                                         "gpt4all": [], "huggingface": []}}, layout)
    return copy


@pytest.mark.slow
def test_add_a_model_found_on_this_computer(lmstudio, layout, chromium_path, artifacts_dir):
    api, events = build_api("browser", layout)
    server = BrowserModeServer(api, events).start_in_thread()
    try:
        with app_page(server.config.url, chromium_path) as page:
            page.click("#nav button[data-screen=models]")
            page.wait_for_selector("[data-testid=model-row]")
            assert "llama · 135M · Q4_1" in page.inner_text("[data-testid=models-table]"), "what each model is"
            page.wait_for_selector("[data-testid=found-row]")
            found = page.inner_text("[data-testid=models-found]")
            assert "community/SmolLM2-135M/SmolLM2-135M-Instruct-Q4_1.gguf" in found and "broken.gguf" not in found
            page.click("[data-testid=found-add]")
            page.wait_for_selector("[data-testid=model-add-status].ok")
            assert "smollm2-135m-instruct-q4_1" in page.inner_text("[data-testid=model-add-status]")
            page.wait_for_selector("[data-testid=models-table] >> text=smollm2-135m-instruct-q4_1:latest")
            page.wait_for_selector("[data-testid=models-found] >> text=added as smollm2-135m-instruct-q4_1:latest")
            page.screenshot(path=str(artifacts_dir / "models-screen.png"), full_page=True)

            lmstudio.unlink()  # the file goes away: the model is shown as unavailable, with the reason
            page.click("#nav button[data-screen=memory]")
            page.click("#nav button[data-screen=models]")
            page.wait_for_selector("[data-testid=model-row].unavailable")
            assert "missing" in page.inner_text("[data-testid=model-row].unavailable")
    finally:
        server.stop()
    manifest = next(m for m in ModelStore(layout).list() if m.name == "smollm2-135m-instruct-q4_1:latest")
    assert manifest.source["path"] == str(lmstudio.resolve())
