"""Extraction variants: the fields of one classified document, from its OCR result.

- `extract/label-rules:v1` reads the visual zone (VIZ). On identity cards and passports every value
  sits below its printed label (any issuer's label, bilingual or not); where a label was not read, the
  value is taken where the issuer's template puts it. Driving licences number their fields (EU model:
  "1." surname … "9." categories), the value to the right of the number.
- `extract/mrz-first:v1` reads the machine-readable zone (MRZ): its lines are found, aligned to the
  ICAO layout (TD1 3×30, TD2 2×36, TD3 2×44) with OCR confusions undone by position, and their check
  digits verified with the `mrz` package. A field whose check digit fails, names the MRZ may have truncated
  or garbled, and the fields the MRZ does not carry come from the label rules.
- `extract/mrz-only:v1` is the MRZ part alone, without the VIZ (a baseline).

Dates are emitted as ISO `YYYY-MM-DD`; other values as read, with the repairs the corpus allows
(issuers' number patterns, category codes, country codes); scoring compares after `normalise_field`.
The template geometry used here (label grid, driving-licence rows, MRZ zone) is corpus/layout.py's, the
table corpus/templates.py draws from.
"""

from __future__ import annotations

import itertools
import os
import re
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cache, lru_cache

from mrz.checker.td1 import TD1CodeChecker
from mrz.checker.td2 import TD2CodeChecker
from mrz.checker.td3 import TD3CodeChecker

from corpus.identity import CATEGORIES
from corpus.issuers import DL_NUMBERS, DOC_LETTERS, ISSUER_BY_CODE, ISSUERS, Issuer
from corpus.layout import LAYOUTS, DocumentLayout, cap_band, layout, mrz_ink_x
from corpus.mrz import check_digit, transliterate
from steps.base import Variant
from steps.normalize import MONTHS, fold, mrz_date, parse_date
from steps.records import Classification, ExtractInput, Extraction, OcrResult, Word

FIELDS = ("surname", "given_names", "document_number", "personal_number", "date_of_birth", "date_of_expiry",
          "date_of_issue", "place_of_birth", "nationality", "sex", "authority", "categories")
DATE_FIELDS = ("date_of_birth", "date_of_expiry", "date_of_issue")
FILLER = "<"
MRZ_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<")
MRZ_WIDTH = {"TD1": 30, "TD2": 36, "TD3": 44}  # characters per line (ICAO 9303)

# OCR confusions between letters and digits, undone by position (a digit where a letter belongs …).
_TO_DIGIT = {"O": "0", "Q": "0", "D": "0", "U": "0", "I": "1", "L": "1", "J": "1", "Z": "2", "S": "5",
             "B": "8", "G": "6", "T": "7", "A": "4"}
_TO_LETTER = {"0": "O", "1": "I", "2": "Z", "5": "S", "8": "B", "6": "G", "7": "T", "4": "A"}
_TO_SEX = {"H": "M", "N": "M", "E": "F", "P": "F"}
# The cost of undoing a confusion in a printed number: the commonest ones cost least.
_CONFUSION_COST = {"O": 0.2, "I": 0.2, "0": 0.2, "1": 0.25, "S": 0.3, "5": 0.3, "B": 0.3, "8": 0.3,
                   "Z": 0.3, "2": 0.3, "G": 0.35, "6": 0.35, "D": 0.4, "Q": 0.4, "L": 0.45, "J": 0.45,
                   "U": 0.5, "T": 0.5, "7": 0.5, "A": 0.5, "4": 0.5}


# ── small text helpers ───────────────────────────────────────────────────────────────────────────


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions and substitutions all cost 1)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


