"""The geometry of the synthetic document templates: the one table that corpus/templates.py draws from and
corpus/extract_layouts.py exports for the extractors (configs/layouts/synthetic.json, which steps/extract/
reads to find a value where the template puts it when its label was not read).

Pixels are template pixels, 10 px/mm (ID-1 card 85.6 x 54 mm; TD3 passport data page 125 x 88 mm), those
of a 'clean' capture. One `DocumentLayout` per (document type, photo side): the photo, the signature, the
header band, and the text zone — a label grid (identity cards, passports), numbered rows (driving
licences) — and the MRZ zone.

Text is positioned by its anchor (Pillow's: 'la' the left end of the ascender line, 'ls' of the
baseline); where the ink lies relative to an anchor depends on the typeface, which `cap_band` and
`mrz_ink_x` measure (fonts load lazily: the table itself needs none).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

Box = tuple[int, int, int, int]

SIZES = {"id_card": (1000, 630), "driving_licence": (1000, 630), "passport": (1250, 880)}
PHOTO_SIDES = ("left", "right")
MRZ_CHARSET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<"


@dataclass(frozen=True)
class Cell:
    """A label and its value in a label grid: a field, or a label without a wanted value (type, code)."""

    name: str
    row: int
    x: int  # column start, from the grid's left edge
    width: int


@dataclass(frozen=True)
class LabelGrid:
    """Identity cards and passports: rows of labels, each value below its label."""

    top: int  # the first row's label anchor ('la')
    pitch: int  # label row to label row
    value_size: int  # type size of the values
    cells: tuple[Cell, ...]  # in drawing order; optional fields are drawn where the document carries them
    label_size: int = 15
    value_dy: int = 20  # label anchor to value anchor
    number_boost: int = 5  # document numbers are printed this much larger (in OCR-B)
    gutter: int = 20  # a text stops this far short of its cell's right edge

    def label_y(self, row: int) -> int:
        return self.top + row * self.pitch

    def value_y(self, row: int) -> int:
        return self.label_y(row) + self.value_dy

    def size_of(self, name: str) -> int:
        return self.value_size + self.number_boost if name == "document_number" else self.value_size


@dataclass(frozen=True)
class NumberedRows:
    """Driving licences (EU model): rows of values, each right of its field number ('1.', '4a.' …);
    the categories ('9.') below the last row."""

    rows: tuple[tuple[str, ...], ...]  # the fields of each row, left to right
    top: int = 100  # the first row's top
    pitch: int = 56  # row to row
    baseline_dy: int = 14  # a row's top to its text baseline
    number_gap: int = 48  # a field number's anchor to its value's
    second_column: int = 330  # a row's second field, right of the first
    categories_gap: int = 40  # the last row's top + one pitch to the categories' baseline
    number_size: int = 18
    value_size: int = 28
    doc_number_size: int = 33
    width: int = 640  # room for a field (number and value) alone in its row
    column_width: int = 300  # … sharing its row
    signature_number_y: int = 405  # '7.' (signature) top, at the photo's left edge

    def baseline(self, row: int) -> int:
        return self.top + row * self.pitch + self.baseline_dy

    @property
    def categories_baseline(self) -> int:
        return self.top + len(self.rows) * self.pitch + self.categories_gap

    def size_of(self, name: str) -> int:
        return self.doc_number_size if name == "document_number" else self.value_size


@dataclass(frozen=True)
class MrzZone:
    """The machine-readable zone: a pale band from `top` to the document's bottom edge, its lines
    evenly spaced and centred, in OCR-B as large as fits."""

    top: int
    lines: int
    chars: int  # per line
    padding: int = 10  # above the first line's slot and below the last's
    side_margin: int = 40  # the least room left and right of the text
    size_ratio: float = 0.78  # type size / line pitch, at most
    min_size: int = 14


@dataclass(frozen=True)
class DocumentLayout:
    """Everything positioned on one document type with its photo on one side."""

    l1: str
    photo_side: str
    size: tuple[int, int]
    header: int  # the header band's height (the title centred in it)
    photo: Box
    signature: Box
    text_x: int  # left edge of the label grid / numbered rows
    grid: LabelGrid | None = None
    rows: NumberedRows | None = None
    mrz: MrzZone | None = None

    @property
    def title_y(self) -> float:
        return self.header / 2

    @property
    def mrz_pitch(self) -> float:
        assert self.mrz is not None
        return (self.size[1] - self.mrz.top - 2 * self.mrz.padding) / self.mrz.lines

    @property
    def mrz_centres(self) -> tuple[float, ...]:
        """Each MRZ line's vertical centre (its 'lm' anchor)."""
        assert self.mrz is not None
        return tuple(self.mrz.top + self.mrz.padding + self.mrz_pitch * (k + 0.5) for k in range(self.mrz.lines))

    def mrz_size(self, text_length: Callable[[int], float]) -> int:
        """The MRZ type size: `size_ratio` of the pitch, less while a line (`text_length(size)` wide) does
        not fit between the side margins."""
        assert self.mrz is not None
        size = int(self.mrz_pitch * self.mrz.size_ratio)
        while size > self.mrz.min_size and text_length(size) > self.size[0] - 2 * self.mrz.side_margin:
            size -= 1
        return size


