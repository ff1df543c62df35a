"""Tolerant value parsing: OCR tokens → field values (dates as ISO, names, sex, country codes, numbers fitted to
the issuers' patterns, licence categories)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date
from functools import cache

from common.text import fold
from steps.extract.layouts import IssuerLayouts
from steps.extract.text import TO_DIGIT, TO_LETTER, TO_SEX, alnum, levenshtein
from steps.normalize import MONTHS, parse_date

DATE_FIELDS = ("date_of_birth", "date_of_expiry", "date_of_issue")
# The cost of undoing a confusion in a printed number: the commonest ones cost least.
_CONFUSION_COST = {"O": 0.2, "I": 0.2, "0": 0.2, "1": 0.25, "S": 0.3, "5": 0.3, "B": 0.3, "8": 0.3,
                   "Z": 0.3, "2": 0.3, "G": 0.35, "6": 0.35, "D": 0.4, "Q": 0.4, "L": 0.45, "J": 0.45,
                   "U": 0.5, "T": 0.5, "7": 0.5, "A": 0.5, "4": 0.5}


def _digit_token(token: str) -> str:
    """A token of a printed date, letter/digit confusions undone where it is mostly digits."""
    digits = sum(c.isdigit() for c in token)
    if digits and digits >= len(token) / 2:
        return "".join(TO_DIGIT.get(c, c) for c in token)
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
            char = TO_SEX.get(char, char) if len(letters) == 1 else char
            if char in "MFX":
                return char
    return None


def read_code(tokens: Sequence[str], known: Sequence[str], prefer: str | None = None) -> str | None:
    """A 3-letter country code; a reading within one edit of a known issuer code becomes that code (`prefer`
    first, then the others in order)."""
    codes = ([prefer] if prefer else []) + [code for code in known if code != prefer]
    for token in tokens[:2]:
        letters = "".join(TO_LETTER.get(c, c) for c in alnum(token))
        if len(letters) < 2:
            continue
        close = [c for c in codes if levenshtein(letters, c) <= 1]
        if close:
            return close[0]
        if len(letters) == 3:
            return letters
    return None


_CATEGORY_LOOKALIKES = {"1": "1IL", "2": "2Z", "0": "0O", "8": "8B", "B": "B8", "E": "EF", "D": "D0O"}


def read_categories(text: str, catalogue: Sequence[str]) -> str | None:
    """Driving-licence categories, in `catalogue` order, from OCR text run together: 'A2BBEC' → 'A2 B BE C'."""
    chars = alnum(text)
    if not chars:
        return None

    @cache
    def best(pos: int, last: int) -> tuple[float, tuple[str, ...]]:
        if pos == len(chars):
            return 0.0, ()
        skip_cost, skip_codes = best(pos + 1, last)
        options = [(skip_cost + 1.0, skip_codes)]  # a stray character
        for index in range(last + 1, len(catalogue)):
            code = catalogue[index]
            piece = chars[pos:pos + len(code)]
            pairs = list(zip(piece, code, strict=False))
            if len(piece) == len(code) and all(p in _CATEGORY_LOOKALIKES.get(c, c) for p, c in pairs):
                rest_cost, rest_codes = best(pos + len(code), index)
                misses = sum(p != c for p, c in pairs)
                options.append((rest_cost + 0.4 * misses - 0.01 * len(code), (code, *rest_codes)))
        return min(options, key=lambda o: o[0])

    cost, codes = best(0, -1)
    return " ".join(codes) if codes and cost < 0.5 * len(chars) + 1 else None


def _pattern_cost(char: str, klass: str, letters: str) -> tuple[float, str]:
    """Cost and repaired character of reading `char` at a number-pattern position (L, 9/1 or literal).
    Letters outside `letters` (the issuers' document-number letters) cost a little: issuers avoid them so
    that numbers read back safely."""
    if klass in "91":
        if char.isdigit():
            return 0.0, char
        return (_CONFUSION_COST[char], TO_DIGIT[char]) if char in TO_DIGIT else (1.0, char)
    if klass == "L":
        if char.isalpha():
            return (0.0 if char in letters else 0.4), char
        return (_CONFUSION_COST[char], TO_LETTER[char]) if char in TO_LETTER else (1.0, char)
    return (0.0, char) if char == klass else (1.0, klass)


def _doubled(text: str, i: int) -> bool:
    """Whether text[i] repeats a neighbour, up to a letter/digit confusion ('1I', '8B')."""
    here = TO_DIGIT.get(text[i], text[i])
    return any(0 <= k < len(text) and TO_DIGIT.get(text[k], text[k]) == here for k in (i - 1, i + 1))


def fit_pattern(text: str, pattern: str, letters: str) -> tuple[float, str]:
    """Align OCR text to a number pattern (L letter, 9/1 digit, '/' literal): the cost and the repaired
    text ('?' where the OCR missed a character); `letters` are those issuers use in numbers."""
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
                step, char = _pattern_cost(text[i], pattern[j], letters)
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


def _number_patterns(field_name: str, l1: str | None, issuer: str | None, layouts: IssuerLayouts) -> list[str]:
    known = layouts.issuer(issuer)
    issuers = [known] if known else list(layouts.issuers)
    if field_name == "personal_number":
        return [i.personal_number for i in issuers if i.personal_number]
    if l1 == "driving_licence":
        return [i.dl_number for i in issuers]
    if l1 == "id_card":
        return [i.id_number for i in issuers]
    if l1 == "passport":
        return [i.doc_number for i in issuers]
    return list(dict.fromkeys([i.doc_number for i in issuers] + [i.id_number for i in issuers]
                              + [i.dl_number for i in issuers]))


def read_number(tokens: Sequence[str], field_name: str, l1: str | None, issuer: str | None,
                layouts: IssuerLayouts, use_patterns: bool = True) -> str | None:
    """A document or personal number, repaired to the issuer's pattern where it fits closely."""
    raw = re.sub(r"[^A-Z0-9/]", "", fold("".join(tokens)))
    if len(raw) < 3:
        return None
    if not use_patterns:
        return raw
    patterns = _number_patterns(field_name, l1, issuer, layouts)
    fits = [(c, t) for c, t in (fit_pattern(raw, p, layouts.doc_letters) for p in patterns) if "?" not in t]
    if fits:  # any issuer's pattern when the issuer is unknown: then only a close fit counts
        best_cost, best_text = min(fits)
        if best_cost <= (max(1.3, 0.2 * len(best_text)) if layouts.issuer(issuer) else 0.6):
            return best_text
    return raw


def format_value(name: str, tokens: list[str], l1: str | None, issuer: str | None, layouts: IssuerLayouts,
                 number_patterns: bool = True) -> str | None:
    """A field's value from the OCR tokens found for it."""
    if not tokens:
        return None
    if name in DATE_FIELDS:
        return split_date(tokens)[0] or read_date(" ".join(tokens))
    if name == "sex":
        return read_sex(tokens)
    if name == "nationality":
        return read_code(tokens, layouts.codes, issuer)
    if name in ("document_number", "personal_number"):
        return read_number(tokens, name, l1, issuer, layouts, number_patterns)
    if name == "categories":
        return read_categories(" ".join(tokens), layouts.categories)
    return clean_text(tokens)

