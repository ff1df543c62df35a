"""The parts of an issuer-layouts file (steps/extract/layouts.py): one issuer, one template and its
geometry, as frozen records, with their JSON reading (every error names the file and the key) and writing."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from steps.errors import StepError

Band = tuple[int, int]


@dataclass(frozen=True)
class IssuerLayout:
    """One issuer: what it prints and in which typefaces."""

    code: str
    name: str  # printed in the header
    titles: Mapping[str, str]  # document title per type
    title_keywords: Mapping[str, tuple[str, ...]]  # the title words that name the type (keyword classifier)
    labels: tuple[tuple[str, str], ...]  # (field or label name, printed label), in the issuer's order
    doc_number: str  # passports (and identity cards unless `id_number` says otherwise)
    id_number: str  # identity cards; longer than 9 characters, TD1's number runs on into the optional data
    dl_number: str
    personal_number: str
    extra_fields: Mapping[str, tuple[str, ...]]  # per type, beyond `IssuerLayouts.fields`
    mrz_codes: Mapping[str, str]  # document code per MRZ format ('TD1': 'ID', 'TD3': 'P<')
    photo_side: str
    label_bands: Mapping[int, Band]  # by type size
    value_bands: Mapping[int, Band]


@dataclass(frozen=True)
class Cell:
    """A label and its value in a label grid (`name`: a field, or a label without a wanted value)."""

    name: str
    row: int
    x: int  # from the grid's left edge
    width: int


@dataclass(frozen=True)
class LabelGrid:
    """Identity cards and passports: rows of labels, each value below its label."""

    top: int  # the first row's label anchor ('la')
    pitch: int
    label_size: int
    value_size: int
    value_dy: int  # label anchor to value anchor
    cells: tuple[Cell, ...]

    def label_y(self, row: int) -> int:
        return self.top + row * self.pitch

    def value_y(self, row: int) -> int:
        return self.label_y(row) + self.value_dy


@dataclass(frozen=True)
class NumberedRows:
    """Driving licences: rows of values right of their field numbers; the categories below the last row."""

    rows: tuple[tuple[str, ...], ...]  # the fields of each row, left to right
    top: int
    pitch: int
    baseline_dy: int  # a row's top to its text baseline
    number_gap: int  # a field number's anchor to its value's
    second_column: int  # a row's second field, right of the first
    categories_gap: int  # the last row's top + one pitch to the categories' baseline
    value_size: int

    def baseline(self, row: int) -> int:
        return self.top + row * self.pitch + self.baseline_dy

    @property
    def categories_baseline(self) -> int:
        return self.top + len(self.rows) * self.pitch + self.categories_gap


@dataclass(frozen=True)
class MrzZone:
    """The machine-readable zone: from `top` to the bottom edge, its lines evenly spaced; `ink_x`: the left and
    right ends of the lines' ink (in the MRZ face the documents are printed in)."""

    top: int
    lines: int
    chars: int
    padding: int  # above the first line's slot and below the last's
    ink_x: tuple[float, float]


@dataclass(frozen=True)
class Template:
    """One document type with its photo on one side: the geometry the extractors read (template pixels)."""

    l1: str
    photo_side: str
    size: tuple[int, int]
    header: int  # the header band's height (the title centred in it)
    text_x: int  # left edge of the label grid / numbered rows
    grid: LabelGrid | None
    rows: NumberedRows | None
    mrz: MrzZone | None

    @property
    def title_y(self) -> float:
        return self.header / 2

    @property
    def mrz_centres(self) -> tuple[float, ...]:
        """Each MRZ line's vertical centre; () without an MRZ."""
        if self.mrz is None:
            return ()
        pitch = (self.size[1] - self.mrz.top - 2 * self.mrz.padding) / self.mrz.lines
        return tuple(self.mrz.top + self.mrz.padding + pitch * (k + 0.5) for k in range(self.mrz.lines))


# ── JSON ─────────────────────────────────────────────────────────────────────────────────────────


