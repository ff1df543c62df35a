"""Issuer layouts: everything the extractors and the keyword classifier know about a set of issuers and
their document templates, as one frozen, typed object parsed from a JSON file.

The file is a model-store file (`extract/layouts/<name>.json`); the synthetic corpus's is written by
`python -m corpus.extract_layouts` (configs/layouts/synthetic.json). A real dataset's layouts are just
another file in the same schema. Schema 2 (orders that matter are lists):

    schema          2
    description     what the file describes
    l1_classes      [document type, …]            (level-1 classes, in score order)
    fields          {type: [field, …]}            fields every document of a type carries
    categories      [code, …]                     driving-licence categories, in catalogue order
    doc_letters     "FHK…"                        the letters issuers use in document numbers
    dl_numbers      {field: "4a."}                driving-licence field numbers
    common_labels   [[name, label], …]            labels in the language every issuer may also print
    issuers         [{code, name, titles {type: title}, title_keywords {type: [word]},
                      labels [[name, label]], doc_number, id_number (identity cards; longer than 9,
                      it runs on into TD1's optional data), dl_number, personal_number (patterns:
                      L letter, 9 digit, 1 digit but 0, others literal; "" for none),
                      extra_fields {type: [field]}, mrz_codes {"TD1"|"TD2"|"TD3": "ID", …} (one
                      format per type), photo_side,
                      cap_bands {"label"|"value": {size: [top, bottom]}}}, …]
    templates       [{l1, photo_side, size [w, h], header, text_x,
                      grid {top, pitch, label_size, value_size, value_dy, cells [{name, row, x, width}]} | null,
                      rows {rows [[field]], top, pitch, baseline_dy, number_gap, second_column,
                            categories_gap, value_size} | null,
                      mrz {top, lines, chars, padding, ink_x [left, right]} | null}, …]
                    (a type with several MRZ formats has a template per format, told apart by the zone's
                    lines × chars: identity cards in TD1 and in TD2)

`cap_bands` are the capitals' top and bottom below a text's 'la' anchor in the issuer's label / value face
at a type size; `ink_x` the MRZ lines' ink ends. The tables the extractors derive (label keys, header
words, driving-licence slots …) are built once per object, on first use: never at import.
"""

from __future__ import annotations

import json
import os
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from common.icao import MRZ_ALPHABET
from common.mrz9303 import SHAPE
from steps.errors import StepError
from steps.extract.layout_parts import (
    Band,
    Cell,
    IssuerLayout,
    LabelGrid,
    MrzZone,
    NumberedRows,
    Parser,
    Template,
    dump_issuer,
    dump_template,
)
from steps.extract.text import alnum_words, label_words

__all__ = ["Band", "Cell", "IssuerLayout", "IssuerLayouts", "LabelGrid", "LabelKey", "LabelKeys", "MrzZone",
           "NumberedRows", "NumberedSlots", "Template", "layouts_file"]
SCHEMA = 2
_TYPE_OF_FORMAT = {"TD1": "id_card", "TD2": "id_card", "TD3": "passport"}  # the formats an issuer may own
FIELDS = ("surname", "given_names", "document_number", "personal_number", "date_of_birth", "date_of_expiry",
          "date_of_issue", "place_of_birth", "nationality", "sex", "authority", "categories")


def layouts_file(name: str) -> str:
    """The model-store path of the layouts file `name` ('synthetic' → extract/layouts/synthetic.json)."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise StepError(f"layouts name {name!r} is not a plain file name (letters, digits, '_', '.', '-')")
    return f"extract/layouts/{name}.json"


# ── tables derived from the file ─────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class LabelKey:
    compact: str  # letters only, no spaces
    field: str | None  # None: a label without a wanted value (type, code), still a column boundary
    issuers: frozenset[str]
    common: bool  # one of the common labels: no evidence against the classified issuer


@dataclass(frozen=True, eq=False)
class LabelKeys:
    """Every issuer's labels, folded; compared by identity, so that label matches are cached per table."""

    keys: tuple[LabelKey, ...]


@dataclass(frozen=True)
class NumberedSlots:
    """Driving-licence rows as the extractor places them: slots (a row, named by its field numbers' common
    part, '4a.', '4b.' → '4'; and the categories' number) and their template baselines."""

    baseline: Mapping[str, int]  # slot → template baseline
    exact: Mapping[str, str]  # field number as printed ('4a.') → slot
    slot_of: Mapping[str, str]  # field → slot
    pitch: int
    number_gap: int
    second_column: int
    value_height: float  # a value's capitals' height (median over the issuers' faces)


def _label_pairs(labels: Sequence[tuple[str, str]]) -> list[tuple[str, str | None]]:
    """(compact key, field) for a label list: each label whole ('NAME / SURNAME') and by language."""
    out = []
    for name, label in labels:
        for variant in (label, *label.split("/")):
            compact = label_words(variant).replace(" ", "")
            if compact:
                out.append((compact, name if name in FIELDS else None))
    return out


