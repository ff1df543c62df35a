"""OCR geometry for the visual zone: words into rows, rows into segments, and which rows are the header."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from steps.extract.text import alnum, alnum_words, levenshtein
from steps.records import Word


def _height(word: Word) -> int:
    return max(1, word.box[3] - word.box[1])


def _centre(word: Word) -> float:
    return (word.box[1] + word.box[3]) / 2


@dataclass(frozen=True)
class Row:
    """Words on one visual row, left to right."""

    words: tuple[Word, ...]

    @property
    def height(self) -> float:
        return float(statistics.median(_height(w) for w in self.words))

    @property
    def centre(self) -> float:
        return float(statistics.median(_centre(w) for w in self.words))

    @property
    def baseline(self) -> float:
        return float(statistics.median(w.box[3] for w in self.words))

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


def group_rows(words: Iterable[Word]) -> list[Row]:
    """Words grouped into rows, top to bottom: a word joins the row whose centre is within half the
    smaller of their heights (OCR lines are ignored: they split and merge rows)."""
    rows: list[list[Word]] = []
    for word in sorted((w for w in words if w.text.strip()), key=lambda w: (_centre(w), w.box[0])):
        best, best_distance = None, float("inf")
        for row in rows[-4:]:
            distance = abs(_centre(word) - statistics.median(_centre(w) for w in row))
            if distance < 0.5 * min(_height(word), statistics.median(_height(w) for w in row)) \
                    and distance < best_distance:
                best, best_distance = row, distance
        if best is None:
            rows.append([word])
        else:
            best.append(word)
    return sorted((Row(tuple(sorted(r, key=lambda w: w.box[0]))) for r in rows), key=lambda r: r.centre)


def split_segments(words: Sequence[Word], gap: float) -> list[tuple[Word, ...]]:
    """Left-to-right words split where the horizontal gap exceeds `gap` pixels."""
    segments: list[list[Word]] = []
    right = -1e9
    for word in words:
        if not segments or word.box[0] - right > gap:
            segments.append([word])
        else:
            segments[-1].append(word)
        right = max(right, word.box[2])
    return [tuple(s) for s in segments]


def typical_height(rows: Sequence[Row]) -> float:
    """The median height of the words with at least three letters or digits (values, mostly)."""
    heights = [_height(w) for r in rows for w in r.words if len(alnum(w.text)) >= 3]
    return float(statistics.median(heights)) if heights else 0.0


def row_baseline(row: Row, typical: float) -> float:
    """The row's baseline from its words of ordinary height (boxes swollen by noise are discounted)."""
    normal = [w.box[3] for w in row.words if _height(w) <= 1.5 * typical]
    if normal:
        return float(statistics.median(normal))
    return row.centre + typical / 2 if typical else row.baseline


def is_header(row: Row, header_words: frozenset[str]) -> bool:
    """A row of the document's header: mostly words of the issuers' names and document titles."""
    words = [w for w in alnum_words(row.text) if len(w) >= 3]
    hits = sum(any(levenshtein(w, t) <= len(t) // 5 for t in header_words) for w in words)
    return bool(words) and hits >= max(1, len(words) / 2)
