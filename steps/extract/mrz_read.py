"""Reading the MRZ: fields of the repaired lines, the best reading over formats (and, for the issuer whose code
the MRZ shows, its own layout), which fields stand without the visual zone, and the merge of MRZ and VIZ fields
into an extraction.

The MRZ is read from `OcrResult.mrz` when the OCR variant read the band apart (a confidence per character),
else from the page's lines. Codes are read, never assigned from the classification (mrz_trust.py). The VIZ
readers run only for a layout the issuer layouts know (`viz.unknown_layout`): for any other document the
fields come from the MRZ alone and `sources` says so (`sources["viz"] == VIZ_SKIPPED`).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import cache

from common.icao import FILLER, transliterate
from common.mrz9303 import FIELDS, SHAPE, known_codes, parse
from common.text import fold
from steps.extract.labels import LabelParams
from steps.extract.layouts import IssuerLayouts
from steps.extract.mrz_align import LineFit, assign_lines, mrz_layout
from steps.extract.mrz_find import (
    LOOKALIKES,
    MrzCandidate,
    MrzParams,
    band_candidates,
    band_formats,
    mrz_candidates,
    mrz_formats,
)
from steps.extract.mrz_repair import REPAIRS, keep_composite, mrz_checks
from steps.extract.mrz_trust import settle
from steps.extract.viz import classified_issuer, infer_l1, unknown_layout, viz_fields
from steps.normalize import mrz_date
from steps.records import ExtractInput, Extraction, OcrResult

VIZ_SKIPPED = "skipped: unknown layout"  # sources["viz"] when the visual zone was not read


def mrz_fields(kind: str, lines: Sequence[str | None]) -> dict[str, str]:
    """The fields of a (repaired) MRZ under CardFlow's names: numbers, optional data as personal number,
    ISO dates, sex, nationality, names ('<' → space); none from a line that was not read."""
    width = SHAPE[kind][1]
    parsed = parse([line if line is not None else FILLER * width for line in lines], kind).fields
    line_of = {spec.name: spec.line for spec in FIELDS[kind]}
    names_line = line_of.get("names", 0)
    line_of |= {"surname": line_of.get("surname", names_line), "name": line_of.get("given_names", names_line),
                "nationality": line_of.get("nationality", 0)}  # the French card's: its country
    out: dict[str, str] = {}
    for name, value in parsed.items():
        if name not in line_of or lines[line_of[name]] is None:
            continue
        if name == "document_number" and value:
            out[name] = value.replace(FILLER, "")
        elif name == "optional_data" and value:
            out["personal_number"] = value
        elif name in ("birth_date", "expiry_date") and (iso := mrz_date(value, name[:-5])):
            out["date_of_birth" if name == "birth_date" else "date_of_expiry"] = iso
        elif name == "sex" and value in ("M", "F", "X"):
            out[name] = value
        elif name == "nationality" and value:
            out[name] = value.replace(FILLER, "")
        elif name in ("surname", "name") and value:
            out["surname" if name == "surname" else "given_names"] = value
    return out


@dataclass(frozen=True)
class MrzReading:
    """An MRZ as read and repaired: lines (None where not read), check results, fields, name caveats."""

    kind: str
    lines: tuple[str | None, ...]
    checks: dict[str, bool]
    fields: dict[str, str]
    names_full: bool  # the name field ends without a filler: the names may be truncated
    names_repaired: bool  # the name line needed repairs (look-alike fillers, length): less trustworthy

    @property
    def country(self) -> str | None:
        """The issuing state's code as read ('D' for 'D<<'); None when its line was not read."""
        top = self.lines[0]
        return top[2:5].replace(FILLER, "") if top else None


