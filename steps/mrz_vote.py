"""Choosing among several readings of an MRZ's lines by their check digits (ICAO 9303, common/mrz9303.py).

Every reading of a line is first fitted to the format's width (a run of fillers the reader shortened or
lengthened is put back to length, junk before the document code dropped) with each position's class applied
(letters at digit positions as the digits they look like): only to judge it, never as the output. A line's
score counts the check digits that pass over the fields it carries (the composite check digit too, with
the other line as each reader read it), then how many other readers read the same line, then the mean
confidence. Characters the readers disagree on get a lower confidence in the output.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from common.icao import FILLER, check_digit
from common.mrz9303 import FIELDS, FINAL, SHAPE, format_of

_TO_DIGIT = {"O": "0", "D": "0", "Q": "0", "U": "0", "I": "1", "L": "1", "Z": "2", "S": "5", "B": "8", "G": "6",
             "T": "7", "A": "4", "<": "0"}
_DOC_START = re.compile(r"(?=[PIACV][A-Z<][A-Z<]{3})")


@dataclass(frozen=True)
class LineReading:
    text: str
    confidences: tuple[float, ...]
    reader: str  # "<crop>/<engine>"


_NOISY_RUN = re.compile(f"(?<={FILLER})[KLCES6<]*{FILLER}")


def fit_width(text: str, width: int) -> str:
    """`text` brought to `width` for judging: look-alike letters between fillers taken for fillers, the
    longest run of fillers stretched or shrunk (at least one kept), else the end padded or cut."""
    text = _NOISY_RUN.sub(lambda m: FILLER * len(m.group()), text)
    runs = sorted(re.finditer(f"{FILLER}+", text), key=lambda m: -len(m.group()))
    if runs and len(text) != width:
        run = runs[0]
        length = max(1, len(run.group()) + width - len(text))
        text = text[:run.start()] + FILLER * length + text[run.end():]
    return text[:width].ljust(width, FILLER)


def _digits(text: str) -> str:
    return "".join(_TO_DIGIT.get(c, c) for c in text)


def _passes(lines: Sequence[str], kind: str) -> list[tuple[int, bool]]:
    """Each check digit of a fitted MRZ: (the line it is on, whether it passes)."""
    out = []
    for spec in FIELDS[kind]:
        if spec.check is None:
            continue
        line = lines[spec.line]
        value = line[spec.start:spec.end]
        value = _digits(value) if spec.klass == "N" else value
        digit = _TO_DIGIT.get(line[spec.check], line[spec.check])
        ok = digit.isdigit() and check_digit(value) == digit and bool(value.strip(FILLER))
        out.append((spec.line, ok))
    if kind in FINAL:
        (line_no, pos), spans = FINAL[kind]
        text = "".join(lines[ln][a:b] for ln, a, b in spans)
        digit = _TO_DIGIT.get(lines[line_no][pos], lines[line_no][pos])
        out.append((line_no, digit.isdigit() and check_digit(text) == digit))
    return out


def _trim(reading: LineReading, width: int) -> LineReading:
    """A first line without the junk a reader put before its document code (a border mark read as 'I':
    'IP<CAN…'): of the starts where a document code may begin (the first three characters), the one that
    leaves the line closest to `width`."""
    text = reading.text
    starts = [k for k in range(min(3, len(text))) if _DOC_START.match(text, k)]
    if not starts:
        return reading
    k = min(starts, key=lambda k: (abs(len(text) - k - width), k))
    if len(text) - k < width - 1:  # dropping more would eat into the line itself
        return reading
    return LineReading(text[k:], reading.confidences[k:], reading.reader) if k else reading


_LOOKALIKES = frozenset("KLCES6")  # what readers make of an OCR-B filler '<'


def fuse(backbone: LineReading, other: LineReading) -> LineReading | None:
    """A legacy-engine reading (`backbone`: filler runs right) and an LSTM reading of the same line (`other`:
    letters and digits right) merged: where they are aligned character for character (difflib), a filler
    beats a look-alike letter, and otherwise the LSTM's character wins; the backbone's everywhere else (so
    'ANNA<MARIA' and 'ANNAKMARIA' fuse to the first). None when they read the same or barely agree (a
    different line)."""
    matcher = difflib.SequenceMatcher(None, backbone.text, other.text, autojunk=False)
    if matcher.ratio() < 0.6:
        return None
    chars, confs = list(backbone.text), list(backbone.confidences)
    changed = False
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op != "replace" or a1 - a0 != b1 - b0:
            continue
        for i, j in zip(range(a0, a1), range(b0, b1), strict=True):
            mine, theirs = chars[i], other.text[j]
            if mine == FILLER or (theirs in _LOOKALIKES and FILLER in backbone.text[max(0, i - 1):i + 2]):
                continue
            chars[i], confs[i] = theirs, min(confs[i], other.confidences[j])
            changed = True
    if not changed and backbone.text == other.text:
        return None
    return LineReading("".join(chars), tuple(confs), f"{backbone.reader}+{other.reader}")


def _with_fused(per_line: Sequence[LineReading]) -> list[LineReading]:
    """A line's readings and the fusions of each legacy reading with each LSTM reading of the same crop."""
    out = list(per_line)
    for backbone in per_line:
        if not backbone.reader.endswith("/legacy"):
            continue
        crop = backbone.reader.split("/", 1)[0]
        for other in per_line:
            if other.reader.startswith(f"{crop}/lstm") and (fused := fuse(backbone, other)):
                out.append(fused)
    return out


