"""ICAO Doc 9303 machine-readable zones as the generator writes them: TD1, TD2 and TD3 lines (check digits and
transliteration: common/icao.py).

The generator writes MRZs with this module; the tests verify them with an independent checker
(the `mrz` package).
"""

from __future__ import annotations

from datetime import date

from common.icao import FILLER, MrzError, check_digit, transliterate

__all__ = ["FILLER", "check_digit", "name_field", "td1", "td2", "td3", "transliterate", "yymmdd"]


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


def _number(document_number: str, optional: str) -> tuple[str, str]:
    """The document number with its check digit (10 characters) and the optional data after it: a number
    longer than 9 characters runs on into the optional data (ICAO 9303-5 note j, 9303-6): its first 9
    characters, '<' at the check digit's place, then the rest and the whole number's check digit."""
    number = transliterate(document_number)
    if len(number) > 9:
        return f"{number[:9]}{FILLER}", number[9:] + check_digit(number) + transliterate(optional)
    return f"{_pad(number, 9)}{check_digit(_pad(number, 9))}", optional


def _pad(text: str, width: int) -> str:
    text = transliterate(text)
    if len(text) > width:
        raise MrzError(f"{text!r} is longer than the {width}-character MRZ field")
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
    """Three 30-character lines of a TD1 (identity card) MRZ (a long document number: `_number`)."""
    head, optional = _number(document_number, optional)
    line1 = f"{_pad(doc_code, 2)}{_pad(issuer, 3)}{head}{_pad(optional, 15)}"
    dob, exp = yymmdd(birth), yymmdd(expiry)
    line2 = f"{dob}{check_digit(dob)}{sex}{exp}{check_digit(exp)}{_pad(nationality, 3)}{_pad(optional2, 11)}"
    line2 += check_digit(line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29])
    line3 = name_field(surname, given_names, 30)
    return line1, line2, line3


def td2(
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
    doc_code: str = "ID",
) -> tuple[str, str]:
    """Two 36-character lines of a TD2 MRZ (ICAO 9303-6): names on the first line, the data on the second
    (a long document number: `_number`)."""
    head, optional = _number(document_number, optional)
    line1 = f"{_pad(doc_code, 2)}{_pad(issuer, 3)}{name_field(surname, given_names, 31)}"
    dob, exp = yymmdd(birth), yymmdd(expiry)
    line2 = f"{head}{_pad(nationality, 3)}{dob}{check_digit(dob)}{sex}{exp}{check_digit(exp)}{_pad(optional, 7)}"
    line2 += check_digit(line2[0:10] + line2[13:20] + line2[21:35])
    return line1, line2


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
