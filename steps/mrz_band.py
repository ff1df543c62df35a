"""Finding the machine-readable zone on the image itself, at full resolution.

An MRZ is two or three long lines of one monospaced typeface, parallel, equally long, left-aligned and evenly
spaced, near the bottom of the page. `text_lines` finds text-line bands at several scales (black-hat
morphology brings out dark print on a light ground, a horizontal gradient and a closing join each line's
characters into one blob; `cv2.minAreaRect` gives its centre, size and angle, so tilted documents are found
too); `mrz_groups` ranks the groups of bands that look like an MRZ; `line_crop` cuts one band out of the
full-resolution image, deskewed and scaled to a line height Tesseract reads well.

Nothing here knows an issuer or a layout: only what ICAO 9303 says every MRZ looks like.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class BandParams:
    detect_size: int = 800  # the image is searched at this longer side (px), then cut at full resolution
    kernels: tuple[int, ...] = (8, 14, 22)  # closing-kernel widths at the search size: small to large print
    min_aspect: float = 8.0  # width / height of a band that may be an MRZ line
    line_height: int = 36  # px: the height a line band is scaled to before it is read
    max_groups: int = 3  # MRZ groups worth reading, likeliest first


@dataclass(frozen=True)
class Band:
    """A text-line band in full-resolution pixels: centre, size along / across the line, angle (degrees, as
    `cv2.minAreaRect` gives it, the line running along `width`)."""

    cx: float
    cy: float
    width: float
    height: float
    angle: float

    @property
    def rect(self) -> tuple[tuple[float, float], tuple[float, float], float]:
        return (self.cx, self.cy), (self.width, self.height), self.angle

    def along(self) -> tuple[float, float]:
        """The unit vector along the line."""
        a = math.radians(self.angle)
        return math.cos(a), math.sin(a)

    def box(self) -> tuple[int, int, int, int]:
        """The axis-aligned box around the band (x0, y0, x1, y1)."""
        pts = cv2.boxPoints(self.rect)
        return (int(pts[:, 0].min()), int(pts[:, 1].min()), int(math.ceil(pts[:, 0].max())),
                int(math.ceil(pts[:, 1].max())))


def _gray(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def _bands_at(small: np.ndarray, kernel_width: int, params: BandParams) -> list[Band]:
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (kernel_width, max(3, kernel_width // 3)))
    blackhat = cv2.morphologyEx(cv2.GaussianBlur(small, (3, 3), 0), cv2.MORPH_BLACKHAT, kernel)
    gradient = np.absolute(cv2.Sobel(blackhat, cv2.CV_32F, 1, 0, ksize=-1))
    span = float(gradient.max() - gradient.min()) or 1.0
    gradient = (255 * (gradient - gradient.min()) / span).astype(np.uint8)
    closed = cv2.morphologyEx(gradient, cv2.MORPH_CLOSE, kernel)
    mask = cv2.threshold(closed, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)[1]
    mask = cv2.dilate(cv2.erode(mask, None, iterations=2), None, iterations=2)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    bands = []
    longest = max(small.shape)
    for contour in contours:
        (cx, cy), (w, h), angle = cv2.minAreaRect(contour)
        if w < h:
            w, h, angle = h, w, angle + 90
        if angle > 90:
            angle -= 180
        if w >= 0.15 * longest and h >= 3 and w / h >= params.min_aspect:
            bands.append(Band(cx, cy, w, h, angle))
    return bands


def _same(a: Band, b: Band) -> bool:
    return (abs(a.cy - b.cy) < 0.5 * max(a.height, b.height) and abs(a.cx - b.cx) < 0.25 * max(a.width, b.width)
            and abs(a.angle - b.angle) < 5)


def text_lines(image: np.ndarray, params: BandParams = BandParams()) -> list[Band]:
    """Long text-line bands of the image at every search scale (duplicates across scales merged, the wider
    kept), in full-resolution pixels, top to bottom."""
    gray = _gray(image)
    scale = min(1.0, params.detect_size / max(gray.shape))
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else gray
    found: list[Band] = []
    for kernel_width in params.kernels:
        for band in _bands_at(small, kernel_width, params):
            band = Band(band.cx / scale, band.cy / scale, band.width / scale, band.height / scale, band.angle)
            twins = [k for k, other in enumerate(found) if _same(band, other)]
            if not twins:
                found.append(band)
            elif all(band.width > found[k].width for k in twins):
                found = [b for k, b in enumerate(found) if k not in twins] + [band]
    return sorted(_split_stacked(gray, found), key=lambda b: b.cy)


def _rows_of_ink(gray: np.ndarray, band: Band) -> list[tuple[float, float]]:
    """The text rows inside a band: (top, bottom) across the band, in band-height units (0 = its top), from
    the ink profile of the band cut level and binarised."""
    crop = line_crop(gray, band, int(min(96, max(24, band.height))), pad=0.0)
    ink = cv2.threshold(crop, 0, 1, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)[1].mean(axis=1)
    inked = ink > 0.25 * (ink.max() or 1)
    rows, start = [], None
    for y, on in enumerate([*inked, False]):
        if on and start is None:
            start = y
        elif not on and start is not None:
            rows.append((start / len(inked), y / len(inked)))
            start = None
    return [r for r in rows if r[1] - r[0] >= 0.12]


def _split_stacked(gray: np.ndarray, bands: list[Band]) -> list[Band]:
    """A band whose ink profile shows two or more rows holds lines the closing joined: one band per row."""
    out = []
    for band in bands:
        rows = _rows_of_ink(gray, band) if band.height >= 12 else []
        if len(rows) < 2:
            out.append(band)
            continue
        ux, uy = band.along()
        nx, ny = -uy, ux  # across the line, downwards
        for top, bottom in rows:
            off = ((top + bottom) / 2 - 0.5) * band.height
            out.append(Band(band.cx + off * nx, band.cy + off * ny, band.width, (bottom - top) * band.height,
                            band.angle))
    return out


def _group_score(group: Sequence[Band], page_height: float) -> float:
    """How much a group of bands looks like an MRZ: long lines, the lower on the page the better."""
    width = float(np.mean([b.width for b in group]))
    low = float(np.mean([b.cy for b in group])) / page_height
    return len(group) * width * (0.75 + 0.5 * low)


def _fits(a: Band, b: Band) -> bool:
    """Whether band `b` may be the MRZ line below `a`: parallel, as wide, left-aligned, one line further."""
    ux, uy = a.along()
    dx, dy = b.cx - a.cx, b.cy - a.cy
    across = -uy * dx + ux * dy
    along = ux * dx + uy * dy
    height = max(a.height, b.height)
    return (abs(a.angle - b.angle) < 4 and abs(a.width - b.width) < 0.18 * max(a.width, b.width)
            and 1.0 * height < across < 3.6 * height and abs(along) < 0.12 * max(a.width, b.width))


def mrz_groups(bands: Sequence[Band], page_height: float, params: BandParams = BandParams()) -> list[list[Band]]:
    """Groups of two or three bands that may be an MRZ (parallel, alike, stacked), likeliest first; a lone
    long band last (an MRZ whose other lines were not found as bands)."""
    groups: list[list[Band]] = []
    ordered = sorted(bands, key=lambda b: b.cy)
    for k, first in enumerate(ordered):
        chain = [first]
        for other in ordered[k + 1:]:
            if len(chain) < 3 and _fits(chain[-1], other):
                chain.append(other)
        if len(chain) >= 2:
            groups.append(chain)
    groups.sort(key=lambda g: -_group_score(g, page_height))
    singles = sorted(([b] for b in bands), key=lambda g: -_group_score(g, page_height))
    return (groups + singles[:1])[:params.max_groups]


def line_crop(image: np.ndarray, band: Band, line_height: int = 44, pad: float = 0.5) -> np.ndarray:
    """The band cut from the full-resolution image, rotated level and scaled so that the band is
    `line_height` px high, with `pad` × its height of margin above and below and a little more at the ends
    (a band's ends may fall short of its first and last characters)."""
    gray = _gray(image)
    scale = line_height / max(band.height, 1.0)
    out_w = int((band.width + 3 * band.height) * scale)
    out_h = int(band.height * (1 + 2 * pad) * scale)
    matrix = cv2.getRotationMatrix2D((band.cx, band.cy), band.angle, scale)
    matrix[0, 2] += out_w / 2 - band.cx
    matrix[1, 2] += out_h / 2 - band.cy
    interpolation = cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA
    return cv2.warpAffine(gray, matrix, (out_w, out_h), flags=interpolation, borderMode=cv2.BORDER_REPLICATE)
