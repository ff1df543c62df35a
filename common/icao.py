"""ICAO Doc 9303 primitives shared by the generator (corpus/mrz.py) and the extractors (steps/extract/)."""

from __future__ import annotations

from common.errors import BadInput
from common.text import SPECIAL_LETTERS, strip_marks

FILLER = "<"
MRZ_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<"


class MrzError(BadInput):
    """A value cannot be written in a machine-readable zone (a character outside the MRZ alphabet, too long)."""


def check_digit(field: str) -> str:
    """ICAO 9303 check digit: weights 7, 3, 1 over digits, letters (A=10 … Z=35) and '<' (0)."""
    total = 0
    for position, char in enumerate(field):
        if char.isdigit():
            value = int(char)
        elif "A" <= char <= "Z":
            value = ord(char) - ord("A") + 10
        elif char == FILLER:
            value = 0
        else:
            raise MrzError(f"character {char!r} is not allowed in an MRZ field: {field!r}")
        total += value * (7, 3, 1)[position % 3]
    return str(total % 10)


def transliterate(text: str) -> str:
    """Latin text to MRZ characters: diacritics dropped, ß→SS etc., spaces/hyphens/apostrophes → '<'."""
    out = []
    for char in text.upper():
        if char in SPECIAL_LETTERS:
            out.append(SPECIAL_LETTERS[char].upper())
            continue
        for c in strip_marks(char):
            if "A" <= c <= "Z" or c.isdigit():
                out.append(c)
            elif c in " -'’.,":
                out.append(FILLER)
    return "".join(out)
