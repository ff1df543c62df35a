"""The synthetic corpus's issuer layouts, exported for the extractors and the keyword classifier.

`build()` returns a plain JSON-able dict in the schema that steps/extract/layouts.py owns and parses (the
corpus is the lowest layer: it writes the data, it does not import the steps). Everything comes from the
generator's own tables — corpus/issuers.py, corpus/layout.py, corpus/identity.py — and the typefaces are
measured with `cap_band` / `mrz_ink_x`, for the (face, size) pairs the extractor asks for.

    python -m corpus.extract_layouts --out configs/layouts/synthetic.json

reads nothing but the code and the fonts, and writes that file (sorted keys, deterministic); a test checks
that the committed file is what this builds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from common.text import fold
from corpus.identity import CATEGORIES, Identity
from corpus.issuers import DL_NUMBERS, DOC_LETTERS, ISSUERS, Issuer
from corpus.layout import LAYOUTS, DocumentLayout, cap_band, mrz_ink_x
from corpus.records import L1_CLASSES

SCHEMA = 2
# Title words that do not name a document type ('CARTA DI IDENTITÀ': CARTA); the keyword classifier counts
# the others.
_GENERIC_TITLE_WORDS = frozenset({"CARD", "CARTA", "DOCUMENTO", "PERMISO"})


def _specimen(issuer: Issuer, l1: str) -> Identity:
    """A document of `issuer` and type `l1` with placeholder values (its field list and MRZ codes are wanted)."""
    day = date(2000, 1, 1)
    return Identity(issuer, l1, "X", "Y", "F", day, day, day, "1", "X", "X", "1", "B")


def _base_fields(l1: str) -> list[str]:
    """The fields every document of a type carries (each issuer adds its extra fields)."""
    carried = [[f for f in _specimen(i, l1).fields() if f not in i.extra_fields.get(l1, ())] for i in ISSUERS]
    if any(fields != carried[0] for fields in carried):
        raise ValueError(f"the issuers' {l1} documents differ beyond their extra fields: {carried}")
    return carried[0]


def _title_keywords(title: str) -> list[str]:
    return [w for w in re.findall(r"[A-Z]+", fold(title)) if len(w) >= 3 and w not in _GENERIC_TITLE_WORDS]


def _sizes(issuer: Issuer) -> tuple[list[int], list[int]]:
    """The type sizes the extractor measures an issuer's capitals at: its side's label grids (labels and
    values) and every template's numbered rows (values)."""
    grids = [doc.grid for (_, side, _), doc in LAYOUTS.items() if doc.grid and side == issuer.photo_side]
    rows = [doc.rows.value_size for doc in LAYOUTS.values() if doc.rows]
    return sorted({g.label_size for g in grids}), sorted({g.value_size for g in grids} | set(rows))


def _issuer(issuer: Issuer) -> dict[str, Any]:
    label_sizes, value_sizes = _sizes(issuer)
    return {
        "code": issuer.code,
        "name": issuer.name,
        "titles": dict(issuer.titles),
        "title_keywords": {l1: _title_keywords(title) for l1, title in issuer.titles.items()},
        "labels": [[name, label] for name, label in issuer.labels.items()],
        "doc_number": issuer.doc_number,
        "id_number": issuer.number_pattern("id_card"),
        "dl_number": issuer.dl_number,
        "personal_number": issuer.personal_number,
        "extra_fields": {l1: list(fields) for l1, fields in issuer.extra_fields.items()},
        "mrz_codes": {specimen.mrz_format: specimen.mrz_lines()[0][:2]
                      for specimen in (_specimen(issuer, l1) for l1 in L1_CLASSES) if specimen.mrz_format},
        "photo_side": issuer.photo_side,
        "cap_bands": {"label": {str(s): list(cap_band(issuer.label_font, s)) for s in label_sizes},
                      "value": {str(s): list(cap_band(issuer.font, s)) for s in value_sizes}},
    }


def _template(doc: DocumentLayout) -> dict[str, Any]:
    grid = rows = mrz = None
    if doc.grid:
        g = doc.grid
        grid = {"top": g.top, "pitch": g.pitch, "label_size": g.label_size, "value_size": g.value_size,
                "value_dy": g.value_dy,
                "cells": [{"name": c.name, "row": c.row, "x": c.x, "width": c.width} for c in g.cells]}
    if doc.rows:
        r = doc.rows
        rows = {"rows": [list(row) for row in r.rows], "top": r.top, "pitch": r.pitch,
                "baseline_dy": r.baseline_dy, "number_gap": r.number_gap, "second_column": r.second_column,
                "categories_gap": r.categories_gap, "value_size": r.value_size}
    if doc.mrz:
        m = doc.mrz
        mrz = {"top": m.top, "lines": m.lines, "chars": m.chars, "padding": m.padding,
               "ink_x": list(mrz_ink_x(doc))}
    return {"l1": doc.l1, "photo_side": doc.photo_side, "size": list(doc.size), "header": doc.header,
            "text_x": doc.text_x, "grid": grid, "rows": rows, "mrz": mrz}


def build() -> dict[str, Any]:
    """The synthetic corpus's issuer layouts, as the schema's dict."""
    english = [i for i in ISSUERS if i.locale.startswith("en")]
    common = list(dict.fromkeys((name, label) for i in english for name, label in i.labels.items()))
    return {
        "schema": SCHEMA,
        "description": "the synthetic corpus's five fictional issuers and their templates (corpus/issuers.py, "
                       "corpus/layout.py), built by python -m corpus.extract_layouts",
        "l1_classes": list(L1_CLASSES),
        "fields": {l1: _base_fields(l1) for l1 in L1_CLASSES},
        "categories": list(CATEGORIES),
        "doc_letters": DOC_LETTERS,
        "dl_numbers": dict(DL_NUMBERS),
        "common_labels": [list(pair) for pair in common],
        "issuers": [_issuer(issuer) for issuer in ISSUERS],
        "templates": [_template(doc) for doc in LAYOUTS.values()],
    }


def render(data: dict[str, Any]) -> str:
    """The file's text: sorted keys, one-space indent, UTF-8 (not escaped), a final newline."""
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m corpus.extract_layouts", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="the file to write (e.g. configs/layouts/synthetic.json); "
                                                 "default: print to standard output")
    args = parser.parse_args(argv)
    text = render(build())
    if args.out is None:
        sys.stdout.write(text)
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