def _reading(kind: str, fits: list[LineFit | None], params: MrzParams, known: Collection[str]) -> MrzReading:
    width = SHAPE[kind][1]
    raw = [f.line if f else FILLER * width for f in fits]
    reads = [f.read if f else " " * width for f in fits]
    sure = [[bool(f) and c >= params.sure and r != " " for c, r in zip(f.confidence, f.read, strict=True)]
            if f else [False] * width for f in fits]
    unsure = [[f.per_character and c < params.sure for c in f.confidence] if f else [False] * width
              for f in fits]
    if params.repair:
        raw = keep_composite(kind, raw, REPAIRS[kind](raw, reads, unsure))
    raw = settle(kind, raw, reads, sure, known)
    lines = tuple(line if f else None for line, f in zip(raw, fits, strict=True))
    name_index = 2 if kind == "TD1" else 0
    name_fit, name_line = fits[name_index], lines[name_index]
    name_field = (name_line if kind == "TD1" else name_line[5:]) if name_line else ""
    return MrzReading(kind, lines, mrz_checks(kind, lines), mrz_fields(kind, lines),
                      names_full=bool(name_field) and not name_field.endswith(FILLER),
                      names_repaired=name_fit is not None and name_line != name_fit.source)


def _score(reading: MrzReading, fits: Sequence[LineFit | None], bonus: float) -> tuple[float, float]:
    return sum(reading.checks.values()) + bonus, -sum(f.cost for f in fits if f)


def _read_format(kind: str, candidates: Sequence[MrzCandidate], params: MrzParams, layouts: IssuerLayouts,
                 known: Collection[str]) -> MrzReading | None:
    """The MRZ read in one format: the lines aligned to the generic layout and, if allowed, to the own
    layouts of the issuers that write this format (the issuer whose code the generic reading shows; each
    when that code is none known, garbled maybe; none for another known code) — a reading in an issuer's
    layout counts only if its code is what the OCR read there (mrz_trust: codes are read, not assigned).
    The reading with most valid check digits wins (an issuer's layout counting half a check more), then the
    cheapest repair."""
    fits = assign_lines(candidates, mrz_layout(kind), params.max_line_cost)
    if all(f is None for f in fits):
        return None
    best = _reading(kind, fits, params, known)
    best_score = _score(best, fits, 0.0)
    if not params.issuer_layouts:
        return best
    shown = layouts.issuer(best.country)
    if shown is None and (best.lines[0] or "")[2:5] in known:
        return best  # a known code that is no layout's
    for spec in [shown] if shown is not None else layouts.issuers:
        if kind not in spec.mrz_codes:
            continue
        own = assign_lines(candidates, mrz_layout(kind, spec), params.max_line_cost)
        if any(f is not None for f in own):
            reading = _reading(kind, own, params, known)
            if reading.country == spec.code and (score := _score(reading, own, 0.5)) > best_score:
                best, best_score = reading, score
    return best


def _fits_format(reading: MrzReading) -> bool:
    """Whether the reading starts with a document code its format allows (a TD3 a 'P', a visa a 'V' …)."""
    top = reading.lines[0]
    return top is not None and top[:1] in _FIRST_LETTERS[reading.kind]


_FIRST_LETTERS = {"TD1": "IAC", "TD2": "IACPV", "TD3": "P", "MRV-A": "V", "MRV-B": "V", "FRA-CNI": "I"}


def read_mrz(ocr: OcrResult, l1: str | None, params: MrzParams, layouts: IssuerLayouts) -> MrzReading | None:
    """Find, repair, check and parse the MRZ; None when the document shows none. Where its format is in
    doubt (`mrz_formats`), a later format's reading is taken only with a document code of its format where
    the earlier one's is not, or as fitting and with more valid check digits."""
    candidates = band_candidates(ocr) if ocr.mrz else mrz_candidates(ocr, params.min_length)
    known = known_codes(layouts.codes)
    best: MrzReading | None = None
    for kind in (band_formats if ocr.mrz else mrz_formats)(l1, candidates):
        reading = _read_format(kind, candidates, params, layouts, known)
        if reading and (best is None or (_fits_format(reading), sum(reading.checks.values()))
                        > (_fits_format(best), sum(best.checks.values()))):
            best = reading
    return best


