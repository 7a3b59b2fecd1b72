import json
import subprocess
import sys
import textwrap

import pytest

from backend.training.dataset import SourceConversation, Turn

PEAK_SCRIPT = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from backend.training.base_models import engine_template
    from backend.model_loading import peak_rss_bytes
    from backend.training.base_preparation import prepare_base
    gguf = Path(sys.argv[1])
    prepare_base(gguf, Path(sys.argv[2]), chat_template=engine_template(gguf))
    print(json.dumps({"peak": peak_rss_bytes()}))
""")


@pytest.fixture(scope="session")
def prepared_1b(synthetic_gguf, tmp_path_factory):
    """The synthetic 1.2B GGUF prepared for training once per session, exactly as ``resolve_base``
    prepares it, in a child process whose peak RSS is measured: (gguf, prepared folder, peak bytes).
    The preparation test checks the figures; the 1.2B loop trains from the folder (linked)."""
    gguf = synthetic_gguf("1.2b-llama")
    target = tmp_path_factory.mktemp("prepared-1b") / "prepared"
    child = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(gguf), str(target)], capture_output=True, text=True, timeout=900)
    assert child.returncode == 0, child.stderr[-3000:]
    return gguf, target, json.loads(child.stdout.strip().splitlines()[-1])["peak"]


def pirate_conversations(n: int) -> list[SourceConversation]:
    """A learnable style: every answer is the same pirate phrase around a sum."""
    return [SourceConversation(f"conv-{i}", f"Sum {i}", None,
                               (Turn("user", f"What is {i} plus {i}?"), Turn("assistant", f"Arr matey, {i} plus {i} be {2 * i}!")))
            for i in range(n)]
