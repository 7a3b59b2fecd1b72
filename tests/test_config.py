import json

import pytest

from backend.config import DataLayout, Settings, data_dir, load_settings, update_settings
from backend.errors import SettingsError


def test_data_dir_follows_orch_mind_home(orch_home):
    assert data_dir() == orch_home.resolve()
    assert DataLayout.current().memory_db == orch_home.resolve() / "memory.duckdb"


def test_defaults_when_no_file(layout):
    assert load_settings(layout) == Settings()


def test_update_persists_and_validates(layout):
    saved = update_settings({"language": "pt-BR", "memory_top_k": 7}, layout)
    assert saved.language == "pt-BR"
    assert json.loads(layout.settings_file.read_text())["memory_top_k"] == 7
    assert load_settings(layout).language == "pt-BR"


@pytest.mark.parametrize(
    "changes, fragment",
    [
        ({"language": "fr"}, "language"),
        ({"memory_top_k": 0}, "memory_top_k"),
        ({"ollama_host": "file:///etc/passwd"}, "ollama_host"),
        ({"no_such_setting": 1}, "Unknown setting"),
    ],
)
def test_invalid_changes_are_refused_and_nothing_is_written(layout, changes, fragment):
    with pytest.raises(SettingsError) as info:
        update_settings(changes, layout)
    assert fragment in info.value.message
    assert not layout.settings_file.exists()


def test_broken_file_gives_actionable_error(layout):
    layout.settings_file.write_text("{not json")
    with pytest.raises(SettingsError) as info:
        load_settings(layout)
    assert "not valid JSON" in info.value.message and "delete it" in info.value.message


def test_data_layout_builds_every_named_path_and_refuses_names_that_could_escape(layout):
    assert layout.log_file.parent == layout.logs_dir and layout.identity_seed.parent == layout.identity_dir
    assert layout.run_dir("train-0123abcd").parent == layout.jobs_dir
    assert layout.hf_base_dir("ab" * 32) == layout.models_dir / "hf" / ("ab" * 8)
    for bad in ("../train-1", "train-1/../../x", "jobs", "train-"):
        with pytest.raises(ValueError):
            layout.run_dir(bad)
    with pytest.raises(ValueError):
        layout.hf_base_dir("../" + "a" * 61)
    layout.run_dir("train-a1").mkdir()
    layout.run_dir("train-b2").mkdir()
    assert [p.name for p in layout.run_dirs()] == ["train-b2", "train-a1"]


def test_the_default_system_prompt_follows_the_language_but_a_written_one_stays(layout):
    from backend.config import DEFAULT_SYSTEM_PROMPTS

    assert load_settings(layout).system_prompt == DEFAULT_SYSTEM_PROMPTS["en"]
    # the Settings screen sends every field, the unchanged prompt included
    assert update_settings({"language": "pt-BR", "system_prompt": DEFAULT_SYSTEM_PROMPTS["en"]}, layout).system_prompt \
        == DEFAULT_SYSTEM_PROMPTS["pt-BR"]
    assert update_settings({"language": "en"}, layout).system_prompt == DEFAULT_SYSTEM_PROMPTS["en"]
    update_settings({"system_prompt": "Answer like a pirate."}, layout)
    assert update_settings({"language": "pt-BR"}, layout).system_prompt == "Answer like a pirate."
