"""What stands of the MRZ repairs at characters the OCR was sure of, and the issuing-state and nationality codes.

The alignment and the repairs propose changes by position class (a letter where a digit belongs, a filler
look-alike past the names …). A character the OCR read with at least `MrzParams.sure` confidence keeps the
change only where something confirms it: the check digit of its field (or the composite, for fields only it
covers) then holds, or — in a names field — it is a filler past the end of the names. Otherwise it is read as
printed: a real document's odd but printed characters (digits in transliterated names, a malformed zone, a
specimen's wrong check digit) stay as they are.

Codes are never aligned to an issuer: a code read that is a known code (ICAO's table and the layouts' issuer
codes, common.mrz9303.known_codes) stays; an unknown one becomes a known code only when exactly one is
reachable by OCR confusions at the characters the OCR was unsure of (or that are no letters); else it stays
as read.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Sequence

from common.icao import FILLER
from common.mrz9303 import CLASS_CHARS, FIELDS, FINAL, Field
from steps.extract.mrz_find import LOOKALIKES
from steps.extract.mrz_repair import mrz_checks

# What OCR makes of a letter or a filler in a code, and of the letters digits are misread for.
_CODE_CONFUSIONS = {
    "0": "OQDU", "1": "IL", "2": "Z", "3": "B", "4": "A", "5": "S", "6": "G", "7": "T", "8": "B", "9": "G",
    "O": "QDUC", "Q": "OD", "D": "OQB", "U": "OVJ", "V": "UY", "I": "LJT", "L": "IJ", "J": "IL", "M": "NHW",
    "N": "MHW", "H": "NMK", "W": "VNM", "E": "FB", "F": "EP", "P": "RF", "R": "PBK", "B": "RED", "C": "GO",
    "G": "CO", "K": "XRH", "X": "KY", "Y": "VX", "S": "Z", "Z": "S", "T": "I", "A": "R",
}
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
CODE_FIELDS = ("country", "nationality")


def _code_options(char: str, unsure: bool) -> str:
    if char == " ":  # no character was read there
        return _LETTERS + FILLER
    if not unsure and char in CLASS_CHARS["A"]:
        return char
    return char + _CODE_CONFUSIONS.get(char, "") + (FILLER if char in LOOKALIKES or char == FILLER else "")


def resolve_code(read: str, unsure: Sequence[bool], known: Collection[str]) -> str | None:
    """The code an MRZ shows where the OCR read `read` (' ' where it read nothing): `read` if known; else the
    one known code its unsure characters (or non-letters) can be confusions of; None when there is none or
    more than one."""
    if read in known:
        return read
    options = [_code_options(c, u) for c, u in zip(read, unsure, strict=True)]
    matches = {"".join(combo) for combo in itertools.product(*options)} & set(known)
    return matches.pop() if len(matches) == 1 else None


def names_end(read: str) -> int:
    """Where a names field as read ('SURNAME<<GIVEN<NAMES<<<…') ends: at the run of fillers after the given
    names; only fillers belong past it."""
    text = read.replace(" ", FILLER)
    separator = text.find(FILLER * 2)
    if separator < 0:
        return len(text)
    given = next((k for k in range(separator, len(text)) if text[k] != FILLER), None)
    if given is None:
        return separator
    end = text.find(FILLER * 2, given)
    return len(text) if end < 0 else end


def _cells(spec: Field) -> list[int]:
    return [*range(spec.start, spec.end), *([spec.check] if spec.check is not None else [])]


def _final_only(kind: str, spec: Field) -> bool:
    """A field without a check digit of its own that the composite check covers."""
    return spec.check is None and kind in FINAL and any(
        line == spec.line and start <= spec.start and spec.end <= end for line, start, end in FINAL[kind][1])


def settle(kind: str, lines: Sequence[str], reads: Sequence[str], sure: Sequence[Sequence[bool]],
           known: Collection[str]) -> list[str]:
    """The repaired `lines` with every unconfirmed change at a sure character undone, and the codes read
    resolved (see the module docstring). `reads`: the OCR character behind each position (' ' where none);
    `sure`: per position, whether the OCR was sure of it."""
    out = [list(line) for line in lines]
    checks = mrz_checks(kind, lines)

    def undo(spec: Field, positions: Sequence[int], keep: bool) -> None:
        for k in positions:
            if sure[spec.line][k] and not keep and out[spec.line][k] != reads[spec.line][k]:
                out[spec.line][k] = reads[spec.line][k]

    later = []
    for spec in FIELDS[kind]:
        if spec.name in CODE_FIELDS or spec.name == "sex":
            continue  # codes: resolved below; the sex: one class member fits what OCR makes of it
        if _final_only(kind, spec):
            later.append(spec)
        elif spec.check is not None:
            undo(spec, _cells(spec), checks.get("personal_number" if spec.name == "optional_data" else spec.name,
                                                False))
        elif spec.name == "names":
            end = spec.start + names_end(reads[spec.line][spec.start:spec.end])
            undo(spec, range(spec.start, end), False)
            undo(spec, [k for k in range(end, spec.end) if out[spec.line][k] != FILLER], False)
        else:
            undo(spec, _cells(spec), False)
    if kind in FINAL:
        (line, position), _ = FINAL[kind]
        final_ok = mrz_checks(kind, ["".join(chars) for chars in out])["final"]
        for spec in later:
            undo(spec, _cells(spec), final_ok)
        if sure[line][position] and not final_ok:
            out[line][position] = reads[line][position]
    for spec in FIELDS[kind]:
        if spec.name in CODE_FIELDS:
            read = reads[spec.line][spec.start:spec.end]
            flags = [not s or c not in CLASS_CHARS["A"] for c, s in zip(read, sure[spec.line][spec.start:spec.end],
                                                                         strict=True)]
            code = resolve_code(read, flags, known)
            if code is None:  # kept as read, a filler where nothing was read (never a layout's letter)
                code = read.replace(" ", FILLER)
            out[spec.line][spec.start:spec.end] = list(code)
    return ["".join(chars) for chars in out]