@dataclass(frozen=True)
class _TypeSpec:
    """What a document type places, before the photo side is chosen."""

    header: int
    margin: int  # the photo's distance from the document's side edge
    photo_top: int
    photo_size: tuple[int, int]
    signature: Box  # x relative to the photo's left edge
    text_x: dict[str, int]  # by photo side
    grid: LabelGrid | None = None
    rows: NumberedRows | None = None
    mrz: MrzZone | None = None


_ID_COLUMN = 340
_PASSPORT_COLUMN = 400

_TYPES = {
    "id_card": _TypeSpec(
        header=62, margin=30, photo_top=82, photo_size=(230, 285), signature=(10, 380, 220, 440),
        text_x={"left": 285, "right": 30},
        grid=LabelGrid(top=78, pitch=62, value_size=27, cells=(
            Cell("surname", 0, 0, 2 * _ID_COLUMN),
            Cell("given_names", 1, 0, 2 * _ID_COLUMN),
            Cell("sex", 2, 0, _ID_COLUMN), Cell("nationality", 2, _ID_COLUMN, _ID_COLUMN),
            Cell("date_of_birth", 3, 0, _ID_COLUMN), Cell("document_number", 3, _ID_COLUMN, _ID_COLUMN),
            Cell("date_of_expiry", 4, 0, _ID_COLUMN),
            # an issuer's one extra field (corpus/issuers.py), beside the expiry date
            Cell("place_of_birth", 4, _ID_COLUMN, _ID_COLUMN), Cell("personal_number", 4, _ID_COLUMN, _ID_COLUMN),
        )),
        mrz=MrzZone(top=455, lines=3, chars=30)),
    "passport": _TypeSpec(
        header=76, margin=45, photo_top=110, photo_size=(300, 380), signature=(20, 520, 280, 600),
        text_x={"left": 390, "right": 45},
        grid=LabelGrid(top=96, pitch=78, value_size=30, cells=(
            Cell("type", 0, 0, 150), Cell("code", 0, 150, 200),
            Cell("document_number", 0, 350, _PASSPORT_COLUMN),
            Cell("surname", 1, 0, 2 * _PASSPORT_COLUMN),
            Cell("given_names", 2, 0, 2 * _PASSPORT_COLUMN),
            Cell("nationality", 3, 0, _PASSPORT_COLUMN),
            Cell("date_of_birth", 3, _PASSPORT_COLUMN, _PASSPORT_COLUMN),
            Cell("sex", 4, 0, _PASSPORT_COLUMN), Cell("place_of_birth", 4, _PASSPORT_COLUMN, _PASSPORT_COLUMN),
            Cell("date_of_issue", 5, 0, _PASSPORT_COLUMN),
            Cell("authority", 5, _PASSPORT_COLUMN, _PASSPORT_COLUMN),
            Cell("date_of_expiry", 6, 0, _PASSPORT_COLUMN),
            Cell("personal_number", 6, _PASSPORT_COLUMN, _PASSPORT_COLUMN),
        )),
        mrz=MrzZone(top=680, lines=2, chars=44)),
    "driving_licence": _TypeSpec(
        header=70, margin=30, photo_top=95, photo_size=(230, 290), signature=(30, 400, 225, 460),
        text_x={"left": 290, "right": 30},
        rows=NumberedRows(rows=(("surname",), ("given_names",), ("date_of_birth",),
                                ("date_of_issue", "date_of_expiry"), ("authority",), ("document_number",)))),
}


