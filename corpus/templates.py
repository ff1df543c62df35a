"""Visual templates of the three document types, drawn with Pillow.

Every (issuer, document type) has its own background (paper tint, guilloche and tinted pattern in
the issuer's security ink, made once per process and cached), header, layout and typefaces. The
security ink is chosen so that one colour channel nearly erases it while another makes it as dark
as text: channel choice and binarisation matter, as on real documents.

Where things go (photo, signature, label grid, numbered rows, MRZ) is corpus/layout.py's table, which
the extraction step reads too: change a position there, not here.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from corpus.fonts import font, mrz_font_path
from corpus.identity import Identity
from corpus.issuers import DL_NUMBERS, ISSUER_BY_CODE, Issuer
from corpus.layout import SIZES, DocumentLayout, LabelGrid, layout


@dataclass
class Canvas:
    """A Pillow image that remembers every text it draws, for the ground-truth text lines."""

    image: Image.Image
    items: list[tuple[str, tuple[int, int, int, int]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.draw = ImageDraw.Draw(self.image)

    def text(self, xy: tuple[float, float], text: str, face: str, size: int, fill, max_width: int | None = None,
             anchor: str = "la") -> tuple[int, int, int, int]:
        if max_width is not None:
            while size > 12 and self.draw.textlength(text, font=font(face, size)) > max_width:
                size -= 1
        box = self.draw.textbbox(xy, text, font=font(face, size), anchor=anchor)
        self.draw.text(xy, text, font=font(face, size), fill=fill, anchor=anchor)
        self.items.append((text, box))
        return box

    def text_lines(self) -> tuple[str, ...]:
        """Drawn texts grouped into lines top to bottom (items whose vertical centres align), left to right."""
        entries = sorted(self.items, key=lambda item: ((item[1][1] + item[1][3]) / 2, item[1][0]))
        lines: list[list[tuple[str, tuple[int, int, int, int]]]] = []
        for entry in entries:
            centre = (entry[1][1] + entry[1][3]) / 2
            height = entry[1][3] - entry[1][1]
            if lines:
                last = lines[-1][-1][1]
                if abs(centre - (last[1] + last[3]) / 2) < 0.5 * min(height, last[3] - last[1]):
                    lines[-1].append(entry)
                    continue
            lines.append([entry])
        return tuple(" ".join(t for t, _ in sorted(line, key=lambda e: e[1][0])) for line in lines)


def _template_rng(issuer: Issuer, l1: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(f"{issuer.code}/{l1}".encode()))


def _curve(draw: ImageDraw.ImageDraw, xs: np.ndarray, ys: np.ndarray, fill, width: int = 1) -> None:
    draw.line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=fill, width=width)


@lru_cache(maxsize=64)
def background(issuer_code: str, l1: str) -> Image.Image:
    """Paper tint + tinted pattern + guilloche for one (issuer, document type). Deterministic."""
    issuer = ISSUER_BY_CODE[issuer_code]
    width, height = SIZES[l1]
    rng = _template_rng(issuer, l1)
    pal = issuer.palette
    base = np.empty((height, width, 3), np.float32)
    base[:] = pal.background
    # A soft tinted wash across the card (lighter on one side), like offset-printed backgrounds.
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    wash = 0.5 + 0.5 * np.cos((xx * np.cos(angle) + yy * np.sin(angle)) / width * np.pi * rng.uniform(1, 2))
    sec = np.array(pal.security, np.float32)
    base += (sec - base) * (0.10 * wash)[..., None]
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).convert("RGBA")
    overlay = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    ink = (*pal.security, 120)
    t = np.linspace(0, 2 * np.pi, 1400)
    if l1 == "passport":
        # Horizontal guilloche bands over the whole page.
        for k in range(70):
            y0 = k * height / 60
            ys = y0 + 14 * np.sin(t * 6 + k * 0.35) + 6 * np.sin(t * 17 + k)
            _curve(draw, np.linspace(0, width, t.size), ys, ink)
        centres = [(width * 0.62, height * 0.45)]
    elif l1 == "id_card":
        centres = [(width * rng.uniform(0.55, 0.75), height * 0.40), (width * 0.15, height * 0.8)]
    else:
        # Diagonal waves for driving licences.
        for k in range(60):
            x0 = -height + k * (width + height) / 55
            xs = x0 + np.linspace(0, height, t.size) + 9 * np.sin(t * 9 + k * 0.5)
            _curve(draw, xs, np.linspace(0, height, t.size), ink)
        centres = [(width * 0.5, height * 0.55)]
    for cx, cy in centres:
        # Guilloche rosette: closed rings r(θ) = R + A·sin(nθ + φk), phase-shifted ring after ring.
        radius, lobes = rng.uniform(120, 190), int(rng.integers(9, 16))
        theta = np.linspace(0, 2 * np.pi, 1500)
        for k in range(14):
            r = radius + 38 * np.sin(lobes * theta + k * np.pi / 14) + 10 * np.sin(3 * lobes * theta)
            _curve(draw, cx + r * np.cos(theta), cy + r * np.sin(theta), ink)
    img = Image.alpha_composite(img, overlay).convert("RGB")
    return img


def _photo(canvas: Canvas, box: tuple[int, int, int, int], rng: np.random.Generator) -> None:
    """A stylised portrait (backdrop, shoulders, neck, head, hair, eyes, mouth), clipped to its frame."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    photo = Image.new("RGB", (w, h), tuple(int(v) for v in rng.integers(185, 230, 3)))
    draw = ImageDraw.Draw(photo)
    skin = [(241, 194, 167), (224, 172, 135), (198, 134, 96), (141, 85, 54), (255, 219, 196)][int(rng.integers(5))]
    hair = [(30, 20, 15), (80, 50, 30), (160, 120, 60), (200, 170, 110), (110, 110, 110)][int(rng.integers(5))]
    cloth = tuple(int(v) for v in rng.integers(20, 140, 3))
    cx = w / 2 + rng.uniform(-0.04, 0.04) * w
    draw.ellipse((0.05 * w, 0.72 * h, 0.95 * w, 1.35 * h), fill=cloth)
    draw.rectangle((cx - 0.09 * w, 0.55 * h, cx + 0.09 * w, 0.78 * h), fill=skin)
    head = (cx - 0.24 * w, 0.16 * h, cx + 0.24 * w, 0.64 * h)
    draw.ellipse((head[0] - 0.03 * w, head[1] - 0.05 * h, head[2] + 0.03 * w, head[1] + 0.28 * h), fill=hair)
    draw.ellipse(head, fill=skin)
    for ex in (cx - 0.09 * w, cx + 0.09 * w):
        draw.ellipse((ex - 0.03 * w, 0.368 * h, ex + 0.03 * w, 0.392 * h), fill=(40, 30, 30))
    draw.line((cx - 0.07 * w, 0.53 * h, cx + 0.07 * w, 0.53 * h), fill=(150, 60, 60), width=3)
    canvas.image.paste(photo, (x0, y0))
    canvas.draw.rectangle(box, outline=(90, 90, 90), width=2)


