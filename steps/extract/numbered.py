"""Driving licences (EU model): numbered rows ('1.' surname … '9.' categories), each value to the right of its
field number; rows whose numbers were not read are placed by their content and spacing."""

from __future__ import annotations

import itertools
import re
import statistics
from collections.abc import Sequence

from steps.extract.labels import LabelParams
from steps.extract.layouts import IssuerLayouts, NumberedSlots
from steps.extract.rows import Row, is_header, row_baseline, split_segments, typical_height
from steps.extract.text import alnum
from steps.extract.values import clean_text, format_value, split_date
from steps.records import Word

# Field numbers as OCR reads them: exactly, without their dot, and noisier.
_DL_LOOSE = re.compile(r"^[\"'‘“]?([1235679]|4[abc])[.,:;]?$")
_DL_NUMBER = re.compile(r"^[\"'‘“>»(]?([1-9Il|]|[4Aa][abcsehB68]|[as]?[ce])[.,:;)»]?$")  # noisy reads too
_DL_4B = re.compile(r"^[4Aas]?[bBh6-8][.,:;]?$")
# The fields read from one slot each (the birth date and place share theirs, as do the issue and expiry dates).
_ONE_PER_SLOT = ("surname", "given_names", "authority", "document_number", "categories")


def _is_number_token(text: str) -> bool:
    return bool(_DL_NUMBER.match(text.strip())) or text.strip() in ("»", ">", "s")


def _dl_anchor(row: Row, dl: NumberedSlots) -> tuple[str, float] | None:
    """A row's slot and the weight of the evidence: an exactly read field number, or unmistakable content
    (two dates: the issue / expiry slot; a date then a place: the birth slot), weigh 1; a number read
    without its dot 0.5."""
    first = row.words[0].text.strip()
    if first in dl.exact:
        return dl.exact[first], 1.0
    tokens = [w.text for w in row.words if not _is_number_token(w.text)]
    first_date, rest = split_date(tokens)
    if first_date and rest:
        if split_date(rest, from_end=True)[0]:
            return (dl.slot_of["date_of_issue"], 1.0) if "date_of_issue" in dl.slot_of else None
        if clean_text(rest) and not any(c.isdigit() for c in "".join(rest)):
            return (dl.slot_of["date_of_birth"], 1.0) if "date_of_birth" in dl.slot_of else None
    loose = _DL_LOOSE.match(first)
    if loose and len(row.words) > 1:
        slot = dl.exact.get(loose.group(1) + ".", loose.group(1))
        return (slot, 0.5) if slot in dl.baseline else None
    return None


def _spacing_scale(baselines: Sequence[float], guess: float, pitch: int) -> float:
    """The scale from the spacing of consecutive rows (mostly one pitch apart); `guess` (from the text
    height, which blur inflates) only bounds the gaps considered."""
    ordered = sorted(baselines)
    gaps = [b - a for a, b in itertools.pairwise(ordered) if 0.35 < (b - a) / (pitch * guess) < 1.5]
    return statistics.median(gaps) / pitch if gaps else guess


def _dl_fit(rows: Sequence[Row], typical: float, dl: NumberedSlots) -> tuple[float, float] | None:
    """Offset and scale mapping the template's row baselines onto the image: the hypothesis (from one
    anchor row and the row spacing, or from two anchors) that most anchors agree with."""
    anchors = [(found[0], row_baseline(row, typical), found[1]) for row in rows if (found := _dl_anchor(row, dl))]
    if not typical or not anchors:
        return None
    value_rows = [r for r in rows if any(len(alnum(w.text)) >= 3 for w in r.words)]
    spacing = _spacing_scale([row_baseline(r, typical) for r in value_rows], typical / dl.value_height, dl.pitch)
    hypotheses = [(y - spacing * dl.baseline[slot], spacing) for slot, y, _ in anchors]
    for (slot_a, ya, _), (slot_b, yb, _) in itertools.combinations(anchors, 2):
        if dl.baseline[slot_a] != dl.baseline[slot_b]:
            scale = (ya - yb) / (dl.baseline[slot_a] - dl.baseline[slot_b])
            if 0.7 * spacing <= scale <= 1.4 * spacing:
                hypotheses.append((ya - scale * dl.baseline[slot_a], scale))

    def support(hypothesis: tuple[float, float]) -> tuple[float, float]:
        offset, scale = hypothesis
        errors = [(abs(y - offset - scale * dl.baseline[slot]), weight) for slot, y, weight in anchors]
        inliers = [(e, w) for e, w in errors if e <= 0.3 * dl.pitch * scale]
        return sum(w for _, w in inliers), -sum(e for e, _ in inliers)

    return max(hypotheses, key=support)


