"""Finding the MRZ: OCR lines that may be machine-readable-zone lines (cleaned, pieces of one row joined), and
the ICAO formats (TD1 3×30, TD2 2×36, TD3 2×44) worth reading them in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from common.icao import FILLER, MRZ_ALPHABET
from steps.records import OcrResult

MRZ_CHARS = frozenset(MRZ_ALPHABET)
MRZ_WIDTH = {"TD1": 30, "TD2": 36, "TD3": 44}  # characters per line (ICAO 9303)
LOOKALIKES = frozenset("KLCESX")  # what OCR makes of the OCR-B filler '<'
JUNK_LOWER = frozenset("sceo¢€")  # … and in lower case or as symbols


@dataclass(frozen=True)
class MrzParams:
    max_line_cost: float = 0.34  # accept a line whose alignment cost per character is below this
    repair: bool = True  # after the alignment: optional-data fillers, name separators, guided digits
    min_length: int = 12  # shorter OCR lines are not MRZ candidates
    issuer_layouts: bool = True  # also align to the issuers' own layouts (codes, number patterns)


@dataclass(frozen=True)
class MrzCandidate:
    text: str  # pre-cleaned: no spaces, '«' → '<', junk in filler runs → '<', upper case
    top: float
    bottom: float
    x0: int
    x1: int


def pre_clean(text: str) -> str:
    """Spaces out, '«' → '<', lower-case look-alikes and symbols next to fillers → '<', upper case."""
    chars = list(text.replace(" ", "").replace("«", FILLER))
    out = []
    for k, char in enumerate(chars):
        neighbours = chars[max(0, k - 1):k] + chars[k + 1:k + 2]
        near_filler = any(n == FILLER or n in JUNK_LOWER for n in neighbours)
        if char in JUNK_LOWER and near_filler:
            out.append(FILLER)
        elif char.isascii() and char.isalnum():
            out.append(char.upper())
        elif char == FILLER or (near_filler and not char.isalnum()):
            out.append(FILLER)
    return "".join(out)


def mrz_candidates(ocr: OcrResult, min_length: int = 12) -> list[MrzCandidate]:
    """OCR lines that may be MRZ lines, top to bottom (pieces of one row joined): mostly capitals, digits
    and fillers, with a filler or many digits."""
    items = []
    for line in ocr.lines:
        raw = line.text.replace(" ", "").replace("«", FILLER)
        mrz_chars = sum(c in MRZ_CHARS or c in JUNK_LOWER for c in raw)
        if raw and mrz_chars >= 0.8 * len(raw) and sum(c.islower() for c in raw) <= 0.4 * len(raw):
            x0, top, x1, bottom = line.box
            items.append(MrzCandidate(pre_clean(line.text), top, bottom, x0, x1))
    joined: list[MrzCandidate] = []
    for item in sorted(items, key=lambda c: (c.top, c.x0)):
        for k, other in enumerate(joined):
            height = min(item.bottom - item.top, other.bottom - other.top)
            same_row = abs((item.top + item.bottom) - (other.top + other.bottom)) / 2 < 0.5 * height
            if same_row and (item.x0 >= other.x1 - 5 or item.x1 <= other.x0 + 5):
                left, right = (other, item) if item.x0 >= other.x1 - 5 else (item, other)
                joined[k] = MrzCandidate(left.text + right.text, min(left.top, right.top),
                                         max(left.bottom, right.bottom), left.x0, right.x1)
                break
        else:
            joined.append(item)
    digits = [sum(c.isdigit() for c in j.text) for j in joined]
    return [j for j, d in zip(joined, digits, strict=True)
            if len(j.text) >= min_length and (FILLER in j.text or (len(j.text) >= 28 and d >= 8))]


def _td2_lengths(candidates: Sequence[MrzCandidate], longest: int) -> bool:
    """Whether the MRZ's last two lines (the lines of MRZ length: the MRZ ends a document) are about TD2's
    36 characters: 34 to `longest`."""
    long_lines = [len(c.text) for c in candidates if len(c.text) >= 26]
    return len(long_lines) >= 2 and all(34 <= n <= longest for n in long_lines[-2:])


def mrz_formats(l1: str | None, candidates: Sequence[MrzCandidate]) -> tuple[str, ...]:
    """The MRZ formats to read, likeliest first: 'TD3' (passport) or 'TD1' (identity card) by the document
    type, unless the lines clearly disagree; TD2 (identity cards and passports alike) by its lines'
    length whatever the type — alone when they are 34 to 37 characters long, after the type's format when
    38 or 39 (a TD3 whose trailing fillers the OCR lost, maybe). None for a driving licence (unless two
    lines look like an MRZ), nor without candidates."""
    if not candidates:
        return ()
    if l1 == "driving_licence" and sum("<<" in c.text for c in candidates) < 2:
        return ()
    if _td2_lengths(candidates, 37):
        return ("TD2",)
    long_lines = sum(len(c.text) >= 38 for c in candidates)
    if l1 == "passport":
        kind = "TD1" if len(candidates) >= 3 and not long_lines else "TD3"
    elif l1 == "id_card":
        kind = "TD3" if long_lines >= 2 else "TD1"
    else:
        kind = "TD3" if long_lines else "TD1"
    return (kind, "TD2") if _td2_lengths(candidates, 39) else (kind,)

