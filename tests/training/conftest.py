import shutil

import pytest

from backend.config import DataLayout
from backend.training.base_models import resolve_base
from backend.training.dataset import SourceConversation, Turn


@pytest.fixture(scope="session")
def shared_base(tmp_path_factory):
    """SmolLM2 dequantised from its GGUF once per test session (about 20 s), shared by all tests."""
    layout = DataLayout(tmp_path_factory.mktemp("base-cache"))
    return resolve_base("smollm2", layout)


@pytest.fixture
def base_in_layout(layout, shared_base):
    """Make the per-test data dir see the shared dequantised base (a link, not a 538 MB copy)."""
    target = layout.models_dir / "hf" / shared_base.sha256[:16]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(shared_base.hf_dir, target_is_directory=True)
    yield shared_base
    target.unlink()


def pirate_conversations(n: int) -> list[SourceConversation]:
    """A learnable style: every answer is the same pirate phrase around a sum."""
    return [SourceConversation(f"conv-{i}", f"Sum {i}", None,
                               (Turn("user", f"What is {i} plus {i}?"), Turn("assistant", f"Arr matey, {i} plus {i} be {2 * i}!")))
            for i in range(n)]