def _dl_slots(rows: Sequence[Row], layouts: IssuerLayouts,
              dl: NumberedSlots) -> tuple[dict[str, list[Word]], float]:
    """Rows assigned to the numbered slots (rows near one slot merged), and the scale."""
    rows = [r for r in rows if not is_header(r, layouts.header_words)]
    typical = typical_height(rows)
    fit = _dl_fit(rows, typical, dl)
    if fit is None:
        return {}, 1.0
    offset, scale = fit
    slots: dict[str, list[Word]] = {}
    for row in rows:
        baseline = row_baseline(row, typical)
        slot, distance = min(((s, abs(baseline - offset - scale * y)) for s, y in dl.baseline.items()),
                             key=lambda t: t[1])
        if distance <= 0.4 * dl.pitch * scale:
            slots.setdefault(slot, []).extend(row.words)
    return {s: sorted(ws, key=lambda w: w.box[0]) for s, ws in slots.items()}, scale


def _dl_values(words: list[Word], label_x: float | None, scale: float, dl: NumberedSlots) -> list[Word]:
    """A slot's value words: the number (and anything left of the value column) dropped; a number run
    into its value ('oA' for '9. A') loses its first characters."""
    if label_x is None:
        return words[1:] if words and _is_number_token(words[0].text) else words
    value_x = label_x + dl.number_gap * scale
    kept = []
    for w in words:
        if w.box[0] >= label_x + 0.5 * dl.number_gap * scale:
            kept.append(w)
        elif w.box[2] > value_x + 0.3 * dl.number_gap * scale and len(w.text) >= 2:
            cut = max(1, round(len(w.text) * (value_x - w.box[0]) / max(1, w.box[2] - w.box[0])))
            kept.append(Word(w.text[cut:], w.confidence, (int(value_x), w.box[1], w.box[2], w.box[3])))
    return kept


def _dl_dates(words: list[Word], label_x: float | None, scale: float, dl: NumberedSlots) -> dict[str, str]:
    """The issue / expiry row, '4a. <issue>   4b. <expiry>': a lone date is placed by its column."""
    words = [w for w in words if not _DL_4B.match(w.text.strip())]
    tokens = [w.text for w in words]
    first, rest = split_date(tokens)
    last, _ = split_date(rest if first else tokens, from_end=True)
    if first and last:
        return {"date_of_issue": first, "date_of_expiry": last}
    single = first or last
    if not single:
        return {}
    start = label_x if label_x is not None else words[0].box[0] - dl.number_gap * scale
    second_column = words[0].box[0] - start > 0.6 * dl.second_column * scale
    return {"date_of_expiry" if second_column else "date_of_issue": single}


def numbered_fields(rows: Sequence[Row], params: LabelParams, issuer: str | None,
                    layouts: IssuerLayouts) -> dict[str, str]:
    """Driving licences: numbered rows ("1." … "9."), each value to the right of its number; none when the
    layouts have no numbered rows."""
    dl = layouts.numbered
    if dl is None:
        return {}
    slots, scale = _dl_slots(rows, layouts, dl)
    if not slots:
        return {}
    number_xs = [ws[0].box[0] for ws in slots.values() if ws and _is_number_token(ws[0].text)]
    label_x = float(statistics.median(number_xs)) if number_xs else None
    values = {slot: _dl_values(ws, label_x, scale, dl) for slot, ws in slots.items()}
    out: dict[str, str] = {}
    for name in _ONE_PER_SLOT:
        words = values.get(dl.slot_of.get(name, ""), [])
        if words and name != "categories":
            words = list(split_segments(words, 3.0 * scale * dl.value_height)[0])
        value = format_value(name, [w.text for w in words], "driving_licence", issuer, layouts,
                             params.number_patterns)
        if value:
            out[name] = value
    birth_date, place = split_date([w.text for w in values.get(dl.slot_of.get("date_of_birth", ""), [])])
    place_text = clean_text(place)
    if birth_date:
        out["date_of_birth"] = birth_date
    if place_text:
        out["place_of_birth"] = place_text
    out.update(_dl_dates(values.get(dl.slot_of.get("date_of_issue", ""), []), label_x, scale, dl))
    return out


def dl_evidence(rows: Sequence[Row], layouts: IssuerLayouts) -> int:
    """How many rows start with an exactly read driving-licence field number."""
    dl = layouts.numbered
    return 0 if dl is None else sum(row.words[0].text.strip() in dl.exact for row in rows)
