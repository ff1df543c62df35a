"""Configuration is typed and checked once, at load: for every section of configs/pipeline.yaml, of
configs/distributions.yaml and of configs/prices.yaml, an unknown key, a wrong type or a value out of range is
refused with a message naming the file and the dotted key path. The real files load, and what they load is frozen.
Fast: no OCR, no model loaded."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.config import ConfigError
from common.errors import BadInput
from common.params import ParameterError
from corpus.capture import load_presets
from mlproject.prices import Prices, load_prices
from steps.catalog import Catalog, default_catalog
from steps.spec import PipelineSpec, load_spec
from tests.conftest import ROOT

CONFIGS = ROOT / "configs"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return default_catalog()


def _real(name: str) -> dict[str, Any]:
    return yaml.safe_load((CONFIGS / name).read_text())


def _edited(tmp_path: Path, name: str, edit: Callable[[dict], Any]) -> Path:
    """A copy of configs/<name> with `edit` applied to its parsed content."""
    data = copy.deepcopy(_real(name))
    edit(data)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _refused(load: Callable[[Path], Any], path: Path, where: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(path)
    prefix = f"{path}: {where}: " if where else f"{path}: "
    assert str(caught.value).startswith(prefix), str(caught.value)
    assert message in str(caught.value), str(caught.value)


def _set(*keys_and_value: Any) -> Callable[[dict], None]:
    """An edit setting data[k1][k2]…[kn] = value."""
    *keys, value = keys_and_value

    def edit(data: dict) -> None:
        for key in keys[:-1]:
            data = data[key]
        data[keys[-1]] = value
    return edit


def _drop(*keys: str) -> Callable[[dict], None]:
    def edit(data: dict) -> None:
        for key in keys[:-1]:
            data = data[key]
        del data[keys[-1]]
    return edit


# --- configs/pipeline.yaml --------------------------------------------------------------------------

PIPELINE_CASES = [
    # every section: an unknown key, and a wrong type
    (_set("default_configuration", "classifier", "tfidf-nb:l2"), "default_configuration",
     "unknown key 'classifier'; valid keys: classify, extract, ocr, preprocess"),
    (_set("default_configuration", "ocr", 3), "default_configuration.ocr", "expected a string, got 3"),
    (_set("training", "epochs", 3), "training", "unknown key 'epochs'; valid keys: distributions, families, n"),
    (_set("training", "n", "forty"), "training.n", "expected an integer, got 'forty'"),
    (_set("training", "n", True), "training.n", "expected an integer, got True"),  # YAML true is no integer
    (_set("sla", "budget_ms", 100), "sla", "unknown key 'budget_ms'; valid keys: batch_size, end_to_end_ms, steps_ms"),
    (_set("sla", "end_to_end_ms", "fast"), "sla.end_to_end_ms", "expected a number, got 'fast'"),
    (_set("sla", "steps_ms", "ocrx", 100), "sla.steps_ms",
     "unknown key 'ocrx'; valid keys: preprocess, ocr, classify, extract"),
    (_set("sla", "steps_ms", "ocr", [2500]), "sla.steps_ms.ocr", "expected a number, got [2500]"),
    (_set("grid", "ocrr", ["tesseract:lstm-fast"]), "grid", "unknown key 'ocrr'; valid keys: preprocess, ocr"),
    (_set("grid", "ocr", "tesseract:lstm-fast"), "grid.ocr", "expected a list, got 'tesseract:lstm-fast'"),
    (_set("distributions", "clean"), "distributions", "expected a list, got 'clean'"),
    (_set("distributions", ["clean", 3]), "distributions[1]", "expected a string, got 3"),
    (_set("distributions", []), "distributions", "must be non-empty, got []"),
    (_set("profile", "coress", [1]), "profile", "unknown key 'coress'; valid keys: batch_sizes, cores, distributions"),
    (_set("profile", "cores", [1, "two"]), "profile.cores[1]", "expected an integer, got 'two'"),
    (_set("profile", "steps", 5), "profile.steps", "expected 'auto' or a list, got 5"),
    (_set("profile", "steps", ["ocr", "ocrx"]), "profile.steps[1]", "expected one of 'preprocess', 'ocr'"),
    (_set("profile", "versions", "ocrx", ["a"]), "profile.versions", "unknown key 'ocrx'"),
    (_set("registry", "gate", "tolerance", 0.1), "registry.gate",
     "unknown key 'tolerance'; valid keys: accuracy_tolerance, corpus, distribution, n, seed"),
    (_set("registry", "gate", "n", 12.5), "registry.gate.n", "expected an integer, got 12.5"),
    (_set("registry", "gates", {}), "registry", "unknown key 'gates'; valid keys: gate"),
    # the file itself
    (_set("profiles", {}), "", "unknown key 'profiles'; valid keys: default_configuration, distributions, grid"),
    (_drop("sla"), "", "missing key 'sla'"),
    (_drop("profile", "cores"), "profile", "missing key 'cores'"),
    (_set("version", 2), "version", "expected 1, got 2"),
    (_set("training", None), "training", "expected a mapping, got None"),
    # ranges, variant ids and classifier families
    (_set("sla", "batch_size", 0), "sla.batch_size", "must be positive, got 0"),
    (_set("sla", "steps_ms", "ocr", -1), "sla.steps_ms.ocr", "must be positive, got -1"),
    (_set("profile", "max_utilisation", 1.5), "profile.max_utilisation", "must be in (0, 1], got 1.5"),
    (_set("profile", "cores", []), "profile.cores", "must be non-empty, got []"),
    (_set("profile", "n", 0), "profile.n", "must be positive, got 0"),
    (_set("profile", "warmup_batches", -1), "profile.warmup_batches", "must be 0 or more, got -1"),
    (_set("registry", "gate", "accuracy_tolerance", 1), "registry.gate.accuracy_tolerance", "must be in [0, 1), got 1"),
    (_set("grid", "ocr", ["tesseract:lstm-fast", "tesseract:nope"]), "grid.ocr[1]",
     "unknown ocr variant 'tesseract:nope'"),
    (_set("default_configuration", "extract", "nope"), "default_configuration.extract",
     "unknown extract variant 'nope'"),
    (_set("profile", "versions", "ocr", ["tesseract:nope"]), "profile.versions.ocr[0]", "unknown ocr variant"),
    (_set("training", "families", ["tfidf-logreg", "keywords"]), "training.families[1]",
     "unknown classifier family 'keywords'; valid: tfidf-logreg, tfidf-nb, tfidf-svm"),
]


@pytest.mark.parametrize(("edit", "where", "message"), PIPELINE_CASES)
def test_a_bad_pipeline_spec_is_refused_at_load_naming_the_file_and_key(catalog: Catalog, tmp_path: Path, edit,
                                                                         where: str, message: str) -> None:
    _refused(lambda p: load_spec(catalog, p), _edited(tmp_path, "pipeline.yaml", edit), where, message)


def test_the_real_pipeline_spec_loads_typed_and_resolved(catalog: Catalog) -> None:
    spec = load_spec(catalog)
    assert spec.version == 1 and spec.default.ocr == "ocr/tesseract:band-ensemble"
    assert spec.sla.batch_size == 4 and spec.sla.end_to_end_ms == 3000.0 and isinstance(spec.sla.end_to_end_ms, float)
    assert spec.sla.steps_ms == {"preprocess": 250.0, "ocr": 2500.0, "classify": 50.0, "extract": 400.0}
    assert spec.grid["ocr"] == ("ocr/tesseract:lstm-fast", "ocr/tesseract:lstm-fast-mrz", "ocr/tesseract:lstm-standard",
                                "ocr/tesseract:band-ensemble")
    assert spec.distributions == ("clean", "scan", "phone", "lowlight")
    assert spec.training.families == ("tfidf-logreg", "tfidf-nb", "tfidf-svm") and spec.training.n == 40
    profile = spec.profile
    assert profile.steps == "auto" and profile.cores == (1, 2, 4) and profile.batch_sizes == (1, 4, 8)
    assert set(profile.versions) == {"preprocess", "ocr", "classify", "extract"}
    assert profile.min_seconds == 2.0 and profile.max_utilisation == 0.8 and profile.max_replicas == 32
    gate = spec.registry.gate
    assert (gate.n, gate.seed, gate.distribution, gate.accuracy_tolerance) == (12, 4242, "clean", 0.01)


def test_names_are_resolved_and_optional_keys_take_their_defaults(catalog: Catalog, tmp_path: Path) -> None:
    def edit(data: dict) -> None:
        data["default_configuration"]["ocr"] = "tesseract:lstm-fast"  # model:version, without the step
        del data["grid"]["classify"], data["distributions"]
        for key in ("steps", "versions", "warmup_batches", "min_batches", "min_seconds"):
            del data["profile"][key]
        del data["registry"]["gate"]["corpus"]
        data["profile"]["steps"] = ["ocr", "extract"]
        data["profile"]["versions"] = {"ocr": ["tesseract:legacy", "legacy"]}
    spec = load_spec(catalog, _edited(tmp_path, "pipeline.yaml", edit))
    assert spec.default.ocr == "ocr/tesseract:lstm-fast"
    assert spec.grid["classify"] == (spec.default.classify,) and spec.distributions == ("clean",)
    assert spec.profile.steps == ("ocr", "extract")
    assert spec.profile.versions["ocr"] == ("ocr/tesseract:legacy",)  # resolved, listed once
    assert spec.profile.versions["extract"] == (spec.default.extract,)  # a step not listed: its default
    assert (spec.profile.warmup_batches, spec.profile.min_batches, spec.profile.min_seconds) == (1, 3, 2.0)
    assert spec.registry.gate.corpus is None


def test_the_loaded_spec_is_frozen(catalog: Catalog) -> None:
    spec = load_spec(catalog)
    for obj, name, value in ((spec, "default", None), (spec.sla, "batch_size", 8), (spec.profile, "cores", (1,)),
                             (spec.registry.gate, "n", 1), (spec.training, "n", 1), (spec.default, "ocr", "x")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, name, value)
    assert isinstance(spec, PipelineSpec) and not hasattr(spec, "raw")


def test_a_config_error_is_bad_input_and_an_unreadable_file_is_named(catalog: Catalog, tmp_path: Path) -> None:
    assert issubclass(ConfigError, BadInput)
    broken = tmp_path / "pipeline.yaml"
    broken.write_text("sla: [unclosed\n")
    with pytest.raises(ConfigError, match=f"{broken}: not valid YAML"):
        load_spec(catalog, broken)
    with pytest.raises(ConfigError, match=f"cannot read {tmp_path / 'none.yaml'}"):
        load_spec(catalog, tmp_path / "none.yaml")


# --- configs/distributions.yaml -----------------------------------------------------------------------

DISTRIBUTION_CASES = [
    (_set("presets", "scan", "blurr_sigma", [1.0, 2.0]), "presets.scan",
     "unknown key 'blurr_sigma'; valid keys: blur_sigma"),
    (_set("presets", "scan", "blur_sigma", 3), "presets.scan.blur_sigma", "expected a [low, high] list, got 3"),
    (_set("presets", "scan", "blur_sigma", [1.0, "x"]), "presets.scan.blur_sigma[1]", "expected a number, got 'x'"),
    (_set("presets", "scan", "blur_sigma", [2.0, 1.0]), "presets.scan.blur_sigma",
     "must be [low, high] with low ≤ high, got [2.0, 1.0]"),
    (_set("presets", "scan", "jpeg_quality", [85.5, 92]), "presets.scan.jpeg_quality[0]",
     "expected an integer, got 85.5"),
    (_set("presets", "scan", "place", "tripod"), "presets.scan.place", "expected 'scan' or 'phone', got 'tripod'"),
    (_set("presets", "scan", "expect", "focus", "higher"), "presets.scan.expect",
     "unknown key 'focus'; valid keys: brightness"),
    (_set("presets", "scan", "expect", "skew", "up"), "presets.scan.expect.skew",
     "expected 'higher' or 'lower', got 'up'"),
    (_set("presets", "colorcast", "tint", ["warm", "green"]), "presets.colorcast.tint[1]", "expected 'warm' or 'cool'"),
    (_set("presets", "mixed", "mixture", "fog", 0.1), "presets.mixed.mixture", "names 'fog', not a plain preset"),
    (_set("presets", "mixed", "mixture", "clean", "lots"), "presets.mixed.mixture.clean",
     "expected a number, got 'lots'"),
    (_set("presets", "scan", None), "presets.scan", "expected a mapping, got None"),
    (_set("version", "one"), "version", "expected 1, got 'one'"),
    (_set("preset", {}), "", "unknown key 'preset'; valid keys: presets, version"),
    (_drop("presets"), "", "missing key 'presets'"),
]


@pytest.mark.parametrize(("edit", "where", "message"), DISTRIBUTION_CASES)
def test_a_bad_distributions_file_is_refused_naming_the_file_and_key(tmp_path: Path, edit, where: str,
                                                                     message: str) -> None:
    _refused(load_presets, _edited(tmp_path, "distributions.yaml", edit), where, message)


def test_the_real_distributions_load_typed() -> None:
    presets = load_presets()
    assert {"clean", "scan", "phone", "lowlight", "glare", "colorcast", "mixed"} <= set(presets)
    assert presets["scan"].blur_sigma == (0.9, 1.3) and presets["scan"].jpeg_quality == (85, 92)
    assert presets["phone"].frame == (1280, 960) and presets["colorcast"].tint == ("warm", "cool")
    assert presets["glare"].glare_count == (1, 3) and all(isinstance(v, int) for v in presets["glare"].glare_count)
    with pytest.raises(dataclasses.FrozenInstanceError):
        presets["scan"].blur_sigma = (0.0, 0.0)  # type: ignore[misc]


# --- configs/prices.yaml --------------------------------------------------------------------------------

PRICE_CASES = [
    (_set("price_per_core_hr", 0.04), "", "unknown key 'price_per_core_hr'; valid keys: currency, price_per_core_hour"),
    (_set("price_per_core_hour", "cheap"), "price_per_core_hour", "expected a number, got 'cheap'"),
    (_set("price_per_core_hour", 0), "price_per_core_hour", "must be positive, got 0"),
    (_set("currency", 1), "currency", "expected a string, got 1"),
    (_drop("price_per_core_hour"), "", "missing key 'price_per_core_hour'"),
]


@pytest.mark.parametrize(("edit", "where", "message"), PRICE_CASES)
def test_a_bad_prices_file_is_refused_naming_the_file_and_key(tmp_path: Path, edit, where: str, message: str) -> None:
    _refused(load_prices, _edited(tmp_path, "prices.yaml", edit), where, message)


def test_the_real_prices_load_and_an_integer_price_is_a_number(tmp_path: Path) -> None:
    prices = load_prices()
    assert prices.price_per_core_hour == 0.044625 and prices.currency == "USD"
    assert prices.source.startswith("AWS EC2 On-Demand") and "  " not in prices.source
    whole = load_prices(_edited(tmp_path, "prices.yaml", _set("price_per_core_hour", 1)))
    assert whole.price_per_core_hour == 1.0 and isinstance(whole.price_per_core_hour, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        prices.currency = "EUR"  # type: ignore[misc]
    assert isinstance(prices, Prices)


# --- the gate section meets the command's overrides ------------------------------------------------------

def test_gate_spec_takes_the_typed_section_and_validates_overrides(catalog: Catalog) -> None:
    from registry.gates import gate_spec

    spec = load_spec(catalog)
    gate = gate_spec(spec.registry.gate, spec.sla.steps_ms, spec.sla.batch_size)
    assert (gate.corpus, gate.n, gate.seed, gate.distribution, gate.accuracy_tolerance, gate.batch_size) == (
        None, 12, 4242, "clean", 0.01, 4)
    assert gate.budgets_ms == spec.sla.steps_ms
    given = gate_spec(spec.registry.gate, {}, 2, corpus=Path("/data/c"), n="5", distribution="scan",
                      accuracy_tolerance=0.05)
    assert (given.corpus, given.n, given.distribution, given.accuracy_tolerance) == ("/data/c", 5, "scan", 0.05)
    with pytest.raises(ParameterError, match=r"parameter tolerance: must be in \[0, 1\), got 1.5"):
        gate_spec(spec.registry.gate, {}, 2, accuracy_tolerance=1.5)
    with pytest.raises(ParameterError, match="parameter n must be positive"):
        gate_spec(spec.registry.gate, {}, 2, n=0)


@pytest.mark.parametrize(("edit", "where"), [
    (_set("distributions", ["clean", "fog"]), "distributions"),
    (_set("training", "distributions", ["snow"]), "training.distributions"),
    (_set("profile", "distributions", ["clean", "haze"]), "profile.distributions"),
    (_set("registry", "gate", "distribution", "rain"), "registry.gate.distribution"),
])
def test_a_distribution_the_presets_do_not_have_is_refused_when_a_command_starts(tmp_path: Path, edit,
                                                                                  where: str) -> None:
    from mlproject.context import Context

    path = _edited(tmp_path, "pipeline.yaml", edit)
    _refused(lambda p: Context(spec=p).spec, path, where, "unknown distribution(s)")
