"""MRZ repairs guided by the check digits (common/mrz9303.py): letters read at digit positions tried as their
likely digits, digits the OCR was unsure of (its own confidence per character) tried as the digits OCR confuses
them with, optional-data fillers and name separators tidied."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from common.icao import FILLER, MrzError, check_digit
from common.mrz9303 import FIELDS, FINAL, SHAPE, parse
from steps.extract.mrz_find import LOOKALIKES
from steps.normalize import mrz_date

# Digits an OCR letter may stand for at a digit position, likeliest first.
_DIGIT_ALTERNATIVES = {"G": "680", "B": "83", "S": "58", "Z": "27", "O": "0", "D": "0", "Q": "0", "U": "0",
                       "I": "19", "L": "1", "J": "1", "T": "7", "A": "4"}
# Digits OCR-B digits are misread as (and back), for digits the OCR was unsure of.
_DIGIT_CONFUSIONS = {"0": "869", "1": "74", "2": "73", "3": "8952", "4": "19", "5": "638", "6": "580",
                     "7": "12", "8": "36095", "9": "8304"}
CHECK_NAMES = {kind: tuple("personal_number" if f.name == "optional_data" else f.name
                           for f in FIELDS[kind] if f.check is not None) + (("final",) if kind in FINAL else ())
               for kind in SHAPE}


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


CHECKED = {kind: tuple(Checked(f.line, f.start, f.length, f.name.endswith("_date"))
                       for f in FIELDS[kind] if f.check is not None and f.name != "optional_data")
           for kind in SHAPE}


def _lines_needed(kind: str) -> dict[str, set[int]]:
    needs = {("personal_number" if f.name == "optional_data" else f.name): {f.line}
             for f in FIELDS[kind] if f.check is not None}
    if kind in FINAL:
        (line, _), spans = FINAL[kind]
        needs["final"] = {line, *(k for k, _, _ in spans)}
    return needs


def mrz_checks(kind: str, lines: Sequence[str | None]) -> dict[str, bool]:
    """Check digits (common.mrz9303.parse; TD3's optional-data check named 'personal_number'). A check over
    a line that was not read is False."""
    count, width = SHAPE[kind]
    full = [line if line is not None else FILLER * width for line in lines][:count]
    try:
        checks = parse(full, kind).checks
    except MrzError:  # a line of the wrong length or alphabet: every check fails
        return dict.fromkeys(CHECK_NAMES[kind], False)
    named = {("personal_number" if name == "optional_data" else name): ok for name, ok in checks.items()}
    return {name: named[name] and all(lines[k] is not None for k in need)
            for name, need in _lines_needed(kind).items()}


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


def _number_ok(text: str) -> bool:
    return check_digit(text[:-1]) == text[-1]


def _unsure_digit(text: str, unsure: Sequence[bool], passes: Callable[[str], bool]) -> str:
    """`text` (a field and its check digit) with one digit the OCR was unsure of replaced by a digit OCR
    confuses it with — only when exactly one such change passes; else `text`."""
    if passes(text):
        return text
    found = {text[:k] + d + text[k + 1:] for k, char in enumerate(text) if unsure[k] and char.isdigit()
             for d in _DIGIT_CONFUSIONS[char]}
    passing = [candidate for candidate in found if passes(candidate)]
    return passing[0] if len(passing) == 1 else text


def _round_zeros(text: str, passes: Callable[[str], bool]) -> str:
    """A document number (and its check digit) that fails: its round letters (O, Q, D), which OCR-B draws
    almost as its 0 and OCR reads as either with equal confidence, tried as 0 — all of them, or one — when
    exactly one such reading passes; else `text`."""
    rounds = [k for k, char in enumerate(text[:-1]) if char in "OQD"]
    if passes(text) or not rounds:
        return text
    def zeroed(positions: Sequence[int]) -> str:
        return "".join("0" if k in positions else char for k, char in enumerate(text))
    found = {zeroed(rounds), *(zeroed([k]) for k in rounds)}
    passing = [candidate for candidate in found if passes(candidate)]
    return passing[0] if len(passing) == 1 else text


def _repair_checked(lines: list[str], reads: list[str], kind: str, unsure: Sequence[Sequence[bool]]) -> list[str]:
    """Fields whose check digit fails, where the OCR read letters at digit positions (a date's digits, a
    check digit): those letters' other likely digits, kept if they pass (and make a date); a document
    number's round letters as zeros (`_round_zeros`); then, where it still fails, one digit the OCR was
    unsure of, if exactly one of its confusions passes."""
    for spec in CHECKED[kind]:
        line, read = lines[spec.line], reads[spec.line]
        span = line[spec.start:spec.digit + 1]
        passes = _date_ok if spec.is_date else _number_ok
        if spec.is_date:
            span = _guided(span, read[spec.start:spec.digit + 1], _date_ok)
        else:  # letters are valid in a document number: its check digit may be a misread letter, an O a 0
            span = _round_zeros(_guided(span, " " * spec.length + read[spec.digit], _number_ok), _number_ok)
        span = _unsure_digit(span, unsure[spec.line][spec.start:spec.digit + 1], passes)
        lines[spec.line] = _replace(line, spec.start, span)
    return lines


def _repair_final(lines: list[str], reads: list[str], kind: str, unsure: Sequence[Sequence[bool]]) -> list[str]:
    """The composite check digit read as a letter: its other likely digits, when every field passes (or,
    read as a digit the OCR was unsure of, the one confusion that passes, if only one does)."""
    if kind not in FINAL:
        return lines
    (line, pos), _ = FINAL[kind]
    checks = mrz_checks(kind, lines)
    if checks["final"] or not all(v for k, v in checks.items() if k != "final"):
        return lines
    choices = _digit_choices(reads[line][pos], lines[line][pos])[1:]
    if unsure[line][pos] and lines[line][pos].isdigit():
        choices += _DIGIT_CONFUSIONS[lines[line][pos]]
    passing = []
    for choice in dict.fromkeys(choices):
        candidate = [*lines]
        candidate[line] = _replace(candidate[line], pos, choice)
        if mrz_checks(kind, candidate)["final"]:
            passing.append(candidate)
    return passing[0] if len(passing) == 1 else lines


def _fix_optional(value: str, passes: Callable[[str], bool]) -> str:
    """An optional-data field whose check fails: fillers only after its first filler (a single leading filler
    before data is the issuer's: Spain's '<44282767Q0'); look-alike letters just
    before that filler may be misread fillers too (dropped only if the check digit then passes). A field that
    passes as read stays (real documents have fillers inside their optional data: 'USA' 500101920<0918)."""
    if passes(value):
        return value
    lead = 1 if value[:1] == FILLER and value[1:2] != FILLER else 0  # one filler, then data: '<44282767Q0'
    first = value.find(FILLER, lead)
    cleaned = value if first < 0 else value[:first] + FILLER * (len(value) - first)
    if passes(cleaned):
        return cleaned
    content = cleaned.rstrip(FILLER)
    while content and content[-1] in LOOKALIKES:
        content = content[:-1]
        if passes(content.ljust(len(value), FILLER)):
            return content.ljust(len(value), FILLER)
    return cleaned


def tidy_names(field_text: str) -> str:
    """A name field as ICAO writes it, SURNAME<<GIVEN<NAMES<<<…: a longer run of fillers between the names
    is the separator; anything after the given names (past another run of fillers) is noise. A field that
    starts with the separator has no primary identifier ('<<JOCELYN<MICHELLE'): it keeps it, names in place."""
    body = field_text.rstrip(FILLER)
    empty_surname = body.startswith(FILLER * 2)
    parts = [p for p in re.split(f"{FILLER}{{2,}}", body.strip(FILLER)) if p]
    names = (FILLER * 2).join(([""] if empty_surname else []) + parts[:1 if empty_surname else 2])
    return names.ljust(len(field_text), FILLER)[:len(field_text)]


def _td3_optional_ok(value: str, digit: str) -> bool:
    return (not value.strip(FILLER) and digit in "<0") or check_digit(value) == digit


Unsure = Sequence[Sequence[bool]]


def _repair_td3(lines: list[str], reads: list[str], unsure: Unsure) -> list[str]:
    top, data = _repair_checked([*lines], reads, "TD3", unsure)
    top = top[:5] + tidy_names(top[5:])
    data = _replace(data, 28, _fix_optional(data[28:42], lambda v: _td3_optional_ok(v, data[42])))
    if not data[28:42].strip(FILLER) and not data[42].isdigit():
        data = _replace(data, 42, FILLER)
    elif not _td3_optional_ok(data[28:42], data[42]):
        personal = _guided(data[28:43], reads[1][28:43], lambda t: _td3_optional_ok(t[:-1], t[-1]))
        data = _replace(data, 28, personal)
    return _repair_final([top, data], reads, "TD3", unsure)


def _repair_td2(lines: list[str], reads: list[str], unsure: Unsure) -> list[str]:
    top, data = _repair_checked([*lines], reads, "TD2", unsure)
    top = top[:5] + tidy_names(top[5:])

    def final_ok(optional: str) -> bool:
        return check_digit(data[0:10] + data[13:20] + data[21:28] + optional) == data[35]

    data = _replace(data, 28, _fix_optional(data[28:35], final_ok))
    return _repair_final([top, data], reads, "TD2", unsure)


def _repair_td1(lines: list[str], reads: list[str], unsure: Unsure) -> list[str]:
    top, data, names = _repair_checked([*lines], reads, "TD1", unsure)

    def final_ok(optional: str, optional2: str) -> bool:
        return check_digit(top[5:15] + optional + data[0:7] + data[8:15] + optional2) == data[29]

    optional2 = _fix_optional(data[18:29], lambda v: final_ok(top[15:30], v))
    top = _replace(top, 15, _fix_optional(top[15:30], lambda v: final_ok(v, optional2)))
    data = _replace(data, 18, _fix_optional(data[18:29], lambda v: final_ok(top[15:30], v)))
    return _repair_final([top, data, tidy_names(names)], reads, "TD1", unsure)


def _repair_visa(kind: str) -> Callable[[list[str], list[str], Unsure], list[str]]:
    """MRV-A / MRV-B: the three checked fields and the names; the optional data has no check to guide it."""
    def repair(lines: list[str], reads: list[str], unsure: Unsure) -> list[str]:
        top, data = _repair_checked([*lines], reads, kind, unsure)
        return [top[:5] + tidy_names(top[5:]), data]
    return repair


def _repair_fra_cni(lines: list[str], reads: list[str], unsure: Unsure) -> list[str]:
    """The French card: its checked fields and the composite (its given names keep their own separators)."""
    return _repair_final(_repair_checked([*lines], reads, "FRA-CNI", unsure), reads, "FRA-CNI", unsure)


REPAIRS: dict[str, Callable[[list[str], list[str], Unsure], list[str]]] = {
    "TD1": _repair_td1, "TD2": _repair_td2, "TD3": _repair_td3, "MRV-A": _repair_visa("MRV-A"),
    "MRV-B": _repair_visa("MRV-B"), "FRA-CNI": _repair_fra_cni}


def keep_composite(kind: str, read: Sequence[str], repaired: Sequence[str]) -> list[str]:
    """`repaired` with the repairs of checked fields undone where the zone passed its composite check as read
    and the repairs broke it: the composite covers those fields too, so a field that fails its own check as
    read is misprinted (a specimen's check digit), not misread. The fewest fields are undone that make the
    composite pass again; none when no undo does."""
    out = list(repaired)
    if kind not in FINAL or not mrz_checks(kind, read)["final"] or mrz_checks(kind, out)["final"]:
        return out
    changed = [spec for spec in CHECKED[kind]
               if out[spec.line][spec.start:spec.digit + 1] != read[spec.line][spec.start:spec.digit + 1]]
    for size in range(1, len(changed) + 1):
        for specs in itertools.combinations(changed, size):
            undone = [*out]
            for spec in specs:
                undone[spec.line] = _replace(undone[spec.line], spec.start, read[spec.line][spec.start:spec.digit + 1])
            if mrz_checks(kind, undone)["final"]:
                return undone
    return out
