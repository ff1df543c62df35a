"""Reading the MRZ: fields of the repaired lines, the best reading over formats and layouts, which fields stand
without the visual zone, and the merge of MRZ and VIZ fields into an extraction."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import cache

from common.icao import FILLER, transliterate
from common.text import fold
from steps.extract.layouts import IssuerLayout, IssuerLayouts
from steps.extract.mrz_align import LineFit, assign_lines, mrz_layout
from steps.extract.mrz_find import LOOKALIKES, MRZ_WIDTH, MrzCandidate, MrzParams, mrz_candidates, mrz_formats
from steps.extract.mrz_repair import REPAIRS, mrz_checks
from steps.extract.viz import classified_issuer, infer_l1
from steps.normalize import mrz_date
from steps.records import ExtractInput, Extraction, OcrResult


def _names(field_text: str) -> tuple[str, str]:
    surname, _, given = field_text.partition(FILLER * 2)
    return " ".join(surname.replace(FILLER, " ").split()), " ".join(given.replace(FILLER, " ").split())


def mrz_fields(kind: str, lines: Sequence[str | None]) -> dict[str, str]:
    """The fields of a (repaired) MRZ: numbers, ISO dates, sex, nationality, names ('<' → space)."""
    if kind in ("TD3", "TD2"):
        top, data = lines
        optional_end = 42 if kind == "TD3" else 35  # TD3: personal number and its check digit; TD2: final
        number, optional = (data[:9], data[28:optional_end]) if data else ("", "")
        parts = (data[13:19], data[21:27], data[20], data[10:13]) if data else None
        name_field = top[5:] if top else ""
    else:
        top, data, name_field = lines[0], lines[1], lines[2] or ""
        number, optional = (top[5:14], top[15:30]) if top else ("", "")
        parts = (data[0:6], data[8:14], data[7], data[15:18]) if data else None
    out = {name: value.replace(FILLER, "") for name, value in (("document_number", number),
                                                               ("personal_number", optional))
           if value.strip(FILLER)}
    if parts:
        birth, expiry, sex, nationality = parts
        dates = {"date_of_birth": mrz_date(birth, "birth"), "date_of_expiry": mrz_date(expiry, "expiry")}
        out |= {name: iso for name, iso in dates.items() if iso}
        if sex in "MFX":
            out["sex"] = sex
        if nationality.strip(FILLER):
            out["nationality"] = nationality.replace(FILLER, "")
    surname, given = _names(name_field)
    out |= {name: value for name, value in (("surname", surname), ("given_names", given)) if value}
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


def _reading(kind: str, fits: list[LineFit | None], params: MrzParams) -> MrzReading:
    width = MRZ_WIDTH[kind]
    raw = [f.line if f else FILLER * width for f in fits]
    reads = [f.read if f else " " * width for f in fits]
    if params.repair:
        raw = REPAIRS[kind](raw, reads)
    lines = tuple(line if f else None for line, f in zip(raw, fits, strict=True))
    name_index = 2 if kind == "TD1" else 0
    name_fit, name_line = fits[name_index], lines[name_index]
    name_field = (name_line if kind == "TD1" else name_line[5:]) if name_line else ""
    return MrzReading(kind, lines, mrz_checks(kind, lines), mrz_fields(kind, lines),
                      names_full=bool(name_field) and not name_field.endswith(FILLER),
                      names_repaired=name_fit is not None and name_line != name_fit.source)


def _read_format(kind: str, candidates: Sequence[MrzCandidate], issuer: str | None, params: MrzParams,
                 layouts: IssuerLayouts) -> MrzReading | None:
    """The MRZ read in one format: the lines aligned to the generic ICAO layout and, if allowed, to
    issuers' own layouts (the classified issuer's, or every issuer's when unknown, of those that write this
    format; none for TD2); the
    reading with most valid check digits wins (the classified issuer's layout counting half a check
    more), then the cheapest repair."""
    specs: list[IssuerLayout | None] = [None]
    if params.issuer_layouts and kind != "TD2":
        own = layouts.issuer(issuer)
        specs += [s for s in ([own] if issuer else layouts.issuers) if s is not None and kind in s.mrz_codes]
    best: tuple[tuple[float, float], MrzReading] | None = None
    for spec in specs:
        code = spec.code if spec else None
        fits = assign_lines(candidates, mrz_layout(kind, spec), params.max_line_cost)
        if all(f is None for f in fits):
            continue
        reading = _reading(kind, fits, params)
        bonus = 0.5 if code is not None and code == issuer else 0.0
        score = (sum(reading.checks.values()) + bonus, -sum(f.cost for f in fits if f))
        if best is None or score > best[0]:
            best = (score, reading)
    return best[1] if best else None


def read_mrz(ocr: OcrResult, l1: str | None, issuer: str | None, params: MrzParams,
             layouts: IssuerLayouts) -> MrzReading | None:
    """Find, repair, check and parse the MRZ; None when the document shows none. Where its format is in
    doubt (`mrz_formats`), a later format's reading is taken only with more valid check digits."""
    candidates = mrz_candidates(ocr, params.min_length)
    best: MrzReading | None = None
    for kind in mrz_formats(l1, candidates):
        reading = _read_format(kind, candidates, issuer, params, layouts)
        if reading and (best is None or sum(reading.checks.values()) > sum(best.checks.values())):
            best = reading
    return best


_FIELD_CHECK = {"document_number": "document_number", "date_of_birth": "birth_date",
                "date_of_expiry": "expiry_date"}


def trusted(reading: MrzReading, name: str, issuer: str | None, codes: Collection[str]) -> bool:
    """Whether an MRZ field stands without the VIZ: its check digit passes (TD1 / TD2 optional data: the
    composite), names are neither full (maybe truncated) nor repaired, the code is the classified issuer's
    (else one of the known `codes`)."""
    if name in _FIELD_CHECK:
        return reading.checks.get(_FIELD_CHECK[name], False)
    if name == "personal_number":
        return reading.checks.get("personal_number" if reading.kind == "TD3" else "final", False)
    if name in ("surname", "given_names"):
        return not reading.names_full and not reading.names_repaired
    if name == "nationality":
        return reading.fields.get(name) in (codes if issuer is None else (issuer,))
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


def mrz_extraction(item: ExtractInput, params: MrzParams, viz: dict[str, str] | None,
                   layouts: IssuerLayouts) -> Extraction:
    """The MRZ's fields; where one is not trusted and the VIZ (if given) has it, the VIZ value; the VIZ
    for the fields the MRZ does not carry."""
    issuer = classified_issuer(item.classification, layouts)
    reading = read_mrz(item.ocr, infer_l1(item.ocr, item.classification, layouts), issuer, params, layouts)
    viz = viz or {}
    if reading is None:
        return Extraction(item.doc_id, dict(viz), sources=dict.fromkeys(viz, "viz"))
    fields: dict[str, str] = {}
    sources: dict[str, str] = {}
    for name, value in reading.fields.items():
        use_viz = _prefer_viz(reading, name, value, viz, issuer, layouts.codes)
        fields[name], sources[name] = (viz[name], "viz") if use_viz else (value, "mrz")
    for name, value in viz.items():
        if name not in fields:
            fields[name], sources[name] = value, "viz"
    return Extraction(item.doc_id, fields, tuple(line for line in reading.lines if line is not None),
                      reading.checks, sources)

