"""Helpers for network tests: peers with their own data dirs on one loopback DHT testnet."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from backend.config import DataLayout
from backend.jobs import JobRegistry
from backend.p2p.service import P2PService
from backend.training.adapters import AdapterManifest
from backend.training.base_models import BaseModel
from backend.training.config import TrainConfig
from backend.training.dataset import SourceConversation, Turn
from backend.training.export import export_run
from backend.training.runs import prepare_run, run_training


def peer_layout(root: Path, base: BaseModel) -> DataLayout:
    """A fresh data dir that sees the shared dequantised SmolLM2 (a link, not a copy)."""
    layout = DataLayout(Path(tempfile.mkdtemp(dir=root)))
    target = layout.hf_base_dir(base.sha256)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(base.hf_dir, target_is_directory=True)
    return layout


@contextmanager
def running_peer(layout: DataLayout, bootstrap: list[str], **options: object) -> Iterator[P2PService]:
    # host="127.0.0.1": the DHT binds loopback, so nothing dials this machine's other interface.
    service = P2PService(layout, bootstrap=bootstrap, host="127.0.0.1", **options)
    service.start()
    try:
        yield service
    finally:
        service.stop()


def sees_adapter(service: P2PService, name: str, peer: str | None = None) -> bool:
    return any(row["name"] == name and (peer is None or row["peer"] == peer) for row in service.browse())


def offer_id(service: P2PService, name: str, peer: str | None = None) -> str:
    """The signed entry id of the adapter a browse row shows (what the UI and CLI download by)."""
    return next(row["id"] for row in service.browse() if row["name"] == name and (peer is None or row["peer"] == peer))


TINY = dict(epochs=1, batch_size=8, rank=4, alpha=8, learning_rate=2e-3, eval_every=100, checkpoint_every=100, sample_prompts=0,
            target_modules=["q_proj", "v_proj"])


def styled(prefix: str, n: int = 32) -> list[SourceConversation]:
    return [SourceConversation(f"{prefix}-{i}", f"{prefix} {i}", None,
                               (Turn("user", f"What is {i} plus {i}?"), Turn("assistant", f"{prefix}, {i} plus {i} is {2 * i}!")))
            for i in range(n)]


def train_adapter(layout: DataLayout, name: str, prefix: str, **overrides: object) -> AdapterManifest:
    """A real LoRA trained in seconds on SmolLM2 to answer in a recognisable style, exported with its GGUF."""
    job_dir = prepare_run(layout, TrainConfig(**{**TINY, **overrides}), styled(prefix))
    registry = JobRegistry()
    record = registry.wait(registry.start("train", name, lambda ctx: run_training(ctx, job_dir)), timeout=600)
    assert record.state == "succeeded", record.error
    return export_run(layout, job_dir, name)
