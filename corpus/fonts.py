"""Typefaces: DejaVu (shipped with matplotlib) for the visual zone, OCR-B for the MRZ where installed."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import matplotlib
from PIL import ImageFont

# Debian's fonts-ocr-b; the MRZ falls back to DejaVu Sans Mono without it (the corpus records which).
OCR_B_CANDIDATES = (
    Path("/usr/share/fonts/opentype/ocr-b/OCRB.otf"),
    Path("/usr/share/fonts/truetype/ocr-b/OCRB.ttf"),
)
MONO_FALLBACK = "DejaVuSansMono.ttf"


def dejavu_path(name: str) -> Path:
    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name


@lru_cache(maxsize=1)
def mrz_font_path() -> Path:
    for candidate in OCR_B_CANDIDATES:
        if candidate.is_file():
            return candidate
    return dejavu_path(MONO_FALLBACK)


def mrz_font_name() -> str:
    path = mrz_font_path()
    return "OCR-B" if "ocr-b" in str(path).lower() else "DejaVu Sans Mono (fallback: fonts-ocr-b not installed)"


@lru_cache(maxsize=256)
def font(name: str, size: int) -> ImageFont.FreeTypeFont:
    """A DejaVu face by file name, or an absolute path, at a pixel size."""
    path = Path(name) if name.startswith("/") else dejavu_path(name)
    return ImageFont.truetype(str(path), size)