class Parser:
    """Reads the schema's values, naming the file and the key path ('issuers[2].labels') in every error."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> StepError:
        return StepError(f"issuer layouts {self.source}: key {where!r}: {message}")

    def obj(self, value: Any, where: str, keys: Sequence[str]) -> dict[str, Any]:
        """An object with exactly these keys."""
        if not isinstance(value, dict):
            raise self.fail(where, f"expected an object, got {type(value).__name__}")
        for key in value:
            if key not in keys:
                raise self.fail(f"{where}.{key}".lstrip("."), f"unknown key (expected one of: {', '.join(keys)})")
        for key in keys:
            if key not in value:
                raise self.fail(f"{where}.{key}".lstrip("."), "missing")
        return value

    def array(self, value: Any, where: str, length: int | None = None) -> list[Any]:
        if not isinstance(value, list) or (length is not None and len(value) != length):
            raise self.fail(where, f"expected a list{f' of {length}' if length else ''}, got {value!r:.60}")
        return value

    def text(self, value: Any, where: str) -> str:
        if not isinstance(value, str):
            raise self.fail(where, f"expected a string, got {value!r:.60}")
        return value

    def integer(self, value: Any, where: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(where, f"expected an integer, got {value!r:.60}")
        return value

    def number(self, value: Any, where: str) -> float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise self.fail(where, f"expected a number, got {value!r:.60}")
        return float(value)

    def texts(self, value: Any, where: str) -> tuple[str, ...]:
        return tuple(self.text(v, f"{where}[{k}]") for k, v in enumerate(self.array(value, where)))

    def pairs(self, value: Any, where: str) -> tuple[tuple[str, str], ...]:
        """[[name, text], …]"""
        out = []
        for k, item in enumerate(self.array(value, where)):
            name, text = self.array(item, f"{where}[{k}]", 2)
            out.append((self.text(name, f"{where}[{k}][0]"), self.text(text, f"{where}[{k}][1]")))
        return tuple(out)

    def mapping(self, value: Any, where: str, read: Callable[[Any, str], Any]) -> dict[str, Any]:
        """An object of any keys, each value read with `read`."""
        if not isinstance(value, dict):
            raise self.fail(where, f"expected an object, got {type(value).__name__}")
        return {key: read(item, f"{where}.{key}") for key, item in value.items()}

    def point(self, value: Any, where: str, read: Callable[[Any, str], Any]) -> tuple[Any, Any]:
        """[a, b], each read with `read`."""
        a, b = self.array(value, where, 2)
        return read(a, f"{where}[0]"), read(b, f"{where}[1]")

    def ints(self, d: dict[str, Any], where: str, keys: Sequence[str]) -> list[int]:
        return [self.integer(d[key], f"{where}.{key}") for key in keys]

    def bands(self, value: Any, where: str) -> dict[int, Band]:
        """{type size: [top, bottom]}"""
        out = {}
        for size, band in self.mapping(value, where, lambda v, w: self.point(v, w, self.integer)).items():
            if not size.isdigit():
                raise self.fail(f"{where}.{size}", "expected a type size (digits)")
            out[int(size)] = band
        return out

    def issuer(self, value: Any, where: str) -> IssuerLayout:
        d = self.obj(value, where, ("code", "name", "titles", "title_keywords", "labels", "doc_number",
                                    "id_number", "dl_number", "personal_number", "extra_fields", "mrz_codes", "photo_side",
                                    "cap_bands"))
        strings = {key: self.text(d[key], f"{where}.{key}")
                   for key in ("code", "name", "doc_number", "id_number", "dl_number", "personal_number",
                               "photo_side")}
        bands = self.obj(d["cap_bands"], f"{where}.cap_bands", ("label", "value"))
        return IssuerLayout(
            code=strings["code"], name=strings["name"],
            titles=self.mapping(d["titles"], f"{where}.titles", self.text),
            title_keywords=self.mapping(d["title_keywords"], f"{where}.title_keywords", self.texts),
            labels=self.pairs(d["labels"], f"{where}.labels"),
            doc_number=strings["doc_number"], id_number=strings["id_number"], dl_number=strings["dl_number"],
            personal_number=strings["personal_number"],
            extra_fields=self.mapping(d["extra_fields"], f"{where}.extra_fields", self.texts),
            mrz_codes=self.mapping(d["mrz_codes"], f"{where}.mrz_codes", self.text),
            photo_side=strings["photo_side"],
            label_bands=self.bands(bands["label"], f"{where}.cap_bands.label"),
            value_bands=self.bands(bands["value"], f"{where}.cap_bands.value"))

    def template(self, value: Any, where: str) -> Template:
        d = self.obj(value, where, ("l1", "photo_side", "size", "header", "text_x", "grid", "rows", "mrz"))
        return Template(
            self.text(d["l1"], f"{where}.l1"), self.text(d["photo_side"], f"{where}.photo_side"),
            self.point(d["size"], f"{where}.size", self.integer), *self.ints(d, where, ("header", "text_x")),
            grid=None if d["grid"] is None else self.grid(d["grid"], f"{where}.grid"),
            rows=None if d["rows"] is None else self.rows(d["rows"], f"{where}.rows"),
            mrz=None if d["mrz"] is None else self.mrz(d["mrz"], f"{where}.mrz"))

    def grid(self, value: Any, where: str) -> LabelGrid:
        keys = ("top", "pitch", "label_size", "value_size", "value_dy")
        d = self.obj(value, where, (*keys, "cells"))
        cells = []
        for k, item in enumerate(self.array(d["cells"], f"{where}.cells")):
            at = f"{where}.cells[{k}]"
            cell = self.obj(item, at, ("name", "row", "x", "width"))
            cells.append(Cell(self.text(cell["name"], f"{at}.name"), *self.ints(cell, at, ("row", "x", "width"))))
        return LabelGrid(*self.ints(d, where, keys), tuple(cells))

    def rows(self, value: Any, where: str) -> NumberedRows:
        keys = ("top", "pitch", "baseline_dy", "number_gap", "second_column", "categories_gap", "value_size")
        d = self.obj(value, where, ("rows", *keys))
        rows = tuple(self.texts(row, f"{where}.rows[{k}]")
                     for k, row in enumerate(self.array(d["rows"], f"{where}.rows")))
        return NumberedRows(rows, *self.ints(d, where, keys))

    def mrz(self, value: Any, where: str) -> MrzZone:
        d = self.obj(value, where, ("top", "lines", "chars", "padding", "ink_x"))
        return MrzZone(*self.ints(d, where, ("top", "lines", "chars", "padding")),
                       self.point(d["ink_x"], f"{where}.ink_x", self.number))


def dump_issuer(issuer: IssuerLayout) -> dict[str, Any]:
    """An issuer as the schema writes it."""
    def lists(table: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
        return {key: list(value) for key, value in table.items()}

    def bands(table: Mapping[int, Band]) -> dict[str, list[int]]:
        return {str(size): list(band) for size, band in table.items()}

    return {
        "code": issuer.code, "name": issuer.name, "titles": dict(issuer.titles),
        "title_keywords": lists(issuer.title_keywords), "labels": [list(pair) for pair in issuer.labels],
        "doc_number": issuer.doc_number, "id_number": issuer.id_number, "dl_number": issuer.dl_number,
        "personal_number": issuer.personal_number,
        "extra_fields": lists(issuer.extra_fields), "mrz_codes": dict(issuer.mrz_codes),
        "photo_side": issuer.photo_side,
        "cap_bands": {"label": bands(issuer.label_bands), "value": bands(issuer.value_bands)},
    }


def dump_template(t: Template) -> dict[str, Any]:
    """A template as the schema writes it."""
    grid = rows = mrz = None
    if t.grid is not None:
        g = t.grid
        grid = {"top": g.top, "pitch": g.pitch, "label_size": g.label_size, "value_size": g.value_size,
                "value_dy": g.value_dy,
                "cells": [{"name": c.name, "row": c.row, "x": c.x, "width": c.width} for c in g.cells]}
    if t.rows is not None:
        r = t.rows
        rows = {"rows": [list(row) for row in r.rows], "top": r.top, "pitch": r.pitch,
                "baseline_dy": r.baseline_dy, "number_gap": r.number_gap, "second_column": r.second_column,
                "categories_gap": r.categories_gap, "value_size": r.value_size}
    if t.mrz is not None:
        m = t.mrz
        mrz = {"top": m.top, "lines": m.lines, "chars": m.chars, "padding": m.padding, "ink_x": list(m.ink_x)}
    return {"l1": t.l1, "photo_side": t.photo_side, "size": list(t.size), "header": t.header, "text_x": t.text_x,
            "grid": grid, "rows": rows, "mrz": mrz}
