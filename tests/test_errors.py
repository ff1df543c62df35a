"""The one error table (common/errors.py): every error class CardFlow defines has its exit code and HTTP status
there, exceptions outside the hierarchy do not exist, and the CLI exits with the table's code."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from common.errors import (
    CATEGORIES,
    TABLE,
    BadInput,
    CardflowError,
    Conflict,
    Internal,
    NotFound,
    Overloaded,
    Unavailable,
    category,
    outcome,
)
from tests.conftest import ROOT

PACKAGES = ("common", "corpus", "steps", "tracking", "registry", "analysis", "mlproject", "serving")


def _project_modules() -> list:
    modules = []
    for package in PACKAGES:
        root = importlib.import_module(package)
        modules.append(root)
        for info in pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}."):
            if info.name.endswith("pyfunc_model"):  # MLflow "models from code": executing it registers a model
                continue
            modules.append(importlib.import_module(info.name))
    return modules


def _defined_exceptions() -> list[type[BaseException]]:
    found = {}
    for module in _project_modules():
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return list(found.values())


def test_every_error_class_has_a_row_in_the_table() -> None:
    defined = _defined_exceptions()
    assert len(defined) >= 15, [e.__name__ for e in defined]  # the walk really found the project's errors
    outside = [f"{e.__module__}.{e.__name__}" for e in defined if not issubclass(e, CardflowError)]
    assert outside == [], f"exceptions outside the CardflowError hierarchy: {outside}"
    without = [f"{e.__module__}.{e.__name__}" for e in defined if e is not CardflowError and category(e) is None]
    assert without == [], f"error classes without an exit code and HTTP status: {without}"


def test_a_class_without_a_category_is_caught() -> None:
    class Orphan(CardflowError):
        pass

    assert category(Orphan) is None and outcome(Orphan("x")).http_status == 500  # the walk above would fail on it


@pytest.mark.parametrize(("error", "exit_code", "status"), [
    (BadInput, 2, 400), (NotFound, 2, 404), (Conflict, 2, 409), (Unavailable, 4, 503), (Overloaded, 4, 429),
    (Internal, 1, 500), (KeyError, 1, 500),
])
def test_the_table(error: type[BaseException], exit_code: int, status: int) -> None:
    got = outcome(error("boom"))
    assert (got.exit_code, got.http_status) == (exit_code, status)


def test_a_domain_error_takes_the_category_it_names_first() -> None:
    from registry.errors import RegistryError, RegistryNotFound, RegistryUnavailable
    from steps.errors import ModelNotTrained, StepError, UnknownVariant
    from tracking.edge import TrackingUnavailable

    assert category(StepError) is BadInput and category(UnknownVariant) is NotFound
    assert category(ModelNotTrained) is Unavailable and category(RegistryError) is BadInput
    assert category(RegistryNotFound) is NotFound and category(RegistryUnavailable) is Unavailable
    assert category(TrackingUnavailable) is Unavailable
    assert set(CATEGORIES) == {c for c, _ in TABLE}


@pytest.mark.parametrize("error", [BadInput, NotFound, Unavailable, Internal])
def test_the_cli_exits_with_the_tables_code(error: type[CardflowError], capsys, monkeypatch) -> None:
    import mlproject.cli as cli
    import mlproject.commands as commands

    def fail(*args, **kwargs):
        raise error("the file x.yaml, key y, is wrong")

    monkeypatch.setattr(commands, "variants_listing", fail)
    code = cli.main(["variants"])
    assert code == outcome(error("")).exit_code
    err = capsys.readouterr().err
    assert "x.yaml, key y" in err and "Traceback" not in err