_FIELD_CHECK = {"document_number": "document_number", "date_of_birth": "birth_date",
                "date_of_expiry": "expiry_date"}


def trusted(reading: MrzReading, name: str, issuer: str | None, codes: Collection[str]) -> bool:
    """Whether an MRZ field stands without the VIZ: its check digit passes (TD1 / TD2 optional data: the
    composite), names are neither full (maybe truncated) nor repaired, the nationality is a known code
    (`codes`) and, where the classifier named an issuer of the layouts, not another of their codes."""
    if name in _FIELD_CHECK:
        return reading.checks.get(_FIELD_CHECK[name], False)
    if name == "personal_number":
        return reading.checks.get("personal_number" if reading.kind == "TD3" else "final", False)
    if name in ("surname", "given_names"):
        return not reading.names_full and not reading.names_repaired
    if name == "nationality":
        code = reading.fields.get(name, "")
        return code.ljust(3, FILLER) in codes and (issuer is None or code == issuer)
    return True


def same_name_but_fillers(mrz_value: str, viz_value: str) -> bool:
    """Whether MRZ names differ from the VIZ names only where the MRZ shows a filler look-alike: a letter
    where the VIZ has a space ('ARTHURKDEAN' / 'ARTHUR DEAN'), or an extra one beside a space
    ('IVANKA KAYNUR' / 'IVANKA AYNUR')."""
    mrz_text = FILLER.join(re.sub(r"[^A-Z]+", " ", fold(mrz_value)).split())
    viz_text = transliterate(viz_value)
    if mrz_text == viz_text:
        return False

    @cache
    def match(i: int, j: int) -> bool:
        if i == len(mrz_text) or j == len(viz_text):
            return i == len(mrz_text) and j == len(viz_text)
        a, b = mrz_text[i], viz_text[j]
        if (a == b or (b == FILLER and a in LOOKALIKES)) and match(i + 1, j + 1):
            return True
        return a in LOOKALIKES and FILLER in viz_text[max(0, j - 1):j + 1] and match(i + 1, j)

    return match(0, 0)


def _prefer_viz(reading: MrzReading, name: str, value: str, viz: dict[str, str], issuer: str | None,
                codes: Collection[str]) -> bool:
    if name not in viz:
        return False
    if not trusted(reading, name, issuer, codes):
        return True
    return name in ("surname", "given_names") and same_name_but_fillers(value, viz[name])


def mrz_extraction(item: ExtractInput, params: MrzParams, labels: LabelParams | None,
                   layouts: IssuerLayouts) -> Extraction:
    """The MRZ's fields; with `labels` (mrz-first), the VIZ too — if its layout is known: where an MRZ field
    is not trusted and the VIZ has it, the VIZ value; the VIZ for the fields the MRZ does not carry."""
    if not item.ocr.lines and not item.ocr.mrz:
        return Extraction(item.doc_id, {})
    reading = read_mrz(item.ocr, infer_l1(item.ocr, item.classification, layouts), params, layouts)
    skip = unknown_layout(item.classification, layouts, reading.country if reading else None)
    viz = viz_fields(item, labels, layouts) if labels is not None and not skip else {}
    note = {"viz": VIZ_SKIPPED} if labels is not None and skip else {}
    if reading is None:
        return Extraction(item.doc_id, dict(viz), sources=dict.fromkeys(viz, "viz") | note)
    issuer = classified_issuer(item.classification, layouts)
    codes = known_codes(layouts.codes)
    fields: dict[str, str] = {}
    sources: dict[str, str] = {}
    for name, value in reading.fields.items():
        use_viz = _prefer_viz(reading, name, value, viz, issuer, codes)
        fields[name], sources[name] = (viz[name], "viz") if use_viz else (value, "mrz")
    for name, value in viz.items():
        if name not in fields:
            fields[name], sources[name] = value, "viz"
    return Extraction(item.doc_id, fields, tuple(line for line in reading.lines if line is not None),
                      reading.checks, sources | note)
