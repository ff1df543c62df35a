"""The template grid: values whose label was not read, taken where the issuer's template puts them (identity
cards and passports), the grid mapped onto the image through the labels read, the MRZ and the header."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable, Sequence

from steps.extract.labels import LabelParams, Segment
from steps.extract.layouts import IssuerLayout, IssuerLayouts, Template
from steps.extract.mrz_find import mrz_candidates
from steps.extract.rows import Row, is_header, split_segments
from steps.extract.values import format_value
from steps.records import OcrResult

Pairs = list[tuple[float, float]]  # (template, image) coordinates along one axis


def _grid_anchors(doc: Template, issuer: IssuerLayout, rows: Sequence[Row], ocr: OcrResult,
                  labels: Sequence[tuple[str, Segment]], header_words: frozenset[str]) -> tuple[Pairs, Pairs]:
    """(template, image) pairs along y and along x: the labels read (their capitals' tops), the MRZ
    lines (centres, ink ends), the header (centre)."""
    grid = doc.grid
    if grid is None:
        return [], []
    cells = {c.name: c for c in grid.cells}
    label_top = issuer.label_bands[grid.label_size][0]
    ys: Pairs = []
    xs: Pairs = []
    for name, seg in labels:
        if name in cells:
            ys.append((grid.label_y(cells[name].row) + label_top, seg.top))
            xs.append((doc.text_x + cells[name].x, seg.x0))
    if doc.mrz is not None:
        width, centres, ink_x = doc.mrz.chars, doc.mrz_centres, doc.mrz.ink_x
        mrz = [c for c in mrz_candidates(ocr) if len(c.text) >= 0.8 * width][-len(centres):]
        for template_y, line in zip(reversed(centres), reversed(mrz), strict=False):
            ys.append((template_y, (line.top + line.bottom) / 2))
            if len(line.text) >= 0.95 * width:
                xs += [(ink_x[0], line.x0), (ink_x[1], line.x1)]
    header = [r for r in rows[:3] if is_header(r, header_words)]
    if header:
        ys.append((doc.title_y, header[0].centre))
    return ys, xs


def _grid_scale(ys: Pairs, xs: Pairs) -> float | None:
    ratios = [(b[1] - a[1]) / (b[0] - a[0]) for pairs in (ys, xs) for a, b in itertools.combinations(pairs, 2)
              if abs(b[0] - a[0]) >= 100]
    ratios = [r for r in ratios if 0.3 < r < 3.0]
    return float(statistics.median(ratios)) if ratios else None


def _offset(pairs: Pairs, scale: float) -> float:
    return float(statistics.median(image - scale * template for template, image in pairs))


def positional_fields(rows: Sequence[Row], ocr: OcrResult, l1: str, issuer: str, params: LabelParams,
                      labels: Sequence[tuple[str, Segment]], skip: Iterable[str],
                      layouts: IssuerLayouts) -> dict[str, str]:
    """Fields whose labels were not read, from where the template puts their values: the grid is mapped
    onto the image (scale and offset) through the labels read, the MRZ and the header. None without a
    label-grid template for the issuer's document type and photo side."""
    spec = layouts.issuer(issuer)
    doc = layouts.template(l1, spec.photo_side, layouts.mrz_format(spec, l1)) if spec else None
    if spec is None or doc is None or doc.grid is None:
        return {}
    grid = doc.grid
    ys, xs = _grid_anchors(doc, spec, rows, ocr, labels, layouts.header_words)
    scale = _grid_scale(ys, xs)
    if scale is None or not xs or not rows:
        return {}
    y0, x0 = _offset(ys, scale), _offset(xs, scale)
    value_top, value_bottom = spec.value_bands[grid.value_size]
    wanted = set(layouts.carried_fields(l1, spec)) - set(skip)
    out: dict[str, str] = {}
    for cell in grid.cells:
        if cell.name not in wanted:
            continue
        centre = y0 + scale * (grid.value_y(cell.row) + (value_top + value_bottom) / 2)
        row = min(rows, key=lambda r: abs(r.centre - centre))
        if abs(row.centre - centre) > 0.22 * grid.pitch * scale:
            continue
        slack = 0.4 * row.height
        start = x0 + scale * (doc.text_x + cell.x) - slack
        end = start + scale * cell.width
        words = [w for w in row.words if start <= w.box[0] < end and not any(c.islower() for c in w.text[1:])]
        if words:
            words = list(split_segments(words, params.column_gap * row.height)[0])
            value = format_value(cell.name, [w.text for w in words], l1, issuer, layouts, params.number_patterns)
            if value:
                out[cell.name] = value
    return out
