"""What a command works with, built once per process by the entry point and passed down: the model store,
the one catalog of variants over it, and the pipeline spec validated against that catalog."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from common.config import ConfigError
from corpus.capture import load_presets
from steps.catalog import Catalog, default_catalog
from steps.modelstore import ModelStore
from steps.spec import PipelineSpec, load_spec, spec_path


class Context:
    """Built lazily: a command that needs no catalog (corpus generation) never reads the spec."""

    def __init__(self, store: ModelStore | None = None, spec: Path | None = None) -> None:
        self._store = store
        self._spec_path = spec

    @cached_property
    def store(self) -> ModelStore:
        return self._store or ModelStore()

    @cached_property
    def catalog(self) -> Catalog:
        return default_catalog(self.store)

    @cached_property
    def spec_path(self) -> Path:
        return self._spec_path or spec_path()  # $CARDFLOW_SPEC or configs/pipeline.yaml

    @cached_property
    def spec(self) -> PipelineSpec:
        spec = load_spec(self.catalog, self.spec_path)
        check_distributions(spec, self.spec_path)
        return spec


def check_distributions(spec: PipelineSpec, path: Path) -> None:
    """Every distribution the spec names is a preset of configs/distributions.yaml (the steps layer, which loads
    the spec, does not read the corpus's presets)."""
    presets = load_presets()
    named = {"distributions": spec.distributions, "training.distributions": spec.training.distributions,
             "profile.distributions": spec.profile.distributions,
             "registry.gate.distribution": (spec.registry.gate.distribution,)}
    for key, values in named.items():
        unknown = [d for d in values if d not in presets]
        if unknown:
            raise ConfigError(f"{path}: {key}: unknown distribution(s) {', '.join(unknown)}; valid: {', '.join(presets)}")
