"""MRZ repairs guided by the check digits (verified with the `mrz` package): letters read at digit positions
tried as their likely digits, optional-data fillers and name separators tidied."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mrz.checker.td1 import TD1CodeChecker
from mrz.checker.td2 import TD2CodeChecker
from mrz.checker.td3 import TD3CodeChecker

from common.icao import FILLER, check_digit
from steps.extract.mrz_find import LOOKALIKES, MRZ_WIDTH
from steps.normalize import mrz_date

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
    while content and content[-1] in LOOKALIKES:
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


REPAIRS: dict[str, Callable[[list[str], list[str]], list[str]]] = {
    "TD1": _repair_td1, "TD2": _repair_td2, "TD3": _repair_td3}

