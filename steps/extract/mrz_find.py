"""Finding the MRZ: the lines an OCR variant read apart in the MRZ band (`OcrResult.mrz`, a confidence per
character), else the page's OCR lines that may be machine-readable-zone lines (cleaned, pieces of one row
joined; each character with its word's confidence), and the formats worth reading them in (ICAO 9303 TD1 3×30,
TD2 2×36, TD3 2×44, the visas MRV-A 2×44 and MRV-B 2×36, the French identity card's 2×36; common/mrz9303.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from common.icao import FILLER, MRZ_ALPHABET
from common.mrz9303 import SHAPE
from steps.records import Line, OcrResult

MRZ_CHARS = frozenset(MRZ_ALPHABET)
MRZ_WIDTH = {kind: width for kind, (_, width) in SHAPE.items()}  # characters per line
LOOKALIKES = frozenset("KLCESX")  # what OCR makes of the OCR-B filler '<'
JUNK_LOWER = frozenset("sceo¢€")  # … and in lower case or as symbols


@dataclass(frozen=True)
class MrzParams:
    max_line_cost: float = 0.34  # accept a line whose alignment cost per character is below this
    repair: bool = True  # after the alignment: optional-data fillers, name separators, guided digits
    min_length: int = 12  # shorter OCR lines are not MRZ candidates
    issuer_layouts: bool = True  # also align to the layout of the issuer whose code the MRZ shows
    sure: float = 90.0  # a character read with this confidence or more is changed only where a check digit,
    # the code table or the zone's structure (fillers after the names) confirms the change


@dataclass(frozen=True)
class MrzCandidate:
    text: str  # pre-cleaned: no spaces, '«' → '<', junk in filler runs → '<', upper case
    top: float
    bottom: float
    x0: int
    x1: int
    confidence: tuple[float, ...] = ()  # per character of `text` (0..100); empty: not known
    per_character: bool = False  # the OCR gave each character its own confidence (not its word's)

    def confidences(self) -> tuple[float, ...]:
        """A confidence per character (0 where none is known)."""
        return self.confidence if len(self.confidence) == len(self.text) else (0.0,) * len(self.text)


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


def _word_confidences(line: Line, text: str) -> tuple[float, ...]:
    """Each character of the cleaned line `text` with its word's confidence (the line's where the words,
    cleaned one by one, do not add up to `text`)."""
    confidences = [w.confidence for w in line.words for _ in pre_clean(w.text)]
    return tuple(confidences) if len(confidences) == len(text) else (line.confidence,) * len(text)


def band_candidates(ocr: OcrResult) -> list[MrzCandidate]:
    """The MRZ lines an OCR variant read apart (`ocr.mrz`), each character with its own confidence (one word
    per character); characters outside the MRZ alphabet are dropped, '«' and lower case mended."""
    out = []
    for line in ocr.mrz:
        per_char = len(line.words) == len(line.text) and all(len(w.text) == 1 for w in line.words)
        confidences = [w.confidence for w in line.words] if per_char else [line.confidence] * len(line.text)
        kept = [(FILLER if c == "«" else c.upper(), conf) for c, conf in zip(line.text, confidences, strict=True)
                if c == "«" or c.upper() in MRZ_CHARS]
        if kept:
            x0, top, x1, bottom = line.box
            out.append(MrzCandidate("".join(c for c, _ in kept), top, bottom, x0, x1,
                                    tuple(conf for _, conf in kept), per_char))
    return out


def mrz_candidates(ocr: OcrResult, min_length: int = 12) -> list[MrzCandidate]:
    """OCR lines that may be MRZ lines, top to bottom (pieces of one row joined): mostly capitals, digits
    and fillers, with a filler or many digits."""
    items = []
    for line in ocr.lines:
        raw = line.text.replace(" ", "").replace("«", FILLER)
        mrz_chars = sum(c in MRZ_CHARS or c in JUNK_LOWER for c in raw)
        if raw and mrz_chars >= 0.8 * len(raw) and sum(c.islower() for c in raw) <= 0.4 * len(raw):
            x0, top, x1, bottom = line.box
            text = pre_clean(line.text)
            items.append(MrzCandidate(text, top, bottom, x0, x1, _word_confidences(line, text)))
    joined: list[MrzCandidate] = []
    for item in sorted(items, key=lambda c: (c.top, c.x0)):
        for k, other in enumerate(joined):
            height = min(item.bottom - item.top, other.bottom - other.top)
            same_row = abs((item.top + item.bottom) - (other.top + other.bottom)) / 2 < 0.5 * height
            if same_row and (item.x0 >= other.x1 - 5 or item.x1 <= other.x0 + 5):
                left, right = (other, item) if item.x0 >= other.x1 - 5 else (item, other)
                joined[k] = MrzCandidate(left.text + right.text, min(left.top, right.top),
                                         max(left.bottom, right.bottom), left.x0, right.x1,
                                         left.confidences() + right.confidences())
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


def _named(kind: str, l1: str | None, top: str) -> tuple[str, ...]:
    """A 2×44 / 2×36 zone as what its first line (`top`) says, then as the ICAO size: a visa ('V…': MRV-A /
    MRV-B) — second for a document classified as a passport or identity card, whose 'P<' / 'I<' the OCR may
    have lost —, the French identity card ('IDFRA…', 2×36: that alone)."""
    visa = {"TD3": "MRV-A", "TD2": "MRV-B"}.get(kind)
    if visa and top.startswith("V"):
        return (kind, visa) if l1 in ("passport", "id_card") else (visa, kind)
    return ("FRA-CNI",) if kind == "TD2" and top.startswith("IDFRA") else (kind,)  # France issues no TD2


def _top(candidates: Sequence[MrzCandidate]) -> str:
    long_lines = [c.text for c in candidates if len(c.text) >= 26]
    return long_lines[-2] if len(long_lines) >= 2 else long_lines[0] if long_lines else ""


def band_formats(l1: str | None, candidates: Sequence[MrzCandidate]) -> tuple[str, ...]:
    """The formats of the lines an MRZ-band reader gave: they are the zone's lines, so their number and the
    longest one's length tell the format even where the OCR lost a line's fillers (3 lines: TD1; 2: the
    44- or 36-character family); a single line as page lines are read (`mrz_formats`)."""
    if len(candidates) < 2:
        return mrz_formats(l1, candidates)
    if len(candidates) >= 3:
        return ("TD1",)
    width = max(len(c.text) for c in candidates)
    return _named("TD3" if width >= 40 else "TD2", l1, candidates[0].text)


def mrz_formats(l1: str | None, candidates: Sequence[MrzCandidate]) -> tuple[str, ...]:
    """The MRZ formats to read, likeliest first: 'TD3' (passport) or 'TD1' (identity card) by the document
    type, unless the lines clearly disagree; TD2 (identity cards and passports alike) by its lines'
    length whatever the type — alone when they are 34 to 37 characters long, after the type's format when
    38 or 39 (a TD3 whose trailing fillers the OCR lost, maybe). A 2×44 or 2×36 zone whose first line starts
    'V' is read as a visa's too (MRV-A, MRV-B), a 2×36 one starting 'IDFRA' as the French identity card's
    first (`_named`). None for a driving licence (unless two lines look like an MRZ), nor without
    candidates."""
    if not candidates:
        return ()
    if l1 == "driving_licence" and sum("<<" in c.text for c in candidates) < 2:
        return ()
    if _td2_lengths(candidates, 37):
        return _named("TD2", l1, _top(candidates))
    long_lines = sum(len(c.text) >= 38 for c in candidates)
    if l1 == "passport":
        kind = "TD1" if len(candidates) >= 3 and not long_lines else "TD3"
    elif l1 == "id_card":
        kind = "TD3" if long_lines >= 2 else "TD1"
    else:
        kind = "TD3" if long_lines else "TD1"
    kinds = (kind, "TD2") if _td2_lengths(candidates, 39) else (kind,)
    return tuple(dict.fromkeys(named for k in kinds for named in _named(k, l1, _top(candidates))))