def _alnum(text: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", fold(text))


def _alnum_words(text: str) -> list[str]:
    return re.findall(r"[A-Z0-9]+", fold(text))


# ── OCR geometry: words into rows, rows into segments ────────────────────────────────────────────


def _height(word: Word) -> int:
    return max(1, word.box[3] - word.box[1])


def _centre(word: Word) -> float:
    return (word.box[1] + word.box[3]) / 2


@dataclass(frozen=True)
class Row:
    """Words on one visual row, left to right."""

    words: tuple[Word, ...]

    @property
    def height(self) -> float:
        return float(statistics.median(_height(w) for w in self.words))

    @property
    def centre(self) -> float:
        return float(statistics.median(_centre(w) for w in self.words))

    @property
    def baseline(self) -> float:
        return float(statistics.median(w.box[3] for w in self.words))

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


def group_rows(words: Iterable[Word]) -> list[Row]:
    """Words grouped into rows, top to bottom: a word joins the row whose centre is within half the
    smaller of their heights (OCR lines are ignored: they split and merge rows)."""
    rows: list[list[Word]] = []
    for word in sorted((w for w in words if w.text.strip()), key=lambda w: (_centre(w), w.box[0])):
        best, best_distance = None, float("inf")
        for row in rows[-4:]:
            distance = abs(_centre(word) - statistics.median(_centre(w) for w in row))
            if distance < 0.5 * min(_height(word), statistics.median(_height(w) for w in row)) \
                    and distance < best_distance:
                best, best_distance = row, distance
        if best is None:
            rows.append([word])
        else:
            best.append(word)
    return sorted((Row(tuple(sorted(r, key=lambda w: w.box[0]))) for r in rows), key=lambda r: r.centre)


def split_segments(words: Sequence[Word], gap: float) -> list[tuple[Word, ...]]:
    """Left-to-right words split where the horizontal gap exceeds `gap` pixels."""
    segments: list[list[Word]] = []
    right = -1e9
    for word in words:
        if not segments or word.box[0] - right > gap:
            segments.append([word])
        else:
            segments[-1].append(word)
        right = max(right, word.box[2])
    return [tuple(s) for s in segments]


def typical_height(rows: Sequence[Row]) -> float:
    """The median height of the words with at least three letters or digits (values, mostly)."""
    heights = [_height(w) for r in rows for w in r.words if len(_alnum(w.text)) >= 3]
    return float(statistics.median(heights)) if heights else 0.0


def row_baseline(row: Row, typical: float) -> float:
    """The row's baseline from its words of ordinary height (boxes swollen by noise are discounted)."""
    normal = [w.box[3] for w in row.words if _height(w) <= 1.5 * typical]
    if normal:
        return float(statistics.median(normal))
    return row.centre + typical / 2 if typical else row.baseline


# ── tolerant value parsing ───────────────────────────────────────────────────────────────────────


def _digit_token(token: str) -> str:
    """A token of a printed date, letter/digit confusions undone where it is mostly digits."""
    digits = sum(c.isdigit() for c in token)
    if digits and digits >= len(token) / 2:
        return "".join(_TO_DIGIT.get(c, c) for c in token)
    return token


def _month(token: str) -> int | None:
    if token in MONTHS:
        return MONTHS[token]
    close = [m for m in MONTHS if len(token) == 3 and levenshtein(token, m) == 1]
    return MONTHS[close[0]] if len(close) == 1 else None


def _make_date(year: int, month: int, day: int) -> str | None:
    try:
        return date(year, month, day).isoformat() if 1900 <= year <= 2100 else None
    except ValueError:
        return None


def _date_from_groups(groups: list[str]) -> str | None:
    """Digit / month-name groups in printed order → ISO; eight digits run together read as DDMMYYYY
    (else YYYYMMDD)."""
    digits = "".join(groups)
    if len(groups) != 3:
        if not re.fullmatch(r"\d{8}", digits):
            return None
        return (_make_date(int(digits[4:]), int(digits[2:4]), int(digits[:2]))
                or _make_date(int(digits[:4]), int(digits[4:6]), int(digits[6:])))
    a, b, c = groups
    month = int(b) if b.isdigit() else _month(b)
    if not (a.isdigit() and c.isdigit()) or month is None:
        return None
    if len(a) == 4 and len(c) <= 2:
        return _make_date(int(a), month, int(c))
    if len(c) == 4 and len(a) <= 3:
        return _make_date(int(c), month, int(a))
    return None


def read_date(text: str) -> str | None:
    """A printed date in any issuer's format, OCR-damaged → ISO, or None (`parse_date` first)."""
    exact = parse_date(text)
    if exact:
        return exact
    tokens = [_digit_token(t) for t in re.findall(r"[A-Z0-9]+", fold(text))]
    return _date_from_groups([g for t in tokens for g in re.findall(r"\d+|[A-Z]{3,}", t)])


def split_date(tokens: Sequence[str], from_end: bool = False) -> tuple[str | None, list[str]]:
    """The shortest run of tokens at the start (or the end) that reads as a date, and the other tokens."""
    for k in range(1, min(4, len(tokens)) + 1):
        part = tokens[-k:] if from_end else tokens[:k]
        iso = read_date(" ".join(part))
        if iso and re.search(r"\d{4}", "".join(_digit_token(t) for t in part)):
            return iso, list(tokens[:-k] if from_end else tokens[k:])
    return None, list(tokens)


def clean_text(tokens: Iterable[str]) -> str | None:
    """A name-like value: the tokens that are mostly letters, stray punctuation at their ends removed."""
    kept = []
    for token in tokens:
        token = re.sub(r"^\W+|\W+$", "", token.replace("_", " ")).strip()
        if sum(c.isalpha() for c in token) >= max(1, len(token) // 2):
            kept.append(token)
    return " ".join(kept) or None


def read_sex(tokens: Sequence[str]) -> str | None:
    """M, F or X from the first letters of the value."""
    for token in tokens[:2]:
        letters = re.sub(r"[^A-Z]", "", fold(token))
        for char in letters[:2]:
            char = _TO_SEX.get(char, char) if len(letters) == 1 else char
            if char in "MFX":
                return char
    return None


def read_code(tokens: Sequence[str], prefer: str | None = None) -> str | None:
    """A 3-letter country code; a reading within one edit of a known issuer code becomes that code."""
    codes = ([prefer] if prefer else []) + [i.code for i in ISSUERS if i.code != prefer]
    for token in tokens[:2]:
        letters = "".join(_TO_LETTER.get(c, c) for c in _alnum(token))
        if len(letters) < 2:
            continue
        close = [c for c in codes if levenshtein(letters, c) <= 1]
        if close:
            return close[0]
        if len(letters) == 3:
            return letters
    return None


_CATEGORY_LOOKALIKES = {"1": "1IL", "2": "2Z", "0": "0O", "8": "8B", "B": "B8", "E": "EF", "D": "D0O"}


def read_categories(text: str) -> str | None:
    """Driving-licence categories, in catalogue order, from OCR text run together: 'A2BBEC' → 'A2 B BE C'."""
    chars = _alnum(text)
    if not chars:
        return None

    @cache
    def best(pos: int, last: int) -> tuple[float, tuple[str, ...]]:
        if pos == len(chars):
            return 0.0, ()
        skip_cost, skip_codes = best(pos + 1, last)
        options = [(skip_cost + 1.0, skip_codes)]  # a stray character
        for index in range(last + 1, len(CATEGORIES)):
            code = CATEGORIES[index]
            piece = chars[pos:pos + len(code)]
            pairs = list(zip(piece, code, strict=False))
            if len(piece) == len(code) and all(p in _CATEGORY_LOOKALIKES.get(c, c) for p, c in pairs):
                rest_cost, rest_codes = best(pos + len(code), index)
                misses = sum(p != c for p, c in pairs)
                options.append((rest_cost + 0.4 * misses - 0.01 * len(code), (code, *rest_codes)))
        return min(options, key=lambda o: o[0])

    cost, codes = best(0, -1)
    return " ".join(codes) if codes and cost < 0.5 * len(chars) + 1 else None


def _pattern_cost(char: str, klass: str) -> tuple[float, str]:
    """Cost and repaired character of reading `char` at a number-pattern position (L, 9/1 or literal).
    Letters outside DOC_LETTERS cost a little: issuers avoid them so that numbers read back safely."""
    if klass in "91":
        if char.isdigit():
            return 0.0, char
        return (_CONFUSION_COST[char], _TO_DIGIT[char]) if char in _TO_DIGIT else (1.0, char)
    if klass == "L":
        if char.isalpha():
            return (0.0 if char in DOC_LETTERS else 0.4), char
        return (_CONFUSION_COST[char], _TO_LETTER[char]) if char in _TO_LETTER else (1.0, char)
    return (0.0, char) if char == klass else (1.0, klass)


def _doubled(text: str, i: int) -> bool:
    """Whether text[i] repeats a neighbour, up to a letter/digit confusion ('1I', '8B')."""
    here = _TO_DIGIT.get(text[i], text[i])
    return any(0 <= k < len(text) and _TO_DIGIT.get(text[k], text[k]) == here for k in (i - 1, i + 1))


def fit_pattern(text: str, pattern: str) -> tuple[float, str]:
    """Align OCR text to a number pattern (L letter, 9/1 digit, '/' literal): the cost and the repaired
    text ('?' where the OCR missed a character)."""
    n, m = len(text), len(pattern)
    inf = float("inf")
    cost = [[inf] * (m + 1) for _ in range(n + 1)]
    back: list[list[tuple[int, int, str] | None]] = [[None] * (m + 1) for _ in range(n + 1)]
    cost[0][0] = 0.0
    for i in range(n + 1):
        for j in range(m + 1):
            here = cost[i][j]
            if here == inf:
                continue
            if i < n and j < m:
                step, char = _pattern_cost(text[i], pattern[j])
                if here + step < cost[i + 1][j + 1]:
                    cost[i + 1][j + 1], back[i + 1][j + 1] = here + step, (i, j, char)
            if i < n:  # an extra OCR character: cheaper at the ends (stray marks) or doubling a neighbour
                step = 0.7 if j in (0, m) else 0.8 if _doubled(text, i) else 1.0
                if here + step < cost[i + 1][j]:
                    cost[i + 1][j], back[i + 1][j] = here + step, (i, j, "")
            if j < m and here + 1.0 < cost[i][j + 1]:  # a character the OCR missed
                cost[i][j + 1], back[i][j + 1] = here + 1.0, (i, j, "?")
    out, i, j = [], n, m
    while (step_back := back[i][j]) is not None:
        i, j, char = step_back
        out.append(char)
    return cost[n][m], "".join(reversed(out))


def _number_patterns(field_name: str, l1: str | None, issuer: str | None) -> list[str]:
    issuers = [ISSUER_BY_CODE[issuer]] if issuer in ISSUER_BY_CODE else list(ISSUERS)
    if field_name == "personal_number":
        return [i.personal_number for i in issuers if i.personal_number]
    if l1 == "driving_licence":
        return [i.dl_number for i in issuers]
    if l1 in ("id_card", "passport"):
        return [i.doc_number for i in issuers]
    return [i.doc_number for i in issuers] + [i.dl_number for i in issuers]


def read_number(tokens: Sequence[str], field_name: str, l1: str | None, issuer: str | None,
                use_patterns: bool = True) -> str | None:
    """A document or personal number, repaired to the issuer's pattern where it fits closely."""
    raw = re.sub(r"[^A-Z0-9/]", "", fold("".join(tokens)))
    if len(raw) < 3:
        return None
    if not use_patterns:
        return raw
    fits = [(c, t) for c, t in (fit_pattern(raw, p) for p in _number_patterns(field_name, l1, issuer))
            if "?" not in t]
    if fits:  # any issuer's pattern when the issuer is unknown: then only a close fit counts
        best_cost, best_text = min(fits)
        if best_cost <= (max(1.3, 0.2 * len(best_text)) if issuer in ISSUER_BY_CODE else 0.6):
            return best_text
    return raw


def format_value(name: str, tokens: list[str], l1: str | None, issuer: str | None,
                 number_patterns: bool = True) -> str | None:
    """A field's value from the OCR tokens found for it."""
    if not tokens:
        return None
    if name in DATE_FIELDS:
        return split_date(tokens)[0] or read_date(" ".join(tokens))
    if name == "sex":
        return read_sex(tokens)
    if name == "nationality":
        return read_code(tokens, issuer)
    if name in ("document_number", "personal_number"):
        return read_number(tokens, name, l1, issuer, number_patterns)
    if name == "categories":
        return read_categories(" ".join(tokens))
    return clean_text(tokens)


# ── labels ───────────────────────────────────────────────────────────────────────────────────────


def _label_words(text: str) -> str:
    """Folded, letters only, single spaces."""
    return " ".join(re.sub(r"[^A-Z]+", " ", fold(text)).split())


@dataclass(frozen=True)
class LabelKey:
    compact: str  # letters only, no spaces
    field: str | None  # None: a label without a wanted value (type, code), still a column boundary
    issuers: frozenset[str]


def _build_label_keys() -> tuple[LabelKey, ...]:
    """Every issuer's labels, whole ('NAME / SURNAME') and by language ('NAME', 'SURNAME'), folded."""
    table: dict[tuple[str, str | None], set[str]] = {}
    for issuer in ISSUERS:
        for name, label in issuer.labels.items():
            for variant in (label, *label.split("/")):
                compact = _label_words(variant).replace(" ", "")
                if compact:
                    table.setdefault((compact, name if name in FIELDS else None), set()).add(issuer.code)
    ordered = sorted(table.items(), key=lambda item: item[0][0])
    return tuple(LabelKey(key, name, frozenset(codes)) for (key, name), codes in ordered)


LABEL_KEYS = _build_label_keys()


@lru_cache(maxsize=4096)
def match_label(text: str, tolerance: float, issuer: str | None = None) -> tuple[str | None, float] | None:
    """The field a label segment names (None for type/code labels) and the match score, or None.

    Every run of the segment's words is compared with every key (edit distance relative to the key's
    length, at most `tolerance`); runs that leave words over score worse, so a whole bilingual label
    ('VORNAMEN / GIVEN NAMES') beats its parts and 'GIVEN NAMES' beats 'NAME'. Keys of other issuers
    than the classified one (English aside) score slightly worse.
    """
    words = _label_words(text).split()
    total = sum(len(w) for w in words)
    best: tuple[float, str | None] | None = None
    for start in range(len(words)):
        for end in range(start + 1, min(len(words), start + 6) + 1):
            span = "".join(words[start:end])
            for key in LABEL_KEYS:
                if abs(len(key.compact) - len(span)) > tolerance * len(key.compact):
                    continue
                distance = levenshtein(span, key.compact)
                if distance > tolerance * len(key.compact) or (len(key.compact) <= 3 and distance):
                    continue
                score = distance / len(key.compact) + 0.3 * (total - len(span)) / total
                if issuer and issuer not in key.issuers and "AUR" not in key.issuers:
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


def label_segments(row: Row, params: LabelParams, issuer: str | None) -> list[Segment]:
    """A row split into segments, each matched against the labels (a label has lower-case letters,
    values are upper case: an all-capital segment must match a key exactly)."""
    out = []
    for words in split_segments(row.words, params.column_gap * row.height):
        text = " ".join(w.text for w in words)
        found = match_label(text, params.label_tolerance, issuer)
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


def labelled_fields(rows: Sequence[Row], params: LabelParams, l1: str | None,
                    issuer: str | None) -> tuple[dict[str, str], list[tuple[str, Segment]]]:
    """Identity cards and passports: each value below its label, in the label's column (from the label
    to the next segment of the row). Returns the fields and the labels read (field, segment)."""
    segments = [label_segments(row, params, issuer) for row in rows]
    label_rows = {i: segs for i, segs in enumerate(segments) if any(s.matched for s in segs)}
    found: dict[str, str] = {}
    labels: list[tuple[str, Segment]] = []
    for i, segs in label_rows.items():
        bounds = sorted(s.x0 for s in segs if len(_alnum(s.text)) >= 2)
        slack = 1.2 * rows[i].height
        for seg in segs:
            if not seg.matched or seg.field is None or seg.field in found:
                continue
            labels.append((seg.field, seg))
            end = next((b for b in bounds if b > seg.x0 + slack), float("inf")) - slack
            words = _value_below(rows, i, (seg.x0 - slack, end), params, label_rows)
            value = format_value(seg.field, [w.text for w in words], l1, issuer, params.number_patterns)
            if value:
                found[seg.field] = value
    return found, labels


# ── the template grid: values where the issuer's template puts them ──────────────────────────────

GRID_TYPES = frozenset(doc.l1 for doc in LAYOUTS.values() if doc.grid is not None)
Pairs = list[tuple[float, float]]  # (template, image) coordinates along one axis


def _grid_anchors(doc: DocumentLayout, issuer: Issuer, rows: Sequence[Row], ocr: OcrResult,
                  labels: Sequence[tuple[str, Segment]]) -> tuple[Pairs, Pairs]:
    """(template, image) pairs along y and along x: the labels read (their capitals' tops), the MRZ
    lines (centres, ink ends), the header (centre)."""
    assert doc.grid is not None and doc.mrz is not None
    grid = doc.grid
    cells = {c.name: c for c in grid.cells}
    label_top = cap_band(issuer.label_font, grid.label_size)[0]
    ys: Pairs = []
    xs: Pairs = []
    for name, seg in labels:
        if name in cells:
            ys.append((grid.label_y(cells[name].row) + label_top, seg.top))
            xs.append((doc.text_x + cells[name].x, seg.x0))
    width, centres, ink_x = doc.mrz.chars, doc.mrz_centres, mrz_ink_x(doc)
    mrz = [c for c in mrz_candidates(ocr) if len(c.text) >= 0.8 * width][-len(centres):]
    for template_y, line in zip(reversed(centres), reversed(mrz), strict=False):
        ys.append((template_y, (line.top + line.bottom) / 2))
        if len(line.text) >= 0.95 * width:
            xs += [(ink_x[0], line.x0), (ink_x[1], line.x1)]
    header = [r for r in rows[:3] if is_header(r)]
    if header:
        ys.append((doc.title_y, header[0].centre))
    return ys, xs


def _grid_scale(ys: Pairs, xs: Pairs) -> float | None:
    ratios = [(b[1] - a[1]) / (b[0] - a[0]) for pairs in (ys, xs) for a, b in itertools.combinations(pairs, 2)
              if abs(b[0] - a[0]) >= 100]
    ratios = [r for r in ratios if 0.3 < r < 3.0]
    return float(statistics.median(ratios)) if ratios else None


def _offset(pairs: Pairs, scale: float) -> float:
    return float(statistics.median(image - scale * template for template, image in pairs))


def carried_fields(l1: str, issuer: Issuer) -> tuple[str, ...]:
    """The fields an identity card or passport of this issuer carries (corpus/identity.py)."""
    base = ("surname", "given_names", "date_of_birth", "date_of_expiry", "document_number", "sex",
            "nationality")
    if l1 == "passport":
        base += ("place_of_birth", "date_of_issue", "authority")
    return base + issuer.extra_fields.get(l1, ())


def positional_fields(rows: Sequence[Row], ocr: OcrResult, l1: str, issuer: str, params: LabelParams,
                      labels: Sequence[tuple[str, Segment]], skip: Iterable[str]) -> dict[str, str]:
    """Fields whose labels were not read, from where the template puts their values: the grid is mapped
    onto the image (scale and offset) through the labels read, the MRZ and the header."""
    spec = ISSUER_BY_CODE[issuer]
    doc = layout(l1, spec.photo_side)
    grid = doc.grid
    assert grid is not None
    ys, xs = _grid_anchors(doc, spec, rows, ocr, labels)
    scale = _grid_scale(ys, xs)
    if scale is None or not xs or not rows:
        return {}
    y0, x0 = _offset(ys, scale), _offset(xs, scale)
    value_top, value_bottom = cap_band(spec.font, grid.value_size)
    wanted = set(carried_fields(l1, spec)) - set(skip)
    out: dict[str, str] = {}
    for cell in grid.cells:
        if cell.name not in wanted:
            continue
        centre = y0 + scale * (grid.value_y(cell.row) + (value_top + value_bottom) / 2)
        row = min(rows, key=lambda r: abs(r.centre - centre))
        if abs(row.centre - centre) > 0.22 * grid.pitch * scale:
            continue
        slack = 0.4 * row.height
        start = x0 + scale * (doc.text_x + cell.x) - slack
        end = start + scale * cell.width
        words = [w for w in row.words if start <= w.box[0] < end and not any(c.islower() for c in w.text[1:])]
        if words:
            words = list(split_segments(words, params.column_gap * row.height)[0])
            value = format_value(cell.name, [w.text for w in words], l1, issuer, params.number_patterns)
            if value:
                out[cell.name] = value
    return out


# ── driving licences: numbered rows ──────────────────────────────────────────────────────────────

# The numbered rows' geometry (corpus/layout.py; the same whichever side the photo is on): each slot's
# baseline — a row, named by its field numbers' common part ('4a.', '4b.' → '4'), and '9' (categories).
_DL_ROWS = layout("driving_licence", "left").rows
assert _DL_ROWS is not None
_DL_SLOTS = [os.path.commonprefix([DL_NUMBERS[name].rstrip(".") for name in row]) for row in _DL_ROWS.rows]
_DL_CATEGORIES = DL_NUMBERS["categories"].rstrip(".")
_DL_BASELINE = {slot: _DL_ROWS.baseline(r) for r, slot in enumerate(_DL_SLOTS)} | {
    _DL_CATEGORIES: _DL_ROWS.categories_baseline}
_DL_PITCH = _DL_ROWS.pitch
_DL_NUMBER_GAP = _DL_ROWS.number_gap
_DL_SECOND_COLUMN = _DL_ROWS.second_column
_DL_EXACT = {DL_NUMBERS[name]: slot for row, slot in zip(_DL_ROWS.rows, _DL_SLOTS, strict=True) for name in row} | {
    DL_NUMBERS["categories"]: _DL_CATEGORIES}


@cache
def _dl_value_height() -> float:
    """A value's height as OCR boxes it: the capitals' height in the issuers' faces (their median)."""
    bands = [cap_band(issuer.font, _DL_ROWS.value_size) for issuer in ISSUERS]
    return float(statistics.median(bottom - top for top, bottom in bands))


_DL_LOOSE = re.compile(r"^[\"'‘“]?([1235679]|4[abc])[.,:;]?$")
_DL_NUMBER = re.compile(r"^[\"'‘“>»(]?([1-9Il|]|[4Aa][abcsehB68]|[as]?[ce])[.,:;)»]?$")  # noisy reads too
_DL_4B = re.compile(r"^[4Aas]?[bBh6-8][.,:;]?$")
_TITLE_WORDS = frozenset(w for issuer in ISSUERS for text in (issuer.name, *issuer.titles.values())
                         for w in _alnum_words(text) if len(w) >= 3)


def _is_number_token(text: str) -> bool:
    return bool(_DL_NUMBER.match(text.strip())) or text.strip() in ("»", ">", "s")


def is_header(row: Row) -> bool:
    """A row of the document's header: mostly words of the issuers' names and document titles."""
    words = [w for w in _alnum_words(row.text) if len(w) >= 3]
    hits = sum(any(levenshtein(w, t) <= len(t) // 5 for t in _TITLE_WORDS) for w in words)
    return bool(words) and hits >= max(1, len(words) / 2)


def _dl_anchor(row: Row) -> tuple[str, float] | None:
    """A row's slot and the weight of the evidence: an exactly read field number, or unmistakable content
    (two dates: 4a/4b; a date then a place: 3), weigh 1; a number read without its dot 0.5."""
    first = row.words[0].text.strip()
    if first in _DL_EXACT:
        return _DL_EXACT[first], 1.0
    tokens = [w.text for w in row.words if not _is_number_token(w.text)]
    first_date, rest = split_date(tokens)
    if first_date and rest:
        if split_date(rest, from_end=True)[0]:
            return "4", 1.0
        if clean_text(rest) and not any(c.isdigit() for c in "".join(rest)):
            return "3", 1.0
    loose = _DL_LOOSE.match(first)
    if loose and len(row.words) > 1:
        slot = {"4a": "4", "4b": "4"}.get(loose.group(1), loose.group(1))
        return (slot, 0.5) if slot in _DL_BASELINE else None
    return None


def _spacing_scale(baselines: Sequence[float], guess: float) -> float:
    """The scale from the spacing of consecutive rows (mostly one pitch apart); `guess` (from the text
    height, which blur inflates) only bounds the gaps considered."""
    ordered = sorted(baselines)
    gaps = [b - a for a, b in itertools.pairwise(ordered) if 0.35 < (b - a) / (_DL_PITCH * guess) < 1.5]
    return statistics.median(gaps) / _DL_PITCH if gaps else guess


def _dl_fit(rows: Sequence[Row], typical: float) -> tuple[float, float] | None:
    """Offset and scale mapping the template's row baselines onto the image: the hypothesis (from one
    anchor row and the row spacing, or from two anchors) that most anchors agree with."""
    anchors = [(found[0], row_baseline(row, typical), found[1]) for row in rows if (found := _dl_anchor(row))]
    if not typical or not anchors:
        return None
    value_rows = [r for r in rows if any(len(_alnum(w.text)) >= 3 for w in r.words)]
    spacing = _spacing_scale([row_baseline(r, typical) for r in value_rows], typical / _dl_value_height())
    hypotheses = [(y - spacing * _DL_BASELINE[slot], spacing) for slot, y, _ in anchors]
    for (slot_a, ya, _), (slot_b, yb, _) in itertools.combinations(anchors, 2):
        if _DL_BASELINE[slot_a] != _DL_BASELINE[slot_b]:
            scale = (ya - yb) / (_DL_BASELINE[slot_a] - _DL_BASELINE[slot_b])
            if 0.7 * spacing <= scale <= 1.4 * spacing:
                hypotheses.append((ya - scale * _DL_BASELINE[slot_a], scale))

    def support(hypothesis: tuple[float, float]) -> tuple[float, float]:
        offset, scale = hypothesis
        errors = [(abs(y - offset - scale * _DL_BASELINE[slot]), weight) for slot, y, weight in anchors]
        inliers = [(e, w) for e, w in errors if e <= 0.3 * _DL_PITCH * scale]
        return sum(w for _, w in inliers), -sum(e for e, _ in inliers)

    return max(hypotheses, key=support)


def _dl_slots(rows: Sequence[Row]) -> tuple[dict[str, list[Word]], float]:
    """Rows assigned to the numbered slots (rows near one slot merged), and the scale."""
    rows = [r for r in rows if not is_header(r)]
    typical = typical_height(rows)
    fit = _dl_fit(rows, typical)
    if fit is None:
        return {}, 1.0
    offset, scale = fit
    slots: dict[str, list[Word]] = {}
    for row in rows:
        baseline = row_baseline(row, typical)
        slot, distance = min(((s, abs(baseline - offset - scale * y)) for s, y in _DL_BASELINE.items()),
                             key=lambda t: t[1])
        if distance <= 0.4 * _DL_PITCH * scale:
            slots.setdefault(slot, []).extend(row.words)
    return {s: sorted(ws, key=lambda w: w.box[0]) for s, ws in slots.items()}, scale


def _dl_values(words: list[Word], label_x: float | None, scale: float) -> list[Word]:
    """A slot's value words: the number (and anything left of the value column) dropped; a number run
    into its value ('oA' for '9. A') loses its first characters."""
    if label_x is None:
        return words[1:] if words and _is_number_token(words[0].text) else words
    value_x = label_x + _DL_NUMBER_GAP * scale
    kept = []
    for w in words:
        if w.box[0] >= label_x + 0.5 * _DL_NUMBER_GAP * scale:
            kept.append(w)
        elif w.box[2] > value_x + 0.3 * _DL_NUMBER_GAP * scale and len(w.text) >= 2:
            cut = max(1, round(len(w.text) * (value_x - w.box[0]) / max(1, w.box[2] - w.box[0])))
            kept.append(Word(w.text[cut:], w.confidence, (int(value_x), w.box[1], w.box[2], w.box[3])))
    return kept


def _dl_dates(words: list[Word], label_x: float | None, scale: float) -> dict[str, str]:
    """Row 4, '4a. <issue>   4b. <expiry>': a lone date is placed by its column."""
    words = [w for w in words if not _DL_4B.match(w.text.strip())]
    tokens = [w.text for w in words]
    first, rest = split_date(tokens)
    last, _ = split_date(rest if first else tokens, from_end=True)
    if first and last:
        return {"date_of_issue": first, "date_of_expiry": last}
    single = first or last
    if not single:
        return {}
    start = label_x if label_x is not None else words[0].box[0] - _DL_NUMBER_GAP * scale
    second_column = words[0].box[0] - start > 0.6 * _DL_SECOND_COLUMN * scale
    return {"date_of_expiry" if second_column else "date_of_issue": single}


def numbered_fields(rows: Sequence[Row], params: LabelParams, issuer: str | None) -> dict[str, str]:
    """Driving licences: numbered rows ("1." … "9."), each value to the right of its number."""
    slots, scale = _dl_slots(rows)
    if not slots:
        return {}
    number_xs = [ws[0].box[0] for ws in slots.values() if ws and _is_number_token(ws[0].text)]
    label_x = float(statistics.median(number_xs)) if number_xs else None
    values = {slot: _dl_values(ws, label_x, scale) for slot, ws in slots.items()}
    out: dict[str, str] = {}
    for slot, name in (("1", "surname"), ("2", "given_names"), ("4c", "authority"), ("5", "document_number"),
                       ("9", "categories")):
        words = values.get(slot, [])
        if words and name != "categories":
            words = list(split_segments(words, 3.0 * scale * _dl_value_height())[0])
        value = format_value(name, [w.text for w in words], "driving_licence", issuer, params.number_patterns)
        if value:
            out[name] = value
    birth_date, place = split_date([w.text for w in values.get("3", [])])
    place_text = clean_text(place)
    if birth_date:
        out["date_of_birth"] = birth_date
    if place_text:
        out["place_of_birth"] = place_text
    out.update(_dl_dates(values.get("4", []), label_x, scale))
    return out


def _dl_evidence(rows: Sequence[Row]) -> int:
    """How many rows start with an exactly read driving-licence field number."""
    return sum(row.words[0].text.strip() in _DL_EXACT for row in rows)


# ── the visual zone ──────────────────────────────────────────────────────────────────────────────


def infer_l1(ocr: OcrResult, classification: Classification, rows: Sequence[Row] | None = None) -> str | None:
    """The document type: the classifier's; else from the MRZ line lengths; else from DL numbering."""
    if classification.l1:
        return classification.l1
    candidates = mrz_candidates(ocr)
    if candidates:
        return "passport" if any(len(c.text) >= 38 for c in candidates) else "id_card"
    rows = rows if rows is not None else group_rows(w for ln in ocr.lines for w in ln.words)
    return "driving_licence" if _dl_evidence(rows) >= 2 else None


def classified_issuer(classification: Classification) -> str | None:
    """The issuer code of the level-2 class, if any."""
    code = (classification.l2 or "").split(".", 1)[0]
    return code if code in ISSUER_BY_CODE else None


_COUNTRY_WORDS = {_alnum_words(issuer.name)[-1]: issuer.code for issuer in ISSUERS}


def infer_issuer(rows: Sequence[Row]) -> str | None:
    """The issuer whose country name the header shows ('… OF AURELIA'), when the classifier gave none."""
    for row in rows[:4]:
        for word in _alnum_words(row.text):
            close = [code for name, code in _COUNTRY_WORDS.items()
                     if len(word) >= 5 and levenshtein(word, name) <= 1]
            if len(close) == 1:
                return close[0]
    return None


def viz_fields(item: ExtractInput, params: LabelParams) -> dict[str, str]:
    """Every field the label rules read from the visual zone."""
    rows = group_rows(w for ln in item.ocr.lines for w in ln.words)
    if not rows:
        return {}
    l1 = infer_l1(item.ocr, item.classification, rows)
    issuer = classified_issuer(item.classification) or infer_issuer(rows)
    if l1 == "driving_licence":
        return numbered_fields(rows, params, issuer)
    found, labels = labelled_fields(rows, params, l1, issuer)
    if l1 in GRID_TYPES and issuer and params.positional:
        found |= positional_fields(rows, item.ocr, l1, issuer, params, labels, skip=found)
    if len(found) < 2 and (l1 is None or _dl_evidence(rows) >= 2):  # no labels: numbered rows after all?
        found = numbered_fields(rows, params, issuer) or found
    return found


class LabelRules(Variant[ExtractInput, Extraction, LabelParams]):
    """Label-anchored rules over the visual zone (numbered rows on driving licences)."""

    step = "extract"
    model = "label-rules"

    def process(self, item: ExtractInput) -> Extraction:
        fields = viz_fields(item, self.params)
        return Extraction(item.doc_id, fields, sources=dict.fromkeys(fields, "viz"))


# ── MRZ: finding the lines ───────────────────────────────────────────────────────────────────────

_LOOKALIKES = frozenset("KLCESX")  # what OCR makes of the OCR-B filler '<'
_JUNK_LOWER = frozenset("sceo¢€")  # … and in lower case or as symbols


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
        near_filler = any(n == FILLER or n in _JUNK_LOWER for n in neighbours)
        if char in _JUNK_LOWER and near_filler:
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
        mrz_chars = sum(c in MRZ_CHARS or c in _JUNK_LOWER for c in raw)
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


# ── MRZ: aligning a line to its layout ───────────────────────────────────────────────────────────

# Position classes: N digit, C check digit or '<', A letter or '<' (names, codes), L letter, X letter,
# digit or '<', F filler only, S sex (M, F, X or '<'), P / I the first letter of a passport / identity
# card code, T the first letter of a TD2 document code, "=c" the literal character c (an issuer's code and
# document code, where it is known).
_CLASS_CHARS = {
    "N": frozenset("0123456789"),
    "C": frozenset("0123456789<"),
    "A": frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ<"),
    "L": frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    "X": MRZ_CHARS,
    "F": frozenset(FILLER),
    "S": frozenset("MFX<"),
    "P": frozenset("P"),
    "I": frozenset("IAC"),
    "T": frozenset("IACPV"),  # ICAO's A, C, I; some passports and MRV-B visas use the TD2 size too
}
_CLASS_CONFUSIONS = {"N": _TO_DIGIT, "C": _TO_DIGIT, "A": _TO_LETTER, "L": _TO_LETTER, "S": _TO_SEX}
Layout = tuple[tuple[str, ...], ...]  # per line, per position: a class


def _pattern_classes(pattern: str, width: int) -> tuple[str, ...]:
    classes = tuple("L" if c == "L" else "N" for c in pattern[:width])
    return classes + ("F",) * (width - len(classes))


def mrz_layout(kind: str, issuer: str | None = None) -> Layout:
    """Position classes of a TD1 / TD2 / TD3 MRZ: generic (ICAO 9303), or as one issuer writes it (its
    code, number patterns, fillers where it has no optional data; the corpus's issuers issue no TD2)."""
    if kind == "TD2":
        return (("T", "A", *"AAA", *"A" * 31),
                (*"X" * 9, "C", *"AAA", *"N" * 7, "S", *"N" * 7, *"X" * 7, "C"))
    spec = ISSUER_BY_CODE.get(issuer or "")
    if kind == "TD3":
        if spec is None:
            return (("P", "A", *"AAA", *"A" * 39),
                    (*"X" * 9, "C", *"AAA", *"N" * 7, "S", *"N" * 7, *"X" * 14, "C", "C"))
        code = tuple(f"={c}" for c in spec.code)
        return (("=P", "F", *code, *"A" * 39),
                (*_pattern_classes(spec.doc_number, 9), "N", *code, *"N" * 7, "S", *"N" * 7,
                 *_pattern_classes(spec.personal_number, 14), "N" if spec.personal_number else "F", "N"))
    if spec is None:
        return (("I", "A", *"AAA", *"X" * 9, "C", *"X" * 15),
                (*"N" * 7, "S", *"N" * 7, *"AAA", *"X" * 11, "C"),
                tuple("A" * 30))
    code = tuple(f"={c}" for c in spec.code)
    personal = spec.personal_number if "personal_number" in spec.extra_fields.get("id_card", ()) else ""
    return (("=I", "=D", *code, *_pattern_classes(spec.doc_number, 9), "N", *_pattern_classes(personal, 15)),
            (*"N" * 7, "S", *"N" * 7, *code, *"F" * 11, "N"),
            tuple("A" * 30))


def _edge_k(text: str, k: int) -> bool:
    """A 'K' touching a filler, past the document and issuer codes ('P<KSN…' is no misread filler)."""
    return k >= 5 and text[k] == "K" and FILLER in text[k - 1] + text[k + 1:k + 2]


def noise_flags(text: str, noisy: bool = False) -> list[bool]:
    """Look-alike letters that can only be misread fillers: between two fillers, or in the run of fillers
    and look-alikes that ends the line (its leading look-alikes too when they cannot end a name: 'KKKEK');
    in an MRZ with `noisy` fillers, also every 'K' touching a filler."""
    flags = [(c in _LOOKALIKES and 0 < k < len(text) - 1 and text[k - 1] == FILLER == text[k + 1])
             or (noisy and _edge_k(text, k)) for k, c in enumerate(text)]
    tail = re.search(f"[{FILLER}{''.join(sorted(_LOOKALIKES))}]*$", text)
    if tail and len(tail.group()) >= 4:
        lead = tail.group().split(FILLER, 1)[0]
        keep = 0 if lead.count("K") >= 2 or len(lead) >= 4 else len(lead)
        for k in range(tail.start() + keep, len(text)):
            flags[k] = text[k] in _LOOKALIKES
    return flags


def noisy_fillers(texts: Iterable[str]) -> bool:
    """Whether an MRZ's lines show fillers misread as look-alike letters ('<K<', 'KKKEK' at the end, a 'K'
    touching the fillers of a data line): then any 'K' touching a filler is taken for one (otherwise
    kept: names may start or end in K, 'NOWAK<<MAREK')."""
    texts = list(texts)
    noise = sum(sum(noise_flags(t)) for t in texts)
    data_edges = sum(_edge_k(t, k) for t in texts if sum(c.isdigit() for c in t) >= 6 for k in range(len(t)))
    edges = sum(_edge_k(t, k) for t in texts for k in range(len(t)))
    return noise >= 1 or data_edges >= 1 or edges >= 3


def _fit(char: str, klass: str, noise: bool) -> tuple[float, str]:
    """Cost and repaired character of an OCR character at a position of class `klass`."""
    if klass.startswith("="):
        want = klass[1]
        if char == want:
            return 0.0, want
        return (0.35 if want in (_TO_DIGIT.get(char), _TO_LETTER.get(char)) else 1.0), want
    allowed = _CLASS_CHARS[klass]
    if FILLER in allowed and (noise or (klass == "F" and char in _LOOKALIKES)):
        return (0.0 if noise else 0.2), FILLER
    if char in allowed:
        return 0.0, char
    confusion = _CLASS_CONFUSIONS.get(klass, {}).get(char)
    return (0.35, confusion) if confusion else (1.0, FILLER)


def _filler_runs(text: str) -> list[int]:
    """For each character, the length of the run of fillers it belongs to (0 for other characters)."""
    out = [0] * len(text)
    for match in re.finditer(f"{FILLER}+", text):
        out[match.start():match.end()] = [match.end() - match.start()] * (match.end() - match.start())
    return out


def _delete_costs(text: str, noise: list[bool]) -> list[float]:
    """Cost of dropping each OCR character: fillers of long runs and misread fillers are cheap to drop; a
    'K' touching a filler (not known to be one) costs a little more than a filler: names may end in K."""
    runs = _filler_runs(text)
    return [0.5 if runs[k] >= 3 else 0.3 if noise[k] else 0.55 if _edge_k(text, k) else 1.0
            for k in range(len(text))]


def align_line(text: str, template: Sequence[str], noisy: bool = False) -> tuple[float, str, str]:
    """Align an OCR line to a line template by dynamic programming: the cost, the repaired line, and the
    OCR character behind each of its positions (' ' where one was missing).

    Substitutions undo OCR confusions by position class; extra characters are dropped and missing ones
    filled with '<', cheaper inside filler runs and after a line's trailing fillers, so that length errors
    are absorbed where the fillers are rather than inside names and numbers.
    """
    n, m = len(text), len(template)
    noise = noise_flags(text, noisy)
    delete = _delete_costs(text, noise)
    runs = _filler_runs(text)
    inf = float("inf")
    cost = [[inf] * (m + 1) for _ in range(n + 1)]
    back: list[list[tuple[int, int, str] | None]] = [[None] * (m + 1) for _ in range(n + 1)]
    cost[0][0] = 0.0
    for i in range(n + 1):
        in_run = max(runs[i - 1] if i > 0 else 0, runs[i] if i < n else 0) >= 2
        insert_filler = 0.5 if i == n and runs[-1:] != [0] else 0.6 if in_run else 1.0
        for j in range(m + 1):
            here = cost[i][j]
            if here == inf:
                continue
            if i < n and j < m:
                step, char = _fit(text[i], template[j], noise[i])
                if here + step < cost[i + 1][j + 1]:
                    cost[i + 1][j + 1], back[i + 1][j + 1] = here + step, (i, j, char)
            if i < n and here + delete[i] < cost[i + 1][j]:
                cost[i + 1][j], back[i + 1][j] = here + delete[i], (i, j, "")
            if j < m:
                step = insert_filler if FILLER in _CLASS_CHARS.get(template[j], "") else 1.0
                if here + step < cost[i][j + 1]:
                    cost[i][j + 1], back[i][j + 1] = here + step, (i, j, FILLER)
    out, read, i, j = [], [], n, m
    while (step_back := back[i][j]) is not None:
        pi, pj, char = step_back
        if char:
            out.append(char)
            read.append(text[pi] if pi < i else " ")
        i, j = pi, pj
    return cost[n][m], "".join(reversed(out)), "".join(reversed(read))


@dataclass(frozen=True)
class LineFit:
    """One MRZ line: the OCR text it was read from, its repaired form, and the alignment cost."""

    source: str
    line: str
    read: str  # the OCR character behind each position of `line` (' ' where one was missing)
    cost: float


def _line_fit(text: str, template: Sequence[str], noisy: bool) -> LineFit:
    cost, line, read = align_line(text, template, noisy)
    return LineFit(text, line, read, cost)


def assign_lines(candidates: Sequence[MrzCandidate], layout: Layout, max_cost: float) -> list[LineFit | None]:
    """The best candidate for each MRZ line (keeping top-to-bottom order), repaired; None where none fits."""
    noisy = noisy_fillers(c.text for c in candidates)
    fits = [[_line_fit(c.text, t, noisy) for t in layout] for c in candidates]
    best_score, best_pick = 0.0, [None] * len(layout)
    for pick in itertools.product([None, *range(len(candidates))], repeat=len(layout)):
        chosen = [p for p in pick if p is not None]
        if chosen != sorted(set(chosen)):
            continue
        score = 0.0
        for role, p in enumerate(pick):
            if p is not None:
                per_char = fits[p][role].cost / len(layout[role])
                score += (max_cost - per_char) if per_char < max_cost else -1.0
        if score > best_score:
            best_score, best_pick = score, list(pick)
    return [None if p is None else fits[p][role] for role, p in enumerate(best_pick)]


# ── MRZ: repairs guided by the check digits ──────────────────────────────────────────────────────

# Digits an OCR letter may stand for at a digit position, likeliest first.
_DIGIT_ALTERNATIVES = {"G": "680", "B": "83", "S": "58", "Z": "27", "O": "0", "D": "0", "Q": "0", "U": "0",
                       "I": "19", "L": "1", "J": "1", "T": "7", "A": "4"}
CHECK_NAMES = {"TD3": ("document_number", "birth_date", "expiry_date", "personal_number", "final"),
               "TD2": ("document_number", "birth_date", "expiry_date", "final"),
               "TD1": ("document_number", "birth_date", "expiry_date", "final")}


@dataclass(frozen=True)
class Checked:
    """A field protected by the check digit that follows it: its line, first position and length."""

    line: int
    start: int
    length: int
    is_date: bool

    @property
    def digit(self) -> int:
        return self.start + self.length


CHECKED = {
    "TD3": (Checked(1, 0, 9, False), Checked(1, 13, 6, True), Checked(1, 21, 6, True)),
    "TD2": (Checked(1, 0, 9, False), Checked(1, 13, 6, True), Checked(1, 21, 6, True)),
    "TD1": (Checked(0, 5, 9, False), Checked(1, 0, 6, True), Checked(1, 8, 6, True)),
}


def mrz_checks(kind: str, lines: Sequence[str | None]) -> dict[str, bool]:
    """Check digits, with the `mrz` package's hash checks (not its country checks: the issuers are
    fictional). A check over a line that was not read is False."""
    full = "\n".join(line if line is not None else FILLER * MRZ_WIDTH[kind] for line in lines)
    needs: tuple[tuple[int, ...], ...]
    try:
        if kind == "TD3":
            td3 = TD3CodeChecker(full)
            values = (td3.document_number_hash, td3.birth_date_hash, td3.expiry_date_hash,
                      td3.optional_data_hash, td3.final_hash)
            needs = ((1,),) * 5
        elif kind == "TD2":
            td2 = TD2CodeChecker(full)
            values = (td2.document_number_hash, td2.birth_date_hash, td2.expiry_date_hash, td2.final_hash)
            needs = ((1,),) * 4
        else:
            td1 = TD1CodeChecker(full)
            values = (td1.document_number_hash, td1.birth_date_hash, td1.expiry_date_hash, td1.final_hash)
            needs = ((0,), (1,), (1,), (0, 1))
    except Exception:  # noqa: BLE001 — the package refuses malformed input: every check fails
        return dict.fromkeys(CHECK_NAMES[kind], False)
    return {name: bool(ok) and all(lines[k] is not None for k in need)
            for name, ok, need in zip(CHECK_NAMES[kind], values, needs, strict=True)}


def _replace(line: str, start: int, value: str) -> str:
    return line[:start] + value + line[start + len(value):]


def _digit_choices(read: str, current: str) -> str:
    """The digits to try at a position: the current one, then what the OCR letter read there may be."""
    return current + "".join(d for d in _DIGIT_ALTERNATIVES.get(read, "") if d != current)


def _guided(text: str, read: str, passes: Callable[[str], bool]) -> str:
    """`text` (a field and its check digit) with the other likely digits tried where the OCR read a letter
    (three positions at most): the first combination that passes, else `text`."""
    positions = [k for k, r in enumerate(read) if r in _DIGIT_ALTERNATIVES and text[k].isdigit()][:3]
    if passes(text) or not positions:
        return text
    for combo in itertools.product(*(_digit_choices(read[k], text[k]) for k in positions)):
        chars = list(text)
        for k, digit in zip(positions, combo, strict=True):
            chars[k] = digit
        if passes(candidate := "".join(chars)):
            return candidate
    return text


def _date_ok(text: str) -> bool:
    return mrz_date(text[:6], "expiry") is not None and check_digit(text[:6]) == text[6]


def _repair_checked(lines: list[str], reads: list[str], kind: str) -> list[str]:
    """Fields whose check digit fails, where the OCR read letters at digit positions (a date's digits, a
    check digit): those letters' other likely digits, kept if they pass (and make a date)."""
    for spec in CHECKED[kind]:
        line, read = lines[spec.line], reads[spec.line]
        span = line[spec.start:spec.digit + 1]
        if spec.is_date:
            span = _guided(span, read[spec.start:spec.digit + 1], _date_ok)
        else:  # letters are valid in a document number: only its check digit may be a misread letter
            span = _guided(span, " " * spec.length + read[spec.digit], lambda t: check_digit(t[:-1]) == t[-1])
        lines[spec.line] = _replace(line, spec.start, span)
    return lines


def _repair_final(lines: list[str], reads: list[str], kind: str) -> list[str]:
    """The composite check digit read as a letter: its other likely digits, when every field passes."""
    line, pos = 1, MRZ_WIDTH[kind] - 1
    checks = mrz_checks(kind, lines)
    if checks["final"] or not all(v for k, v in checks.items() if k != "final"):
        return lines
    for choice in _digit_choices(reads[line][pos], lines[line][pos])[1:]:
        candidate = [*lines]
        candidate[line] = _replace(candidate[line], pos, choice)
        if mrz_checks(kind, candidate)["final"]:
            return candidate
    return lines


def _fix_optional(value: str, passes: Callable[[str], bool]) -> str:
    """An optional-data field: fillers only after its first filler; look-alike letters just before that
    filler may be misread fillers too (dropped only if the check digit then passes)."""
    first = value.find(FILLER)
    cleaned = value if first < 0 else value[:first] + FILLER * (len(value) - first)
    if passes(cleaned):
        return cleaned
    content = cleaned.rstrip(FILLER)
    while content and content[-1] in _LOOKALIKES:
        content = content[:-1]
        if passes(content.ljust(len(value), FILLER)):
            return content.ljust(len(value), FILLER)
    return cleaned


def tidy_names(field_text: str) -> str:
    """A name field as ICAO writes it, SURNAME<<GIVEN<NAMES<<<…: a longer run of fillers between the names
    is the separator; anything after the given names (past another run of fillers) is noise."""
    parts = [p for p in re.split(f"{FILLER}{{2,}}", field_text.strip(FILLER)) if p]
    return (FILLER * 2).join(parts[:2]).ljust(len(field_text), FILLER)[:len(field_text)]


def _td3_optional_ok(value: str, digit: str) -> bool:
    return (not value.strip(FILLER) and digit in "<0") or check_digit(value) == digit


def _repair_td3(lines: list[str], reads: list[str]) -> list[str]:
    top, data = _repair_checked([*lines], reads, "TD3")
    top = top[:5] + tidy_names(top[5:])
    data = _replace(data, 28, _fix_optional(data[28:42], lambda v: _td3_optional_ok(v, data[42])))
    if not data[28:42].strip(FILLER) and not data[42].isdigit():
        data = _replace(data, 42, FILLER)
    elif not _td3_optional_ok(data[28:42], data[42]):
        personal = _guided(data[28:43], reads[1][28:43], lambda t: _td3_optional_ok(t[:-1], t[-1]))
        data = _replace(data, 28, personal)
    return _repair_final([top, data], reads, "TD3")


def _repair_td2(lines: list[str], reads: list[str]) -> list[str]:
    top, data = _repair_checked([*lines], reads, "TD2")
    top = top[:5] + tidy_names(top[5:])

    def final_ok(optional: str) -> bool:
        return check_digit(data[0:10] + data[13:20] + data[21:28] + optional) == data[35]

    data = _replace(data, 28, _fix_optional(data[28:35], final_ok))
    return _repair_final([top, data], reads, "TD2")


def _repair_td1(lines: list[str], reads: list[str]) -> list[str]:
    top, data, names = _repair_checked([*lines], reads, "TD1")

    def final_ok(optional: str, optional2: str) -> bool:
        return check_digit(top[5:15] + optional + data[0:7] + data[8:15] + optional2) == data[29]

    optional2 = _fix_optional(data[18:29], lambda v: final_ok(top[15:30], v))
    top = _replace(top, 15, _fix_optional(top[15:30], lambda v: final_ok(v, optional2)))
    data = _replace(data, 18, _fix_optional(data[18:29], lambda v: final_ok(top[15:30], v)))
    return _repair_final([top, data, tidy_names(names)], reads, "TD1")


_REPAIRS: dict[str, Callable[[list[str], list[str]], list[str]]] = {
    "TD1": _repair_td1, "TD2": _repair_td2, "TD3": _repair_td3}


# ── MRZ: reading ─────────────────────────────────────────────────────────────────────────────────


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
        raw = _REPAIRS[kind](raw, reads)
    lines = tuple(line if f else None for line, f in zip(raw, fits, strict=True))
    name_index = 2 if kind == "TD1" else 0
    name_fit, name_line = fits[name_index], lines[name_index]
    name_field = (name_line if kind == "TD1" else name_line[5:]) if name_line else ""
    return MrzReading(kind, lines, mrz_checks(kind, lines), mrz_fields(kind, lines),
                      names_full=bool(name_field) and not name_field.endswith(FILLER),
                      names_repaired=name_fit is not None and name_line != name_fit.source)


def _read_format(kind: str, candidates: Sequence[MrzCandidate], issuer: str | None,
                 params: MrzParams) -> MrzReading | None:
    """The MRZ read in one format: the lines aligned to the generic ICAO layout and, if allowed, to
    issuers' own layouts (the classified issuer's, or every issuer's when unknown; none for TD2); the
    reading with most valid check digits wins (the classified issuer's layout counting half a check
    more), then the cheapest repair."""
    codes: list[str | None] = [None]
    if params.issuer_layouts and kind != "TD2":
        codes += [issuer] if issuer else [i.code for i in ISSUERS]
    best: tuple[tuple[float, float], MrzReading] | None = None
    for code in codes:
        fits = assign_lines(candidates, mrz_layout(kind, code), params.max_line_cost)
        if all(f is None for f in fits):
            continue
        reading = _reading(kind, fits, params)
        bonus = 0.5 if code is not None and code == issuer else 0.0
        score = (sum(reading.checks.values()) + bonus, -sum(f.cost for f in fits if f))
        if best is None or score > best[0]:
            best = (score, reading)
    return best[1] if best else None


def read_mrz(ocr: OcrResult, l1: str | None, issuer: str | None, params: MrzParams) -> MrzReading | None:
    """Find, repair, check and parse the MRZ; None when the document shows none. Where its format is in
    doubt (`mrz_formats`), a later format's reading is taken only with more valid check digits."""
    candidates = mrz_candidates(ocr, params.min_length)
    best: MrzReading | None = None
    for kind in mrz_formats(l1, candidates):
        reading = _read_format(kind, candidates, issuer, params)
        if reading and (best is None or sum(reading.checks.values()) > sum(best.checks.values())):
            best = reading
    return best


_FIELD_CHECK = {"document_number": "document_number", "date_of_birth": "birth_date",
                "date_of_expiry": "expiry_date"}


def trusted(reading: MrzReading, name: str, issuer: str | None) -> bool:
    """Whether an MRZ field stands without the VIZ: its check digit passes (TD1 / TD2 optional data: the
    composite), names are neither full (maybe truncated) nor repaired, the code is a known one."""
    if name in _FIELD_CHECK:
        return reading.checks.get(_FIELD_CHECK[name], False)
    if name == "personal_number":
        return reading.checks.get("personal_number" if reading.kind == "TD3" else "final", False)
    if name in ("surname", "given_names"):
        return not reading.names_full and not reading.names_repaired
    if name == "nationality":
        return reading.fields.get(name) in (ISSUER_BY_CODE if issuer is None else (issuer,))
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
        if (a == b or (b == FILLER and a in _LOOKALIKES)) and match(i + 1, j + 1):
            return True
        return a in _LOOKALIKES and FILLER in viz_text[max(0, j - 1):j + 1] and match(i + 1, j)

    return match(0, 0)


def _prefer_viz(reading: MrzReading, name: str, value: str, viz: dict[str, str], issuer: str | None) -> bool:
    if name not in viz:
        return False
    if not trusted(reading, name, issuer):
        return True
    return name in ("surname", "given_names") and same_name_but_fillers(value, viz[name])


def mrz_extraction(item: ExtractInput, params: MrzParams, viz: dict[str, str] | None) -> Extraction:
    """The MRZ's fields; where one is not trusted and the VIZ (if given) has it, the VIZ value; the VIZ
    for the fields the MRZ does not carry."""
    issuer = classified_issuer(item.classification)
    reading = read_mrz(item.ocr, infer_l1(item.ocr, item.classification), issuer, params)
    viz = viz or {}
    if reading is None:
        return Extraction(item.doc_id, dict(viz), sources=dict.fromkeys(viz, "viz"))
    fields: dict[str, str] = {}
    sources: dict[str, str] = {}
    for name, value in reading.fields.items():
        use_viz = _prefer_viz(reading, name, value, viz, issuer)
        fields[name], sources[name] = (viz[name], "viz") if use_viz else (value, "mrz")
    for name, value in viz.items():
        if name not in fields:
            fields[name], sources[name] = value, "viz"
    return Extraction(item.doc_id, fields, tuple(line for line in reading.lines if line is not None),
                      reading.checks, sources)


@dataclass(frozen=True)
class MrzFirstParams:
    mrz: MrzParams = field(default_factory=MrzParams)
    labels: LabelParams = field(default_factory=LabelParams)


class MrzFirst(Variant[ExtractInput, Extraction, "MrzFirstParams"]):
    """The MRZ where its check digits hold, the label rules for everything else."""

    step = "extract"
    model = "mrz-first"

    def process(self, item: ExtractInput) -> Extraction:
        return mrz_extraction(item, self.params.mrz, viz_fields(item, self.params.labels))


class MrzOnly(Variant[ExtractInput, Extraction, MrzParams]):
    """The MRZ alone (a baseline): no visual-zone fallback."""

    step = "extract"
    model = "mrz-only"

    def process(self, item: ExtractInput) -> Extraction:
        return mrz_extraction(item, self.params, None)


def variants() -> list[Variant]:
    """The extraction catalog."""
    return [
        LabelRules("v1", LabelParams(),
                   "label-anchored rules over the visual zone; numbered rows on driving licences"),
        MrzFirst("v1", MrzFirstParams(),
                 "MRZ repaired and check-digit verified; label rules where a check fails and for the rest"),
        MrzOnly("v1", MrzParams(), "the MRZ alone, repaired and check-digit verified (baseline, no VIZ)"),
    ]