def vote(readings: Sequence[Sequence[LineReading]]) -> list[LineReading]:
    """Per line, the reading with most passing check digits (given the other lines' likeliest readings), then
    most agreement among readers, then highest mean confidence; confidences lowered where readers differ."""
    if not readings or any(not r for r in readings):
        return [r[0] if r else LineReading("", (), "") for r in readings]
    kind = format_of([max(per_line, key=lambda r: len(r.text)).text for per_line in readings])
    width = SHAPE[kind][1] if kind else 44
    lines = [[_trim(r, width) for r in readings[0]], *readings[1:]]
    lines = [_with_fused(per_line) for per_line in lines]
    typical = [max(per_line, key=lambda r: _agreement(r, per_line)).text for per_line in lines]
    kind = format_of(typical) or kind
    chosen = []
    for k, per_line in enumerate(lines):
        raw = [r for r in per_line if "+" not in r.reader]
        checked = kind is not None and any(line == k for line, _ in _passes(_blank(kind), kind))

        def score(r: LineReading, k: int = k, raw: list = raw, checked: bool = checked) -> tuple[float, ...]:
            conf = float(np.mean(r.confidences)) if r.confidences else 0.0
            fused = "+" in r.reader
            if kind is None:
                return (0, _agreement(r, raw), fused, 0, conf)
            width = SHAPE[kind][1]
            fitted = [fit_width(r.text if j == k else typical[j], width) for j in range(len(lines))]
            checks = sum(ok for line, ok in _passes(fitted, kind) if line == k)
            length = -abs(len(r.text) - width)
            if not checked:  # a name line: no check digit to go by; of the readings of its width, the fused
                return (0, length, fused, _agreement(r, raw), conf)  # one reads letters best
            return (checks, _agreement(r, raw), length, fused, conf)

        best = max(per_line, key=score)
        chosen.append(_with_agreement(best, raw))
    return chosen


def _blank(kind: str) -> list[str]:
    rows, width = SHAPE[kind]
    return [FILLER * width] * rows


def _agreement(reading: LineReading, others: Sequence[LineReading]) -> int:
    return sum(o.text == reading.text for o in others)


def _with_agreement(best: LineReading, others: Sequence[LineReading]) -> LineReading:
    """The chosen reading, each character's confidence scaled by the share of same-length readings that read
    that character there too."""
    peers = [o for o in others if len(o.text) == len(best.text)]
    if len(peers) < 2:
        return best
    confs = tuple(conf * sum(p.text[k] == char for p in peers) / len(peers)
                  for k, (char, conf) in enumerate(zip(best.text, best.confidences, strict=True)))
    return LineReading(best.text, confs, best.reader)


def checks_pass(chosen: Sequence[LineReading]) -> bool:
    """Whether chosen readings form an MRZ whose every check digit passes (name lines aside, they carry none),
    with no line longer than its format's and any first line starting with a document code."""
    texts = [r.text for r in chosen]
    kind = format_of(texts)
    if kind is None or any(len(t) > SHAPE[kind][1] for t in texts):
        return False
    passes = _passes([fit_width(t, SHAPE[kind][1]) for t in texts], kind)
    return bool(passes) and all(ok for _, ok in passes)


def mrz_line_like(text: str) -> bool:
    """Whether one reading may be an MRZ line: 20 characters or more, with a filler (nearly every MRZ line
    has one; a reader that shortens a run of them still keeps one)."""
    return len(text) >= 20 and FILLER in text


def mrz_likeness(texts: Sequence[str]) -> tuple[int, int]:
    """How much one reading of a group of bands looks like an MRZ: lines in an MRZ format (2 or 3) or not
    (0), then the number of lines that may be MRZ lines."""
    likely = [t for t in texts if mrz_line_like(t)]
    rows = len(likely) if format_of(likely) else 0
    return rows, len(likely)
