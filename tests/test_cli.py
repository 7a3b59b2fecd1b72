import json
import re

import pytest

from backend import __version__
from tests.cli_runner import run_cli


def test_version():
    completed = run_cli("--version")
    assert completed.returncode == 0
    assert completed.stdout.strip() == f"orch-mind, version {__version__}"


@pytest.mark.slow
def test_doctor_reports_the_truth(orch_home):
    completed = run_cli("doctor", "--json")
    report = json.loads(completed.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert report["data_dir"] == str(orch_home.resolve())
    for name in ("data_dir", "settings", "duckdb_extensions", "embedding_model", "default_chat_model", "python:torch", "python:llama_cpp_python", "p2p_sidecar"):
        assert checks[name]["ok"], checks[name]
    assert "fts, vss" in checks["duckdb_extensions"]["detail"]
    assert re.search(r"\(\d+ MB\)$", checks["default_chat_model"]["detail"]), checks["default_chat_model"]["detail"]
    assert report["ready"] is True and completed.returncode == 0


@pytest.mark.slow
def test_doctor_flags_a_broken_settings_file(orch_home):
    (orch_home / "settings.json").write_text("[1, 2")
    completed = run_cli("doctor", "--json")
    report = json.loads(completed.stdout)
    settings = next(c for c in report["checks"] if c["name"] == "settings")
    assert settings["ok"] is False and "not valid JSON" in settings["detail"]
    assert completed.returncode == 1


def test_every_option_of_every_command_says_what_it_does():
    import click

    from app.cli import main

    missing = []

    def walk(command, path):
        for param in command.params:
            if isinstance(param, click.Option) and not param.help and not param.hidden:
                missing.append(f"{path} {'/'.join(param.opts)}")
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}")

    walk(main, "orch-mind")
    assert missing == [], f"options without help: {missing}"
