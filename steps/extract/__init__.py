"""Extraction: the fields of one classified document, from its OCR result.

- `extract/label-rules:v1` reads the visual zone (VIZ). On identity cards and passports every value
  sits below its printed label (any issuer's label, bilingual or not); where a label was not read, the
  value is taken where the issuer's template puts it. Driving licences number their fields (EU model:
  "1." surname … "9." categories), the value to the right of the number.
- `extract/mrz-first:v1` reads the machine-readable zone (MRZ): its lines — from `OcrResult.mrz` when the
  OCR variant read the band apart (a confidence per character), else from the page lines — are aligned to
  their format's layout (ICAO 9303 TD1 3×30, TD2 2×36, TD3 2×44, MRV-A 2×44, MRV-B 2×36; the French
  identity card's 2×36; common/mrz9303.py) with OCR confusions undone by position, and their check digits
  verified. A change at a character the OCR was sure of stands only where a check digit, the code table or
  the zone's structure confirms it; issuing-state and nationality codes are read, never taken from the
  classification (mrz_trust). A field whose check digit fails, names the MRZ may have truncated or garbled,
  and the fields the MRZ does not carry come from the label rules — for a layout the issuer layouts know;
  for any other the VIZ is not read and `sources["viz"]` is VIZ_SKIPPED.
- `extract/mrz-only:v1` is the MRZ part alone, without the VIZ (a baseline).

Dates are emitted as ISO `YYYY-MM-DD`; other values as read, with the repairs the issuers allow (their
number patterns, category codes, country codes); scoring compares after `normalise_field`. Everything
issuer- or template-specific comes from the variant's issuer layouts (steps/extract/layouts.py), a
model-store file read once at load. Modules: `values` (value parsing), `rows` (words → rows → segments),
`labels`, `grid`, `numbered`, `viz` (visual-zone readers), `mrz_find`, `mrz_align`, `mrz_repair`,
`mrz_trust`, `mrz_read` (the MRZ), `variants`, `layouts` / `layout_parts` (the issuer layouts).
"""

from steps.extract.labels import LabelParams, match_label
from steps.extract.layouts import (
    IssuerLayout,
    IssuerLayouts,
    LabelKeys,
    NumberedSlots,
    Template,
    layouts_file,
)
from steps.extract.mrz_align import align_line, assign_lines, mrz_layout
from steps.extract.mrz_find import MrzParams, band_candidates, mrz_candidates, mrz_formats
from steps.extract.mrz_read import VIZ_SKIPPED, MrzReading, mrz_fields, read_mrz, trusted
from steps.extract.mrz_repair import mrz_checks, tidy_names
from steps.extract.mrz_trust import resolve_code, settle
from steps.extract.values import fit_pattern, format_value, read_categories, read_date, read_number
from steps.extract.variants import (
    LabelRules,
    LabelRulesParams,
    MrzFirst,
    MrzFirstParams,
    MrzOnly,
    MrzOnlyParams,
    variants,
)
from steps.extract.viz import unknown_layout, viz_fields

__all__ = [
    "VIZ_SKIPPED", "IssuerLayout", "IssuerLayouts", "LabelKeys", "LabelParams", "LabelRules", "LabelRulesParams",
    "MrzFirst", "MrzFirstParams", "MrzOnly", "MrzOnlyParams", "MrzParams", "MrzReading", "NumberedSlots",
    "Template", "align_line", "assign_lines", "band_candidates", "fit_pattern", "format_value", "layouts_file",
    "match_label", "mrz_candidates", "mrz_checks", "mrz_fields", "mrz_formats", "mrz_layout", "read_categories",
    "read_date", "read_mrz", "read_number", "resolve_code", "settle", "tidy_names", "trusted", "unknown_layout",
    "variants", "viz_fields",
]
