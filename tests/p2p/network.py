"""Helpers for network tests: peers with their own data dirs on one loopback DHT testnet."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from backend.config import DataLayout
from backend.p2p.service import P2PService
from backend.training.base_models import BaseModel


def peer_layout(root: Path, base: BaseModel) -> DataLayout:
    """A fresh data dir that sees the shared dequantised SmolLM2 (a link, not a copy)."""
    layout = DataLayout(Path(tempfile.mkdtemp(dir=root)))
    target = layout.models_dir / "hf" / base.sha256[:16]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(base.hf_dir, target_is_directory=True)
    return layout


@contextmanager
def running_peer(layout: DataLayout, bootstrap: list[str]) -> Iterator[P2PService]:
    # host="127.0.0.1": the DHT binds loopback, so nothing dials this machine's other interface.
    service = P2PService(layout, bootstrap=bootstrap, host="127.0.0.1")
    service.start()
    try:
        yield service
    finally:
        service.stop()


def sees_adapter(service: P2PService, name: str, peer: str | None = None) -> bool:
    return any(row["name"] == name and (peer is None or row["peer"] == peer) for row in service.browse())
