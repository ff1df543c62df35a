"""The visual zone (VIZ): the document type and issuer when the classifier gave none, whether the document's
layout is one the issuer layouts know, and every field the label rules read — labels, the template grid, or
numbered rows on driving licences."""

from __future__ import annotations

from collections.abc import Sequence

from common.mrz9303 import known_codes
from steps.extract.grid import positional_fields
from steps.extract.labels import LabelParams, labelled_fields
from steps.extract.layouts import IssuerLayouts
from steps.extract.mrz_find import mrz_candidates
from steps.extract.numbered import dl_evidence, numbered_fields
from steps.extract.rows import Row, group_rows
from steps.extract.text import alnum_words, levenshtein
from steps.records import Classification, ExtractInput, OcrResult


def infer_l1(ocr: OcrResult, classification: Classification, layouts: IssuerLayouts,
             rows: Sequence[Row] | None = None) -> str | None:
    """The document type: the classifier's; else from the MRZ line lengths; else from DL numbering."""
    if classification.l1:
        return classification.l1
    candidates = mrz_candidates(ocr)
    if candidates:
        return "passport" if any(len(c.text) >= 38 for c in candidates) else "id_card"
    rows = rows if rows is not None else group_rows(w for ln in ocr.lines for w in ln.words)
    return "driving_licence" if dl_evidence(rows, layouts) >= 2 else None


def classified_issuer(classification: Classification, layouts: IssuerLayouts) -> str | None:
    """The issuer code of the level-2 class, if it is one of the layouts' issuers."""
    code = (classification.l2 or "").split(".", 1)[0]
    return code if code in layouts.issuer_by_code else None


UNKNOWN = "unknown"  # the open-set classifiers' level-2 label (or its issuer part) for an issuer none knows


def unknown_layout(classification: Classification, layouts: IssuerLayouts, mrz_country: str | None = None) -> bool:
    """Whether the document's layout is none of the issuer layouts': the classifier says so (level 2
    'unknown', or an issuer the layouts do not have), or the MRZ's issuing state is a known code (ICAO's)
    that is no layout's. No level-2 class and no MRZ (or an MRZ code nobody knows, garbled maybe) are no
    evidence either way: the layouts are tried."""
    if classification.l2:
        code = classification.l2.split(".", 1)[0]
        if code == UNKNOWN or code not in layouts.issuer_by_code:
            return True
    code = (mrz_country or "").ljust(3, "<")
    return bool(mrz_country) and code in known_codes() and mrz_country not in layouts.issuer_by_code


def infer_issuer(rows: Sequence[Row], layouts: IssuerLayouts) -> str | None:
    """The issuer whose country name the header shows ('… OF AURELIA'), when the classifier gave none."""
    for row in rows[:4]:
        for word in alnum_words(row.text):
            close = [code for name, code in layouts.country_words.items()
                     if len(word) >= 5 and levenshtein(word, name) <= 1]
            if len(close) == 1:
                return close[0]
    return None


def viz_fields(item: ExtractInput, params: LabelParams, layouts: IssuerLayouts) -> dict[str, str]:
    """Every field the label rules read from the visual zone."""
    rows = group_rows(w for ln in item.ocr.lines for w in ln.words)
    if not rows:
        return {}
    l1 = infer_l1(item.ocr, item.classification, layouts, rows)
    issuer = classified_issuer(item.classification, layouts) or infer_issuer(rows, layouts)
    if l1 == "driving_licence":
        return numbered_fields(rows, params, issuer, layouts)
    found, labels = labelled_fields(rows, params, l1, issuer, layouts)
    if l1 in layouts.grid_types and issuer and params.positional:
        found |= positional_fields(rows, item.ocr, l1, issuer, params, labels, found, layouts)
    if len(found) < 2 and (l1 is None or dl_evidence(rows, layouts) >= 2):  # no labels: numbered rows after all?
        found = numbered_fields(rows, params, issuer, layouts) or found
    return found
