"""The error classes follow one rule: the subsystem says where, the category says what, the class says the code."""

import importlib
import inspect
import pkgutil

import pytest

import app
import backend
from backend.errors import CATEGORIES, OrchMindError


def all_error_classes() -> list[type[OrchMindError]]:
    for package in (backend, app):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if module.name.startswith("app.main") or module.name.endswith("__main__"):
                continue  # entry points that start things on import
            importlib.import_module(module.name)
    found, todo = [], [OrchMindError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_no_raise_site_can_override_the_code_of_its_class():
    assert "code" not in inspect.signature(OrchMindError.__init__).parameters


def test_a_class_in_a_category_takes_its_code_from_that_category_or_names_its_own():
    classes = all_error_classes()
    assert len(classes) > 40, "every module was imported"
    wrong = []
    for cls in classes:
        categories = [c for c in CATEGORIES if issubclass(cls, c)]
        if not categories:
            continue
        # The first class in the MRO that sets `code` must be the class itself or a category (or one of
        # its refinements): a subsystem base listed before the category would hide the category's code.
        owner = next(c for c in cls.__mro__ if "code" in c.__dict__)
        if not (owner is cls or any(issubclass(owner, c) for c in CATEGORIES)):
            wrong.append(f"{cls.__module__}.{cls.__qualname__} takes code {cls.code!r} from {owner.__qualname__}")
    assert wrong == []


@pytest.mark.parametrize("cls_path, code", [
    ("backend.training.merge.IncompatibleAdapters", "incompatible"),
    ("backend.training.adapters.AdapterExists", "exists"),
    ("backend.p2p.rooms.BadInvite", "bad_invite"),
    ("backend.memory.search.BadSearch", "invalid_argument"),
    ("backend.inference.gguf_info.UnreadableModelFile", "not_found"),
])
def test_combined_classes_answer_both_questions(cls_path, code):
    module, name = cls_path.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    error = cls("message")
    assert error.code == code and error.to_dict() == {"code": code, "message": "message"}
    assert any(isinstance(error, c) for c in CATEGORIES)
    subsystem = [c for c in cls.__mro__[1:] if c not in CATEGORIES and c is not OrchMindError and issubclass(c, OrchMindError)
                 and not any(issubclass(c, k) for k in CATEGORIES)]
    assert subsystem, f"{name} also says which subsystem raised it"


def test_the_engine_maps_not_found_by_class_not_by_code():
    from backend.inference.engine_server import status_for
    from backend.inference.gguf_info import UnreadableModelFile
    from backend.inference.model_store import MissingBlob

    assert status_for(UnreadableModelFile("x")) == 404 and status_for(MissingBlob("x")) == 404
