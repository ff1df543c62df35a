"""Text helpers shared by the visual-zone and MRZ readers: edit distance, folding to letters and digits, and
the OCR's letter / digit confusions."""

from __future__ import annotations

import re

from common.text import fold

# OCR confusions between letters and digits, undone by position (a digit where a letter belongs …).
TO_DIGIT = {"O": "0", "Q": "0", "D": "0", "U": "0", "I": "1", "L": "1", "J": "1", "Z": "2", "S": "5",
            "B": "8", "G": "6", "T": "7", "A": "4"}
TO_LETTER = {"0": "O", "1": "I", "2": "Z", "5": "S", "8": "B", "6": "G", "7": "T", "4": "A"}
TO_SEX = {"H": "M", "N": "M", "E": "F", "P": "F"}


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


def alnum(text: str) -> str:
    """Folded, letters and digits only."""
    return re.sub(r"[^A-Z0-9]", "", fold(text))


def alnum_words(text: str) -> list[str]:
    """The runs of letters and digits of the folded text."""
    return re.findall(r"[A-Z0-9]+", fold(text))


def label_words(text: str) -> str:
    """Folded, letters only, single spaces."""
    return " ".join(re.sub(r"[^A-Z]+", " ", fold(text)).split())
