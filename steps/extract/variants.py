"""The extraction variants: label rules over the visual zone, the MRZ first (the VIZ where a check fails), and
the MRZ alone. Each reads its issuer layouts from the model store (`extract/layouts/<layouts>.json`) once, at
load, and hands them to the readers. The VIZ is read only for a layout they know: for another (the classifier
says 'unknown' or names an issuer they lack; for mrz-first also an MRZ issued by a state they lack) the
extraction has no VIZ field and `sources["viz"]` is VIZ_SKIPPED."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from steps.base import Variant
from steps.errors import StepError
from steps.extract.labels import LabelParams
from steps.extract.layouts import IssuerLayouts, layouts_file
from steps.extract.mrz_find import MrzParams
from steps.extract.mrz_read import VIZ_SKIPPED, mrz_extraction
from steps.extract.viz import unknown_layout, viz_fields
from steps.modelstore import ModelStore
from steps.records import ExtractInput, Extraction

DEFAULT_LAYOUTS = "synthetic"


@dataclass(frozen=True)
class LabelRulesParams(LabelParams):
    layouts: str = DEFAULT_LAYOUTS  # issuer layouts: extract/layouts/<layouts>.json in the model store


@dataclass(frozen=True)
class MrzOnlyParams(MrzParams):
    layouts: str = DEFAULT_LAYOUTS


@dataclass(frozen=True)
class MrzFirstParams:
    mrz: MrzParams = field(default_factory=MrzParams)
    labels: LabelParams = field(default_factory=LabelParams)
    layouts: str = DEFAULT_LAYOUTS


P = TypeVar("P", LabelRulesParams, MrzFirstParams, MrzOnlyParams)


class _ExtractVariant(Variant[ExtractInput, Extraction, P]):
    """An extraction variant over issuer layouts: a model-store file, verified and parsed once at load."""

    step = "extract"

    def __init__(self, version: str, params: P, description: str = "", store: ModelStore | None = None) -> None:
        super().__init__(version, params, description)
        self.store = store or ModelStore()
        self._layouts: IssuerLayouts | None = None

    def model_files(self) -> dict[str, Path]:
        return {"layouts.json": self.store.root / layouts_file(self.params.layouts)}

    def _load(self) -> None:
        self._layouts = IssuerLayouts.load(self.store.path(layouts_file(self.params.layouts)))

    @property
    def layouts(self) -> IssuerLayouts:
        """The issuer layouts the variant reads with (loaded on first use)."""
        self.load()
        if self._layouts is None:
            raise StepError(f"{self.id}: issuer layouts {self.params.layouts!r} were not loaded")
        return self._layouts


class LabelRules(_ExtractVariant[LabelRulesParams]):
    """Label-anchored rules over the visual zone (numbered rows on driving licences)."""

    model = "label-rules"

    def process(self, item: ExtractInput) -> Extraction:
        if unknown_layout(item.classification, self.layouts):
            return Extraction(item.doc_id, {}, sources={"viz": VIZ_SKIPPED})
        fields = viz_fields(item, self.params, self.layouts)
        return Extraction(item.doc_id, fields, sources=dict.fromkeys(fields, "viz"))


class MrzFirst(_ExtractVariant[MrzFirstParams]):
    """The MRZ where its check digits hold, the label rules for everything else."""

    model = "mrz-first"

    def process(self, item: ExtractInput) -> Extraction:
        return mrz_extraction(item, self.params.mrz, self.params.labels, self.layouts)


class MrzOnly(_ExtractVariant[MrzOnlyParams]):
    """The MRZ alone (a baseline): no visual-zone fallback."""

    model = "mrz-only"

    def process(self, item: ExtractInput) -> Extraction:
        return mrz_extraction(item, self.params, None, self.layouts)


def variants(store: ModelStore | None = None) -> list[Variant]:
    """The extraction catalog (issuer layouts from `store`, by default the project's model store)."""
    store = store or ModelStore()
    return [
        LabelRules("v1", LabelRulesParams(),
                   "label-anchored rules over the visual zone; numbered rows on driving licences", store),
        MrzFirst("v1", MrzFirstParams(),
                 "MRZ repaired and check-digit verified; label rules where a check fails and for the rest", store),
        MrzOnly("v1", MrzOnlyParams(), "the MRZ alone, repaired and check-digit verified (baseline, no VIZ)",
                store),
    ]