@dataclass(frozen=True)
class IssuerLayouts:
    """A set of issuers and their templates (see the module docstring), with the tables derived from them."""

    description: str
    l1_classes: tuple[str, ...]
    fields: Mapping[str, tuple[str, ...]]
    categories: tuple[str, ...]
    doc_letters: str
    dl_numbers: Mapping[str, str]
    common_labels: tuple[tuple[str, str], ...]
    issuers: tuple[IssuerLayout, ...]
    templates: tuple[Template, ...]
    source: str = field(default="<layouts>", compare=False)  # the file read, for messages

    def __post_init__(self) -> None:
        self._check()

    @classmethod
    def from_json(cls, data: Any, source: str = "<layouts>") -> IssuerLayouts:
        """Parse the schema; a missing, unknown or mistyped key → StepError naming `source` and the key."""
        parse = Parser(source)
        d = parse.obj(data, "", ("schema", "description", "l1_classes", "fields", "categories", "doc_letters",
                                 "dl_numbers", "common_labels", "issuers", "templates"))
        if d["schema"] != SCHEMA:
            raise parse.fail("schema", f"this code reads schema {SCHEMA}, the file has {d['schema']!r}")
        return cls(
            parse.text(d["description"], "description"), parse.texts(d["l1_classes"], "l1_classes"),
            parse.mapping(d["fields"], "fields", parse.texts), parse.texts(d["categories"], "categories"),
            parse.text(d["doc_letters"], "doc_letters"), parse.mapping(d["dl_numbers"], "dl_numbers", parse.text),
            parse.pairs(d["common_labels"], "common_labels"),
            tuple(parse.issuer(v, f"issuers[{k}]") for k, v in enumerate(parse.array(d["issuers"], "issuers"))),
            tuple(parse.template(v, f"templates[{k}]")
                  for k, v in enumerate(parse.array(d["templates"], "templates"))),
            source)

    def to_json(self) -> dict[str, Any]:
        """The schema's JSON-able dict (`from_json(x.to_json()) == x`)."""
        return {
            "schema": SCHEMA, "description": self.description, "l1_classes": list(self.l1_classes),
            "fields": {key: list(value) for key, value in self.fields.items()},
            "categories": list(self.categories), "doc_letters": self.doc_letters,
            "dl_numbers": dict(self.dl_numbers), "common_labels": [list(p) for p in self.common_labels],
            "issuers": [dump_issuer(issuer) for issuer in self.issuers],
            "templates": [dump_template(template) for template in self.templates],
        }

    @classmethod
    def load(cls, path: Path | str) -> IssuerLayouts:
        """Read and parse a layouts file; StepError naming the file when it cannot."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StepError(f"issuer layouts {path}: cannot be read as JSON ({exc})") from exc
        return cls.from_json(data, str(path))

    def _fail(self, key: str, message: str) -> StepError:
        return StepError(f"issuer layouts {self.source}: key {key!r}: {message}")

    def _check(self) -> None:
        """What the extractors rely on beyond the schema's types."""
        codes = [issuer.code for issuer in self.issuers]
        if not codes or len(set(codes)) != len(codes):
            raise self._fail("issuers", f"expected issuers with distinct codes, got {codes}")
        geometries = {t.rows for t in self.templates if t.rows is not None}
        if len(geometries) > 1:
            raise self._fail("templates", "templates with numbered rows must share one row geometry "
                                          "(rows are placed before the photo side is known)")
        for rows in geometries:
            missing = [name for row in rows.rows for name in row if name not in self.dl_numbers]
            if missing:
                raise self._fail(f"dl_numbers.{missing[0]}", "missing: a numbered row has this field")
        for k, issuer in enumerate(self.issuers):
            for kind, code in issuer.mrz_codes.items():
                if kind not in _TYPE_OF_FORMAT or len(code) != 2 or not set(code) <= set(MRZ_ALPHABET):
                    raise self._fail(f"issuers[{k}].mrz_codes.{kind}", "expected TD1, TD2 or TD3 and a "
                                                                       f"2-character document code, got {code!r}")
            types = [_TYPE_OF_FORMAT[kind] for kind in issuer.mrz_codes]
            if len(set(types)) != len(types):
                raise self._fail(f"issuers[{k}].mrz_codes", "one MRZ format per document type, got "
                                                            f"{sorted(issuer.mrz_codes)}")
            own = [t.grid for t in self.templates if t.grid is not None and t.photo_side == issuer.photo_side]
            needs = [("label", issuer.label_bands, g.label_size) for g in own] + \
                    [("value", issuer.value_bands, g.value_size) for g in own] + \
                    [("value", issuer.value_bands, rows.value_size) for rows in geometries]
            for kind, bands, size in needs:
                if size not in bands:
                    raise self._fail(f"issuers[{k}].cap_bands.{kind}.{size}",
                                     f"missing: {issuer.code}'s templates print at size {size}")

    # ── lookups ──

    @cached_property
    def issuer_by_code(self) -> Mapping[str, IssuerLayout]:
        return {issuer.code: issuer for issuer in self.issuers}

    @cached_property
    def codes(self) -> tuple[str, ...]:
        """The issuer codes, in the file's order."""
        return tuple(issuer.code for issuer in self.issuers)

    def issuer(self, code: str | None) -> IssuerLayout | None:
        return self.issuer_by_code.get(code or "")

    def template(self, l1: str, photo_side: str, mrz_format: str | None = None) -> Template | None:
        """The template of a document type and photo side; where the type has templates for several MRZ
        formats (identity cards: TD1, TD2), the one of `mrz_format` (by its zone's shape), else the first."""
        found = [t for t in self.templates if t.l1 == l1 and t.photo_side == photo_side]
        shape = SHAPE.get(mrz_format or "")
        return next((t for t in found if t.mrz is not None and (t.mrz.lines, t.mrz.chars) == shape),
                    found[0] if found else None)

    @staticmethod
    def mrz_format(issuer: IssuerLayout, l1: str) -> str | None:
        """The MRZ format `issuer` prints on documents of type `l1` (None: no MRZ)."""
        return next((kind for kind in issuer.mrz_codes if _TYPE_OF_FORMAT[kind] == l1), None)

    def carried_fields(self, l1: str, issuer: IssuerLayout) -> tuple[str, ...]:
        """The fields a document of this type and issuer carries."""
        return tuple(self.fields.get(l1, ())) + tuple(issuer.extra_fields.get(l1, ()))

    # ── derived tables ──

    @cached_property
    def label_keys(self) -> LabelKeys:
        """Every issuer's labels, whole ('NAME / SURNAME') and by language ('NAME', 'SURNAME'), folded."""
        table: dict[tuple[str, str | None], set[str]] = {}
        for issuer in self.issuers:
            for key in _label_pairs(issuer.labels):
                table.setdefault(key, set()).add(issuer.code)
        common = set(_label_pairs(self.common_labels))
        ordered = sorted(table.items(), key=lambda item: item[0][0])
        return LabelKeys(tuple(LabelKey(key, name, frozenset(codes), (key, name) in common)
                               for (key, name), codes in ordered))

    @cached_property
    def header_words(self) -> frozenset[str]:
        """Words of the issuers' names and document titles (three letters or more)."""
        return frozenset(w for issuer in self.issuers for text in (issuer.name, *issuer.titles.values())
                         for w in alnum_words(text) if len(w) >= 3)

    @cached_property
    def country_words(self) -> Mapping[str, str]:
        """The last word of each issuer's printed name (its country: '… OF AURELIA') → its code."""
        return {alnum_words(issuer.name)[-1]: issuer.code for issuer in self.issuers if alnum_words(issuer.name)}

    @cached_property
    def grid_types(self) -> frozenset[str]:
        """The document types whose templates have a label grid."""
        return frozenset(t.l1 for t in self.templates if t.grid is not None)

    @cached_property
    def title_keywords(self) -> Mapping[str, frozenset[str]]:
        """Per document type, every issuer's title words for it (in `l1_classes` order)."""
        return {l1: frozenset(w for issuer in self.issuers for w in issuer.title_keywords.get(l1, ()))
                for l1 in self.l1_classes}

    @cached_property
    def numbered(self) -> NumberedSlots | None:
        """The numbered rows' slots (the same rows on every template that has them); None without any."""
        rows = next((t.rows for t in self.templates if t.rows is not None), None)
        if rows is None:
            return None
        numbers = self.dl_numbers
        slots = [os.path.commonprefix([numbers[name].rstrip(".") for name in row]) for row in rows.rows]
        baseline = {slot: rows.baseline(r) for r, slot in enumerate(slots)}
        exact = {numbers[name]: slot for row, slot in zip(rows.rows, slots, strict=True) for name in row}
        slot_of = {name: slot for row, slot in zip(rows.rows, slots, strict=True) for name in row}
        if "categories" in numbers:
            categories = numbers["categories"].rstrip(".")
            baseline[categories] = rows.categories_baseline
            exact[numbers["categories"]] = categories
            slot_of["categories"] = categories
        bands = [issuer.value_bands[rows.value_size] for issuer in self.issuers]
        height = float(statistics.median(bottom - top for top, bottom in bands)) if bands else 0.0
        return NumberedSlots(baseline, exact, slot_of, rows.pitch, rows.number_gap, rows.second_column, height)