def _signature(canvas: Canvas, box: tuple[int, int, int, int], rng: np.random.Generator) -> None:
    """A handwriting-like stroke: a sum of sinusoids along x, in blue-black ink."""
    x0, y0, x1, y1 = box
    t = np.linspace(0, 1, 300)
    ys = np.zeros_like(t)
    for _ in range(4):
        ys += rng.uniform(0.1, 0.35) * np.sin(2 * np.pi * (rng.uniform(1, 6) * t + rng.uniform()))
    xs = x0 + (x1 - x0) * (t + 0.03 * np.sin(2 * np.pi * rng.uniform(5, 12) * t))
    ys = (y0 + y1) / 2 + ys / max(1e-6, np.abs(ys).max()) * (y1 - y0) / 2.2
    _curve(canvas.draw, xs, ys, (25, 30, 90), width=3)


def _value_face(issuer: Issuer, field_name: str) -> str:
    # Document numbers are printed in OCR-B (as on most real documents), names and dates in the issuer's face.
    return str(mrz_font_path()) if field_name == "document_number" else issuer.font


def _labelled(canvas: Canvas, issuer: Issuer, grid: LabelGrid, x: int, y: int, name: str, value: str,
              width: int) -> None:
    canvas.text((x, y), issuer.labels[name], issuer.label_font, grid.label_size, issuer.palette.accent,
                max_width=width)
    canvas.text((x, y + grid.value_dy), value, _value_face(issuer, name), grid.size_of(name), issuer.palette.ink,
                max_width=width)


