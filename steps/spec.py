"""The pipeline spec (configs/pipeline.yaml) as frozen, typed objects, validated once at load: every key and type
(common/config.py), the ranges, every variant id and classifier family against the catalog. A mistake is a
ConfigError naming the file and the key; nothing reads raw YAML. (Distribution names are checked where a corpus
is made, corpus/resolve.py: the steps layer does not read the generator's presets.)"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from common.config import (
    NON_EMPTY,
    Check,
    ConfigError,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    config_error,
    load_file,
    within,
)
from steps.base import STEPS
from steps.catalog import Catalog, Configuration
from steps.errors import StepError
from steps.latency import MeasureParams

DEFAULT_SPEC = Path(__file__).resolve().parent.parent / "configs" / "pipeline.yaml"
SPEC_ENV = "CARDFLOW_SPEC"  # a team's own spec file in place of configs/pipeline.yaml (SLA, grid, gates…)
Step = Literal[STEPS]
Names = Annotated[tuple[str, ...], NON_EMPTY]


@dataclass(frozen=True)
class TrainingSpec:
    """`training:` the corpus `cardflow train` generates, the OCR that reads it, the classifier families it fits."""

    n: PositiveInt  # documents per distribution
    seed: int
    distributions: Names
    preprocess: str  # variant ids (resolved at load)
    ocr: str
    families: Names


@dataclass(frozen=True)
class Sla:
    """`sla:` p95 latency budgets per document at a fixed batch size, end to end and per step."""

    batch_size: PositiveInt
    end_to_end_ms: PositiveFloat
    steps_ms: dict[Step, PositiveFloat] = field(default_factory=dict)

    def verdict(self, end_to_end_p95: float, steps_p95: dict[str, float]) -> dict[str, bool]:
        """SLA met, end to end and per step, judged on p95 latency per document."""
        out = {"end_to_end": end_to_end_p95 <= self.end_to_end_ms}
        for step, budget in self.steps_ms.items():
            out[step] = steps_p95.get(step, float("inf")) <= budget
        return out


@dataclass(frozen=True)
class ProfileDefaults:
    """`profile:` what `cardflow profile` does where a parameter is not given, and the load the recommender sizes
    each step for (replicas at most `max_utilisation` busy, at most `max_replicas` of them)."""

    cores: Annotated[tuple[PositiveInt, ...], NON_EMPTY]
    batch_sizes: Annotated[tuple[PositiveInt, ...], NON_EMPTY]
    distributions: Names
    n: PositiveInt  # documents per distribution of a generated corpus
    seed: int
    target_load_docs_s: PositiveFloat
    max_utilisation: Annotated[float, Check(lambda v: 0 < v <= 1, "in (0, 1]")]
    max_replicas: PositiveInt
    steps: Literal["auto"] | Annotated[tuple[Step, ...], NON_EMPTY] = "auto"  # auto: the two most expensive
    versions: dict[Step, tuple[str, ...]] = field(default_factory=dict)  # after load: every step, full variant ids
    warmup_batches: NonNegativeInt = 1
    min_batches: PositiveInt = 3  # timed batches per cell at least …
    min_seconds: NonNegativeFloat = 2.0  # … and at least this much timed work


@dataclass(frozen=True)
class GateDefaults:
    """`registry.gate:` where promotion gates evaluate, unless the command says otherwise, and how strict they are."""

    n: PositiveInt
    seed: int
    distribution: str
    accuracy_tolerance: Annotated[float, within(0, 1, high_open=True)]  # absolute accuracy drop allowed
    corpus: str | None = None  # a corpus folder; None or "": one generated from n, seed and distribution


@dataclass(frozen=True)
class RegistrySpec:
    """`registry:`"""

    gate: GateDefaults


@dataclass(frozen=True)
class PipelineSpec:
    """configs/pipeline.yaml, every variant id resolved against the catalog."""

    version: Literal[1]
    default: Configuration = field(metadata={"key": "default_configuration"})
    training: TrainingSpec
    sla: Sla
    profile: ProfileDefaults
    registry: RegistrySpec
    grid: dict[Step, Annotated[tuple[str, ...], NON_EMPTY]] = field(default_factory=dict)  # after load: every step
    distributions: Names = ("clean",)  # the default sweep's
    measure: MeasureParams = field(default_factory=MeasureParams)  # how latency is measured (steps/latency.py)


def spec_path() -> Path:
    """The spec every command reads: $CARDFLOW_SPEC when set, else configs/pipeline.yaml."""
    if not os.environ.get(SPEC_ENV):
        return DEFAULT_SPEC
    path = Path(os.environ[SPEC_ENV]).resolve()  # relative to the folder the command runs in
    if not path.is_file():
        raise ConfigError(f"{SPEC_ENV}={path}: no such file (unset it to use {DEFAULT_SPEC})")
    return path


def load_spec(catalog: Catalog, path: Path | None = None) -> PipelineSpec:
    """The spec in `path` (default: spec_path()), typed and checked; variant names resolved to full ids of
    `catalog`."""
    path = path or spec_path()
    spec = load_file(PipelineSpec, path)

    def variant(step: str, name: str, where: str) -> str:
        try:
            return catalog.resolve(step, name)
        except StepError as exc:
            raise config_error(path, where, str(exc)) from exc

    def variants(step: str, names: Sequence[str], where: str) -> tuple[str, ...]:
        return tuple(variant(step, name, f"{where}[{k}]") for k, name in enumerate(names))

    default = Configuration(**{s: variant(s, getattr(spec.default, s), f"default_configuration.{s}") for s in STEPS})
    _check_families(catalog, path, spec.training.families)
    taught = spec.training
    training = dataclasses.replace(taught, preprocess=variant("preprocess", taught.preprocess, "training.preprocess"),
                                   ocr=variant("ocr", taught.ocr, "training.ocr"))
    grid = {s: variants(s, spec.grid.get(s, (getattr(default, s),)), f"grid.{s}") for s in STEPS}
    versions = {s: tuple(dict.fromkeys(variants(s, spec.profile.versions.get(s, ()), f"profile.versions.{s}")))
                or (getattr(default, s),) for s in STEPS}
    return dataclasses.replace(spec, default=default, training=training, grid=grid,
                               profile=dataclasses.replace(spec.profile, versions=versions))


def _check_families(catalog: Catalog, path: Path, families: Sequence[str]) -> None:
    """Each family is a classifier model the catalog has at both levels (l1, l2)."""
    ids = set(catalog.ids("classify"))
    models = dict.fromkeys(vid.split("/", 1)[1].rsplit(":", 1)[0] for vid in catalog.ids("classify"))
    learned = [m for m in models if {f"classify/{m}:l1", f"classify/{m}:l2"} <= ids]
    for k, family in enumerate(families):
        if family not in learned:
            raise config_error(path, f"training.families[{k}]",
                               f"unknown classifier family {family!r}; valid: {', '.join(learned)}")
