"""Folding text to upper-case ASCII: one definition for the generator, the extractors and scoring."""

from __future__ import annotations

import unicodedata

# Letters NFKD does not decompose, spelled out the way ICAO 9303 (and most issuers) transliterate them.
SPECIAL_LETTERS = {"ß": "SS", "Æ": "AE", "æ": "AE", "Ø": "OE", "ø": "OE", "Ł": "L", "ł": "L", "Đ": "D", "đ": "D",
                   "Þ": "TH", "þ": "TH", "Œ": "OE", "œ": "OE", "Ĳ": "IJ"}


def strip_marks(char: str) -> str:
    """A character without its diacritics (NFKD, combining marks dropped)."""
    return "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))


def fold(text: str) -> str:
    """Upper case ASCII: diacritics dropped, special letters spelled out."""
    return "".join(SPECIAL_LETTERS.get(char) or strip_marks(char) for char in text).upper()