# MRZ formats per document type, the first the default; an identity card in TD2 keeps the TD1 card's visual
# zone and prints two 36-character lines where TD1 has three of 30.
MRZ_FORMATS: dict[str, tuple[str | None, ...]] = {"id_card": ("TD1", "TD2"), "passport": ("TD3",),
                                                  "driving_licence": (None,)}
_MRZ_ZONES = {"TD2": MrzZone(top=455, lines=2, chars=36)}


def _resolve(l1: str, photo_side: str, mrz_format: str | None) -> DocumentLayout:
    spec, (width, height) = _TYPES[l1], SIZES[l1]
    photo_w, photo_h = spec.photo_size
    photo_x = spec.margin if photo_side == "left" else width - spec.margin - photo_w
    sx0, sy0, sx1, sy1 = spec.signature
    return DocumentLayout(
        l1, photo_side, (width, height), spec.header,
        photo=(photo_x, spec.photo_top, photo_x + photo_w, spec.photo_top + photo_h),
        signature=(photo_x + sx0, sy0, photo_x + sx1, sy1),
        text_x=spec.text_x[photo_side], grid=spec.grid, rows=spec.rows,
        mrz=_MRZ_ZONES.get(mrz_format or "", spec.mrz))


# by (document type, photo side, MRZ format: None for a driving licence)
LAYOUTS = {(l1, side, kind): _resolve(l1, side, kind) for l1 in _TYPES for side in PHOTO_SIDES
           for kind in MRZ_FORMATS[l1]}


def layout(l1: str, photo_side: str, mrz_format: str | None = None) -> DocumentLayout:
    """The layout of a document type with its photo on `photo_side` ('left' or 'right') and its MRZ in
    `mrz_format` (default: the type's usual one)."""
    return LAYOUTS[(l1, photo_side, mrz_format or MRZ_FORMATS[l1][0])]


# ── where the ink lies (typeface metrics) ────────────────────────────────────────────────────────


@cache
def cap_band(face: str, size: int) -> tuple[int, int]:
    """Top and bottom of capital letters below a text's 'la' anchor, in a face at a size."""
    from corpus.fonts import font

    box = font(face, size).getbbox("E", anchor="la")
    return box[1], box[3]


@cache
def mrz_ink_x(doc: DocumentLayout) -> tuple[float, float]:
    """Left and right ends of the MRZ lines' ink (the zone's text, less the typical side bearings of
    the MRZ characters), in the MRZ face the corpus is drawn with."""
    from corpus.fonts import font, mrz_font_path

    assert doc.mrz is not None
    face = str(mrz_font_path())
    sample = MRZ_CHARSET[:1] * doc.mrz.chars  # the face is monospaced
    size = doc.mrz_size(lambda s: font(face, s).getlength(sample))
    typeface = font(face, size)
    advance = typeface.getlength(sample) / doc.mrz.chars
    inks = []
    for char in MRZ_CHARSET:
        mask, offset = typeface.getmask2(char)
        box = mask.getbbox() or (0, 0, 0, 0)
        inks.append((offset[0] + box[0], offset[0] + box[2]))
    left = (doc.size[0] - advance * doc.mrz.chars) / 2
    return (left + statistics.median(i[0] for i in inks),
            left + advance * doc.mrz.chars - statistics.median(advance - i[1] for i in inks))
