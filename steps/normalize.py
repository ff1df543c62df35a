"""Text normalisation used wherever CardFlow compares text: one definition, documented here.

Field values are compared after `normalise_field`:
- names, places, authority, nationality, categories: diacritics removed (ß→SS, Ł→L, Æ→AE, Ø→OE, …),
  upper case, hyphens/apostrophes/dots/commas → space, runs of spaces → one space, trimmed;
- document and personal numbers: upper case, spaces and separators ('/', '-', '.') removed;
- sex: its first letter, upper case (M, F or X);
- dates: ISO `YYYY-MM-DD` (extractors must emit ISO; anything else does not match).
"""

from __future__ import annotations

import re
from datetime import date, datetime

from common.text import fold

__all__ = ["MONTHS", "fold", "mrz_date", "normalise_field", "normalise_text", "parse_date"]
_NUMBER_FIELDS = {"document_number", "personal_number"}
_DATE_FIELDS = {"date_of_birth", "date_of_expiry", "date_of_issue"}
MONTHS = {m: k for k, m in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=1)}


def normalise_field(name: str, value: str | None) -> str:
    """The comparable form of a field value (see the module docstring)."""
    if value is None:
        return ""
    text = fold(str(value)).strip()
    if name in _DATE_FIELDS:
        return text
    if name in _NUMBER_FIELDS:
        return re.sub(r"[\s/\-.]", "", text)
    if name == "sex":
        return text[:1]
    text = re.sub(r"[-'’.,]", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def normalise_text(text: str) -> str:
    """Folded text with whitespace collapsed (for classification features and CER)."""
    return re.sub(r"[ \t]+", " ", fold(text)).strip()


_DATE_PATTERNS = (
    (re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})"), "ymd"),
    (re.compile(r"(\d{1,2})[./](\d{1,2})[./](\d{4})"), "dmy"),
    (re.compile(r"(\d{1,2})\s+(\d{1,2})\s+(\d{4})"), "dmy"),
    (re.compile(r"(\d{1,2})\s*([A-Z]{3})\s*(\d{4})"), "dby"),
)


def parse_date(text: str) -> str | None:
    """A printed date in any of the issuers' formats → ISO `YYYY-MM-DD`, or None."""
    folded = fold(text)
    for pattern, order in _DATE_PATTERNS:
        match = pattern.search(folded)
        if not match:
            continue
        a, b, c = match.groups()
        try:
            if order == "ymd":
                return date(int(a), int(b), int(c)).isoformat()
            if order == "dmy":
                return date(int(c), int(b), int(a)).isoformat()
            if b in MONTHS:
                return date(int(c), MONTHS[b], int(a)).isoformat()
        except ValueError:
            continue
    return None


def mrz_date(yymmdd: str, kind: str) -> str | None:
    """An MRZ date (YYMMDD) → ISO. Birth dates are in the past (pivot on today); expiry dates are 20YY."""
    if not re.fullmatch(r"\d{6}", yymmdd or ""):
        return None
    yy, mm, dd = int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:])
    year = 2000 + yy if kind == "expiry" else 2000 + yy if 2000 + yy <= datetime.now().year else 1900 + yy
    try:
        return date(year, mm, dd).isoformat()
    except ValueError:
        return None
