"""The one catalog of every variant, and configurations (one variant per step) validated against it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from steps import classify, extract, ocr, ocr_mrz, preprocess
from steps.base import STEPS, Variant
from steps.errors import StepError, UnknownVariant
from steps.modelstore import ModelStore


@dataclass(frozen=True)
class Configuration:
    """One variant id per step."""

    preprocess: str
    ocr: str
    classify: str
    extract: str

    def ids(self) -> tuple[str, str, str, str]:
        return (self.preprocess, self.ocr, self.classify, self.extract)

    @property
    def id(self) -> str:
        return "|".join(self.ids())

    @property
    def short_hash(self) -> str:
        """A short stable hash for file and run names."""
        return hashlib.sha256(self.id.encode()).hexdigest()[:10]

    @property
    def label(self) -> str:
        """Compact human name: the four ids without their step prefixes."""
        return " | ".join(vid.split("/", 1)[1] for vid in self.ids())

    def as_dict(self) -> dict[str, str]:
        return dict(zip(STEPS, self.ids(), strict=True))


class Catalog:
    """Every variant by id; refuses duplicates and unknown ids (listing the valid ones)."""

    def __init__(self, variants: Iterable[Variant], store: ModelStore | None = None) -> None:
        self.store = store  # the model store the variants read (None: a hand-built catalog)
        self._variants: dict[str, Variant] = {}
        for variant in variants:
            if variant.step not in STEPS:
                raise StepError(f"variant {variant.id} has unknown step {variant.step!r}; steps: {', '.join(STEPS)}")
            if variant.id in self._variants:
                raise StepError(f"duplicate variant id {variant.id!r} in the catalog")
            self._variants[variant.id] = variant

    def __iter__(self):
        return iter(self._variants.values())

    def __len__(self) -> int:
        return len(self._variants)

    def ids(self, step: str | None = None) -> list[str]:
        return [vid for vid, v in self._variants.items() if step is None or v.step == step]

    def get(self, variant_id: str) -> Variant:
        if variant_id not in self._variants:
            step = variant_id.split("/", 1)[0]
            valid = self.ids(step) if step in STEPS else self.ids()
            raise UnknownVariant(f"unknown variant {variant_id!r}; valid: {', '.join(valid)}")
        return self._variants[variant_id]

    def resolve(self, step: str, name: str) -> str:
        """A full id from a full id, `model:version`, or a version that is unique within the step."""
        if step not in STEPS:
            raise UnknownVariant(f"unknown step {step!r}; steps: {', '.join(STEPS)}")
        name = name.strip()
        candidates = self.ids(step)
        if name in candidates:
            return name
        if f"{step}/{name}" in candidates:
            return f"{step}/{name}"
        by_version = [vid for vid in candidates if vid.rsplit(":", 1)[1] == name]
        if len(by_version) == 1:
            return by_version[0]
        hint = f" ({name!r} is ambiguous: {', '.join(by_version)})" if by_version else ""
        raise UnknownVariant(f"unknown {step} variant {name!r}{hint}; valid: {', '.join(candidates)}")

    def configuration(self, choice: Mapping[str, str]) -> Configuration:
        """A validated configuration from {step: id or name}; every step is required."""
        missing = [step for step in STEPS if not choice.get(step)]
        if missing:
            raise StepError(f"a configuration needs a variant for every step; missing: {', '.join(missing)}")
        return Configuration(**{step: self.resolve(step, choice[step]) for step in STEPS})

    def parse(self, text: str) -> Configuration:
        """A configuration from four ids or names separated by '|' (or whitespace), in step order."""
        parts = [p for p in (text.split("|") if "|" in text else text.split()) if p.strip()]
        if len(parts) != len(STEPS):
            raise StepError(f"a configuration is four variants ({' | '.join(STEPS)}); got {len(parts)} in {text!r}")
        return self.configuration(dict(zip(STEPS, parts, strict=True)))

    def describe(self) -> list[dict]:
        return [v.describe() for v in self]


def default_catalog(store: ModelStore | None = None) -> Catalog:
    """All variants CardFlow ships."""
    store = store or ModelStore()
    return Catalog([*preprocess.variants(), *ocr.variants(store), *ocr_mrz.variants(store), *classify.variants(store),
                    *extract.variants(store)], store)