def _header(canvas: Canvas, issuer: Issuer, title: str, width: int, band: int) -> None:
    canvas.draw.rectangle((0, 0, width, band), fill=issuer.palette.accent)
    canvas.text((28, band / 2), issuer.name, "DejaVuSans-Bold.ttf", 26, (250, 250, 245), anchor="lm",
                max_width=width // 2 - 40)
    canvas.text((width - 28, band / 2), title, "DejaVuSans-Bold.ttf", 24, (250, 250, 245), anchor="rm",
                max_width=width // 2 - 40)


def _mrz(canvas: Canvas, lines: tuple[str, ...], doc: DocumentLayout) -> None:
    assert doc.mrz is not None and len(lines) == doc.mrz.lines
    width, height = doc.size
    canvas.draw.rectangle((0, doc.mrz.top, width, height), fill=(250, 250, 247))
    face = str(mrz_font_path())
    size = doc.mrz_size(lambda s: canvas.draw.textlength(lines[0], font=font(face, s)))
    left = (width - canvas.draw.textlength(lines[0], font=font(face, size))) / 2
    for line, centre in zip(lines, doc.mrz_centres, strict=True):
        canvas.text((left, centre), line, face, size, (10, 10, 10), anchor="lm")


_DATES = {"date_of_birth": "birth", "date_of_expiry": "expiry", "date_of_issue": "issue"}


def _printed(ident: Identity, name: str) -> str:
    """A field (or the type / code label's value) as the visual zone prints it."""
    if name == "type":
        return "P"
    if name in ("code", "nationality"):
        return ident.issuer.code
    if name in _DATES:
        return ident.printed_date(getattr(ident, _DATES[name]))
    return getattr(ident, name)


def _render_grid(canvas: Canvas, ident: Identity, rng: np.random.Generator) -> None:
    """Identity cards and passports: header, photo, signature, the label grid, the MRZ."""
    issuer, doc = ident.issuer, layout(ident.l1, ident.issuer.photo_side, ident.mrz_format)
    assert doc.grid is not None
    _header(canvas, issuer, issuer.titles[ident.l1], doc.size[0], doc.header)
    _photo(canvas, doc.photo, rng)
    _signature(canvas, doc.signature, rng)
    carried = set(ident.fields()) | {"type", "code"}
    for cell in doc.grid.cells:
        if cell.name in carried:
            _labelled(canvas, issuer, doc.grid, doc.text_x + cell.x, doc.grid.label_y(cell.row), cell.name,
                      _printed(ident, cell.name), cell.width - doc.grid.gutter)
    _mrz(canvas, ident.mrz_lines(), doc)


def _render_driving_licence(canvas: Canvas, ident: Identity, rng: np.random.Generator) -> None:
    issuer, doc = ident.issuer, layout("driving_licence", ident.issuer.photo_side)
    rows, width, pal = doc.rows, doc.size[0], issuer.palette
    assert rows is not None
    canvas.draw.rectangle((0, 0, width, doc.header), fill=pal.accent)
    canvas.draw.rectangle((20, 10, 110, 60), outline=(250, 250, 245), width=3)
    canvas.text((65, 35), issuer.code, "DejaVuSans-Bold.ttf", 28, (250, 250, 245), anchor="mm")
    canvas.text((135, 35), issuer.titles["driving_licence"], "DejaVuSans-Bold.ttf", 30, (250, 250, 245),
                anchor="lm", max_width=width - 160)
    _photo(canvas, doc.photo, rng)
    canvas.text((doc.photo[0], rows.signature_number_y), "7.", issuer.label_font, rows.number_size, pal.accent)
    _signature(canvas, doc.signature, rng)
    values = {name: _printed(ident, name) for row in rows.rows for name in row}
    values["date_of_birth"] = f"{values['date_of_birth']} {ident.place_of_birth}"
    for r, row in enumerate(rows.rows):
        for c, name in enumerate(row):
            x, y = doc.text_x + c * rows.second_column, rows.baseline(r)
            canvas.text((x, y), DL_NUMBERS[name], issuer.label_font, rows.number_size, pal.accent, anchor="ls")
            canvas.text((x + rows.number_gap, y), values[name], _value_face(issuer, name), rows.size_of(name),
                        pal.ink, anchor="ls",
                        max_width=(rows.column_width if len(row) > 1 else rows.width) - rows.number_gap)
    y = rows.categories_baseline
    canvas.text((doc.text_x, y), DL_NUMBERS["categories"], issuer.label_font, rows.number_size, pal.accent,
                anchor="ls")
    canvas.text((doc.text_x + rows.number_gap, y), ident.categories, issuer.font, rows.value_size, pal.ink,
                anchor="ls")


_RENDERERS = {"id_card": _render_grid, "passport": _render_grid, "driving_licence": _render_driving_licence}


def draw(ident: Identity, rng: np.random.Generator) -> Canvas:
    """The document drawn on its background (every text with its box: `Canvas.items`)."""
    canvas = Canvas(background(ident.issuer.code, ident.l1).copy())
    _RENDERERS[ident.l1](canvas, ident, rng)
    return canvas


def render(ident: Identity, rng: np.random.Generator) -> tuple[np.ndarray, tuple[str, ...]]:
    """The document as an RGB array and its printed text lines (reading order)."""
    canvas = draw(ident, rng)
    return np.asarray(canvas.image), canvas.text_lines()
