"""ICAO Doc 9303 machine-readable zones: check digits, transliteration, TD1 and TD3 lines.

The generator writes MRZs with this module; the tests verify them with an independent checker
(the `mrz` package).
"""

from __future__ import annotations

import unicodedata
from datetime import date

FILLER = "<"
_SPECIAL = {"ß": "SS", "Æ": "AE", "æ": "AE", "Ø": "OE", "ø": "OE", "Ł": "L", "ł": "L", "Đ": "D", "đ": "D",
            "Þ": "TH", "þ": "TH", "Œ": "OE", "œ": "OE", "Ĳ": "IJ"}


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
            raise ValueError(f"character {char!r} is not allowed in an MRZ field: {field!r}")
        total += value * (7, 3, 1)[position % 3]
    return str(total % 10)


def transliterate(text: str) -> str:
    """Latin text to MRZ characters: diacritics dropped, ß→SS etc., spaces/hyphens/apostrophes → '<'."""
    out = []
    for char in text.upper():
        if char in _SPECIAL:
            out.append(_SPECIAL[char].upper())
            continue
        base = unicodedata.normalize("NFKD", char)
        base = "".join(c for c in base if not unicodedata.combining(c))
        for c in base:
            if "A" <= c <= "Z" or c.isdigit():
                out.append(c)
            elif c in " -'’.,":
                out.append(FILLER)
    return "".join(out)


def name_field(surname: str, given_names: str, width: int) -> str:
    """SURNAME<<GIVEN<NAMES padded or truncated to width (given names are truncated first)."""
    primary = transliterate(surname).strip(FILLER)
    secondary = transliterate(given_names).strip(FILLER)
    text = f"{primary}<<{secondary}" if secondary else primary
    if len(text) > width:
        text = text[:width]
    return text.ljust(width, FILLER)


def yymmdd(day: date) -> str:
    return day.strftime("%y%m%d")


def _pad(text: str, width: int) -> str:
    text = transliterate(text)
    if len(text) > width:
        raise ValueError(f"{text!r} is longer than the {width}-character MRZ field")
    return text.ljust(width, FILLER)


def td1(
    *,
    issuer: str,
    document_number: str,
    birth: date,
    sex: str,
    expiry: date,
    nationality: str,
    surname: str,
    given_names: str,
    optional: str = "",
    optional2: str = "",
    doc_code: str = "ID",
) -> tuple[str, str, str]:
    """Three 30-character lines of a TD1 (identity card) MRZ."""
    number = _pad(document_number, 9)
    line1 = f"{_pad(doc_code, 2)}{_pad(issuer, 3)}{number}{check_digit(number)}{_pad(optional, 15)}"
    dob, exp = yymmdd(birth), yymmdd(expiry)
    upper = f"{number}{check_digit(number)}{_pad(optional, 15)}"
    middle = f"{dob}{check_digit(dob)}{exp}{check_digit(exp)}{_pad(optional2, 11)}"
    composite = upper + middle
    line2 = f"{dob}{check_digit(dob)}{sex}{exp}{check_digit(exp)}{_pad(nationality, 3)}{_pad(optional2, 11)}"
    line2 += check_digit(composite)
    line3 = name_field(surname, given_names, 30)
    return line1, line2, line3


def td3(
    *,
    issuer: str,
    document_number: str,
    birth: date,
    sex: str,
    expiry: date,
    nationality: str,
    surname: str,
    given_names: str,
    personal_number: str = "",
    doc_code: str = "P",
) -> tuple[str, str]:
    """Two 44-character lines of a TD3 (passport) MRZ."""
    line1 = f"{_pad(doc_code, 2)}{_pad(issuer, 3)}{name_field(surname, given_names, 39)}"
    number = _pad(document_number, 9)
    dob, exp = yymmdd(birth), yymmdd(expiry)
    personal = _pad(personal_number, 14)
    # An empty personal-number field may carry '<' or 0 as its check digit; we write '<' (ICAO 9303-4).
    personal_cd = check_digit(personal) if personal.strip(FILLER) else FILLER
    composite = f"{number}{check_digit(number)}{dob}{check_digit(dob)}{exp}{check_digit(exp)}{personal}{personal_cd}"
    line2 = (
        f"{number}{check_digit(number)}{_pad(nationality, 3)}{dob}{check_digit(dob)}{sex}"
        f"{exp}{check_digit(exp)}{personal}{personal_cd}{check_digit(composite)}"
    )
    return line1, line2
