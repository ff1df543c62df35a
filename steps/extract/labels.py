"""Label matching on the visual zone: OCR row segments matched against every issuer's labels, and each value
read below its label (identity cards and passports)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from steps.extract.layouts import IssuerLayouts, LabelKeys
from steps.extract.rows import Row, split_segments
from steps.extract.text import alnum, label_words, levenshtein
from steps.extract.values import format_value
from steps.records import Word


@lru_cache(maxsize=4096)
def match_label(text: str, tolerance: float, keys: LabelKeys,
                issuer: str | None = None) -> tuple[str | None, float] | None:
    """The field a label segment names (None for type/code labels) and the match score, or None.

    Every run of the segment's words is compared with every key (edit distance relative to the key's
    length, at most `tolerance`); runs that leave words over score worse, so a whole bilingual label
    ('VORNAMEN / GIVEN NAMES') beats its parts and 'GIVEN NAMES' beats 'NAME'. Keys of other issuers
    than the classified one (common labels aside: English, here) score slightly worse.
    """
    words = label_words(text).split()
    total = sum(len(w) for w in words)
    best: tuple[float, str | None] | None = None
    for start in range(len(words)):
        for end in range(start + 1, min(len(words), start + 6) + 1):
            span = "".join(words[start:end])
            for key in keys.keys:
                if abs(len(key.compact) - len(span)) > tolerance * len(key.compact):
                    continue
                distance = levenshtein(span, key.compact)
                if distance > tolerance * len(key.compact) or (len(key.compact) <= 3 and distance):
                    continue
                score = distance / len(key.compact) + 0.3 * (total - len(span)) / total
                if issuer and issuer not in key.issuers and not key.common:
                    score += 0.05
                if best is None or score < best[0]:
                    best = (score, key.field)
    return (best[1], best[0]) if best else None


@dataclass(frozen=True)
class LabelParams:
    column_gap: float = 2.2  # a gap wider than this many text heights splits a row into columns
    label_tolerance: float = 0.34  # edit distance allowed in a label, relative to its length
    value_distance: float = 4.5  # the value row lies at most this many label heights below its label
    number_patterns: bool = True  # repair document / personal numbers to the issuers' patterns
    positional: bool = True  # where a label was not read: the value where the issuer's template puts it


@dataclass(frozen=True)
class Segment:
    """Words of one row between large gaps: a label (of a field, or None for type/code) or not."""

    words: tuple[Word, ...]
    field: str | None
    matched: bool

    @property
    def x0(self) -> int:
        return min(w.box[0] for w in self.words)

    @property
    def top(self) -> int:
        return min(w.box[1] for w in self.words)

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


def label_segments(row: Row, params: LabelParams, issuer: str | None, keys: LabelKeys) -> list[Segment]:
    """A row split into segments, each matched against the labels (a label has lower-case letters,
    values are upper case: an all-capital segment must match a key exactly)."""
    out = []
    for words in split_segments(row.words, params.column_gap * row.height):
        text = " ".join(w.text for w in words)
        found = match_label(text, params.label_tolerance, keys, issuer)
        matched = found is not None and (any(c.islower() for c in text) or found[1] == 0.0)
        out.append(Segment(words, found[0] if found and matched else None, matched))
    return out


def _value_below(rows: Sequence[Row], index: int, column: tuple[float, float], params: LabelParams,
                 label_rows: dict[int, list[Segment]]) -> list[Word]:
    """The words of the first row below label row `index` that fall in the column [start, end): none
    when the next row there is a label too (the value was not read)."""
    start, end = column
    label = rows[index]
    for j in range(index + 1, len(rows)):
        row = rows[j]
        if row.centre - label.centre > params.value_distance * label.height:
            break
        words = [w for w in row.words if start <= w.box[0] < end]
        if not words:
            continue
        if any(s.matched and start <= s.x0 < end for s in label_rows.get(j, [])):
            return []
        return list(split_segments(words, params.column_gap * row.height)[0])
    return []


def labelled_fields(rows: Sequence[Row], params: LabelParams, l1: str | None, issuer: str | None,
                    layouts: IssuerLayouts) -> tuple[dict[str, str], list[tuple[str, Segment]]]:
    """Identity cards and passports: each value below its label, in the label's column (from the label
    to the next segment of the row). Returns the fields and the labels read (field, segment)."""
    segments = [label_segments(row, params, issuer, layouts.label_keys) for row in rows]
    label_rows = {i: segs for i, segs in enumerate(segments) if any(s.matched for s in segs)}
    found: dict[str, str] = {}
    labels: list[tuple[str, Segment]] = []
    for i, segs in label_rows.items():
        bounds = sorted(s.x0 for s in segs if len(alnum(s.text)) >= 2)
        slack = 1.2 * rows[i].height
        for seg in segs:
            if not seg.matched or seg.field is None or seg.field in found:
                continue
            labels.append((seg.field, seg))
            end = next((b for b in bounds if b > seg.x0 + slack), float("inf")) - slack
            words = _value_below(rows, i, (seg.x0 - slack, end), params, label_rows)
            value = format_value(seg.field, [w.text for w in words], l1, issuer, layouts, params.number_patterns)
            if value:
                found[seg.field] = value
    return found, labels

