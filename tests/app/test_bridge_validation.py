"""Everything the UI sends is validated: types are strict, strings capped, paths confined."""

from pathlib import Path

import pytest

from app.main import build_api
from app.validation import confined_path, exposed_methods, safe_file_name
from backend.errors import ValidationError


@pytest.fixture
def api(layout):
    api, _events = build_api("test", layout)
    return api


def test_ping_round_trips(api):
    assert api.ping("hi") == {"ok": True, "data": {"reply": "pong: hi", "version": api.app_info()["data"]["version"]}}


@pytest.mark.parametrize("bad", [5, None, ["x"], {"a": 1}, True])
def test_wrong_types_are_refused(api, bad):
    answer = api.ping(bad)
    assert answer["ok"] is False
    assert answer["error"]["code"] == "invalid_argument"
    assert "Traceback" not in answer["error"]["message"]


def test_oversized_strings_are_refused(api):
    answer = api.ping("x" * 201)
    assert answer == {"ok": False, "error": {"code": "invalid_argument", "message": answer["error"]["message"]}}
    assert "at most 200" in answer["error"]["message"]


def test_strict_mode_does_not_coerce_numbers(api):
    answer = api.poll_events("5")
    assert answer["ok"] is False and answer["error"]["code"] == "invalid_argument"


def test_wrong_argument_count_is_a_clear_error(api):
    answer = api.ping()
    assert answer["ok"] is False and answer["error"]["code"] == "invalid_argument"


def test_settings_errors_are_structured(api):
    answer = api.save_settings({"memory_top_k": 999})
    assert answer["ok"] is False
    assert answer["error"]["code"] == "invalid_settings"
    assert "memory_top_k" in answer["error"]["message"]


def test_unknown_job_is_not_found(api):
    assert api.cancel_job("nope")["error"]["code"] == "not_found"
    assert api.cancel_job("../../etc")["error"]["code"] == "invalid_argument"


def test_only_decorated_methods_are_exposed(api):
    names = set(exposed_methods(api))
    assert {"ping", "app_info", "get_settings", "save_settings", "poll_events", "cancel_job"} <= names
    assert not any(name.startswith("_") for name in names)
    public_attributes = {n for n in dir(api) if not n.startswith("_")}
    assert public_attributes == names, "every public attribute is reachable from JS; keep internals private"


@pytest.mark.parametrize("escape", ["../outside.txt", "a/../../outside", "/etc/passwd", "ok/\x00bad"])
def test_paths_escaping_the_root_are_refused(tmp_path: Path, escape):
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(ValidationError):
        confined_path(root, escape)


def test_symlink_out_of_the_root_is_refused(tmp_path: Path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(ValidationError):
        confined_path(root, "link/secret")
    assert confined_path(root, "sub/file.json") == (root / "sub" / "file.json").resolve()


def test_safe_file_name_strips_directories():
    assert safe_file_name("../../evil/conversations.json") == "conversations.json"
    assert safe_file_name("..\\..\\x.zip") == "x.zip"
    with pytest.raises(ValidationError):
        safe_file_name("../..")


def test_opening_a_conversation_validates_its_key(api):
    assert api.memory_conversation("../../etc/passwd")["error"]["code"] == "invalid_argument"
    assert api.memory_conversation("x" * 65)["error"]["code"] == "invalid_argument"
    missing = api.memory_conversation("0123456789abcdef0123")
    assert missing["ok"] is False and missing["error"]["code"] == "not_found" and "no longer in memory" in missing["error"]["message"]


def test_a_type_error_inside_a_method_is_an_internal_error_not_a_bad_argument(caplog):
    from app.validation import bridge_method

    class Api:
        @bridge_method
        def broken(self, name: str) -> int:
            return len(name) + None  # a bug inside the method

    answer = Api().broken("x")
    assert answer["ok"] is False and answer["error"]["code"] == "internal_error"
    assert "Api" not in answer["error"]["message"] and "NoneType" not in answer["error"]["message"]
    assert any(r.exc_info and r.exc_info[0] is TypeError for r in caplog.records), "logged with its traceback"
    wrong = Api().broken("x", "y")
    assert wrong["error"]["code"] == "invalid_argument" and "broken" in wrong["error"]["message"]


def test_calls_with_many_values_take_one_closed_typed_object(api):
    import inspect

    too_many = {name: len(inspect.signature(method).parameters) for name, method in exposed_methods(api).items()
                if len(inspect.signature(method).parameters) > 3}
    assert too_many == {}, f"send these as one object: {too_many}"
    for request in ({"query": "x", "k": "5"}, {"query": "x", "kk": 5}, {"query": "x", "k": 500}, ["x", 5]):
        answer = api.search_memory(request)
        assert answer["ok"] is False and answer["error"]["code"] == "invalid_argument", request
    assert api.training_preview({"base": "smollm2", "rank": 8.0})["error"]["code"] == "invalid_argument", "no silent float → int"
