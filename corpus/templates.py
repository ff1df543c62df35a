"""Visual templates of the three document types, drawn with Pillow.

Every (issuer, document type) has its own background (paper tint, guilloche and tinted pattern in
the issuer's security ink, made once per process and cached), header, layout and typefaces. The
security ink is chosen so that one colour channel nearly erases it while another makes it as dark
as text: channel choice and binarisation matter, as on real documents.
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

# Sizes in pixels at 10 px/mm (ID-1 card 85.6 x 54 mm; TD3 passport data page 125 x 88 mm).
SIZES = {"id_card": (1000, 630), "driving_licence": (1000, 630), "passport": (1250, 880)}


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


def _labelled(canvas: Canvas, issuer: Issuer, x: int, y: int, name: str, value: str, width: int,
              value_size: int = 27) -> None:
    canvas.text((x, y), issuer.labels[name], issuer.label_font, 15, issuer.palette.accent, max_width=width)
    size = value_size + 5 if name == "document_number" else value_size
    canvas.text((x, y + 20), value, _value_face(issuer, name), size, issuer.palette.ink, max_width=width)


def _header(canvas: Canvas, issuer: Issuer, title: str, width: int, band: int) -> None:
    canvas.draw.rectangle((0, 0, width, band), fill=issuer.palette.accent)
    canvas.text((28, band / 2), issuer.name, "DejaVuSans-Bold.ttf", 26, (250, 250, 245), anchor="lm",
                max_width=width // 2 - 40)
    canvas.text((width - 28, band / 2), title, "DejaVuSans-Bold.ttf", 24, (250, 250, 245), anchor="rm",
                max_width=width // 2 - 40)


def _mrz(canvas: Canvas, lines: tuple[str, ...], top: int, width: int, height: int) -> None:
    canvas.draw.rectangle((0, top, width, height), fill=(250, 250, 247))
    face = str(mrz_font_path())
    pitch = (height - top - 20) / len(lines)
    size = int(pitch * 0.78)
    while size > 14 and canvas.draw.textlength(lines[0], font=font(face, size)) > width - 80:
        size -= 1
    left = (width - canvas.draw.textlength(lines[0], font=font(face, size))) / 2
    for k, line in enumerate(lines):
        canvas.text((left, top + 10 + pitch * (k + 0.5)), line, face, size, (10, 10, 10), anchor="lm")


def _render_id_card(canvas: Canvas, ident: Identity, rng: np.random.Generator) -> None:
    issuer, (width, height) = ident.issuer, SIZES["id_card"]
    _header(canvas, issuer, issuer.titles["id_card"], width, 62)
    photo_x = 30 if issuer.photo_side == "left" else width - 30 - 230
    x0 = 285 if issuer.photo_side == "left" else 30
    _photo(canvas, (photo_x, 82, photo_x + 230, 82 + 285), rng)
    _signature(canvas, (photo_x + 10, 380, photo_x + 220, 440), rng)
    fld = ident.fields()
    col = 340
    rows = [
        [("surname", ident.surname, 2 * col)],
        [("given_names", ident.given_names, 2 * col)],
        [("sex", ident.sex, col), ("nationality", ident.issuer.code, col)],
        [("date_of_birth", ident.printed_date(ident.birth), col), ("document_number", ident.document_number, col)],
        [("date_of_expiry", ident.printed_date(ident.expiry), col)],
    ]
    extras = [name for name in ("place_of_birth", "personal_number") if name in fld]
    for name in extras:
        rows[-1].append((name, fld[name], col))
    for r, row in enumerate(rows):
        for c, (name, value, w) in enumerate(row):
            _labelled(canvas, issuer, x0 + c * col, 78 + r * 62, name, value, w - 20)
    _mrz(canvas, ident.mrz_lines(), 455, width, height)


def _render_passport(canvas: Canvas, ident: Identity, rng: np.random.Generator) -> None:
    issuer, (width, height) = ident.issuer, SIZES["passport"]
    _header(canvas, issuer, issuer.titles["passport"], width, 76)
    photo_x = 45 if issuer.photo_side == "left" else width - 45 - 300
    x0 = 390 if issuer.photo_side == "left" else 45
    _photo(canvas, (photo_x, 110, photo_x + 300, 110 + 380), rng)
    _signature(canvas, (photo_x + 20, 520, photo_x + 280, 600), rng)
    fld = ident.fields()
    col = 400
    rows = [
        [("type", "P", 150), ("code", issuer.code, 200), ("document_number", ident.document_number, col)],
        [("surname", ident.surname, 2 * col)],
        [("given_names", ident.given_names, 2 * col)],
        [("nationality", issuer.code, col), ("date_of_birth", ident.printed_date(ident.birth), col)],
        [("sex", ident.sex, col), ("place_of_birth", ident.place_of_birth, col)],
        [("date_of_issue", ident.printed_date(ident.issue), col), ("authority", ident.authority, col)],
        [("date_of_expiry", ident.printed_date(ident.expiry), col)],
    ]
    if "personal_number" in fld:
        rows[-1].append(("personal_number", fld["personal_number"], col))
    for r, row in enumerate(rows):
        x = x0
        for name, value, w in row:
            _labelled(canvas, issuer, x, 96 + r * 78, name, value, w - 20, value_size=30)
            x += w
    _mrz(canvas, ident.mrz_lines(), 680, width, height)


def _render_driving_licence(canvas: Canvas, ident: Identity, rng: np.random.Generator) -> None:
    issuer, (width, _height) = ident.issuer, SIZES["driving_licence"]
    pal = issuer.palette
    canvas.draw.rectangle((0, 0, width, 70), fill=pal.accent)
    canvas.draw.rectangle((20, 10, 110, 60), outline=(250, 250, 245), width=3)
    canvas.text((65, 35), issuer.code, "DejaVuSans-Bold.ttf", 28, (250, 250, 245), anchor="mm")
    canvas.text((135, 35), issuer.titles["driving_licence"], "DejaVuSans-Bold.ttf", 30, (250, 250, 245),
                anchor="lm", max_width=width - 160)
    photo_x = 30 if issuer.photo_side == "left" else width - 30 - 230
    x0 = 290 if issuer.photo_side == "left" else 30
    _photo(canvas, (photo_x, 95, photo_x + 230, 95 + 290), rng)
    canvas.text((photo_x, 405), "7.", issuer.label_font, 18, pal.accent)
    _signature(canvas, (photo_x + 30, 400, photo_x + 225, 460), rng)
    rows = [
        [("surname", ident.surname)],
        [("given_names", ident.given_names)],
        [("date_of_birth", f"{ident.printed_date(ident.birth)} {ident.place_of_birth}")],
        [("date_of_issue", ident.printed_date(ident.issue)), ("date_of_expiry", ident.printed_date(ident.expiry))],
        [("authority", ident.authority)],
        [("document_number", ident.document_number)],
    ]
    for r, row in enumerate(rows):
        for c, (name, value) in enumerate(row):
            x, y = x0 + c * 330, 100 + r * 56
            canvas.text((x, y + 14), DL_NUMBERS[name], issuer.label_font, 18, pal.accent, anchor="ls")
            canvas.text((x + 48, y + 14), value, _value_face(issuer, name), 33 if name == "document_number" else 28,
                        pal.ink, anchor="ls",
                        max_width=(300 if len(row) > 1 else 640) - 48)
    y = 100 + len(rows) * 56 + 40
    canvas.text((x0, y), DL_NUMBERS["categories"], issuer.label_font, 18, pal.accent, anchor="ls")
    canvas.text((x0 + 48, y), ident.categories, issuer.font, 28, pal.ink, anchor="ls")


_RENDERERS = {"id_card": _render_id_card, "passport": _render_passport, "driving_licence": _render_driving_licence}


def render(ident: Identity, rng: np.random.Generator) -> tuple[np.ndarray, tuple[str, ...]]:
    """The document as an RGB array and its printed text lines (reading order)."""
    canvas = Canvas(background(ident.issuer.code, ident.l1).copy())
    _RENDERERS[ident.l1](canvas, ident, rng)
    return np.asarray(canvas.image), canvas.text_lines()
