"""Image reading that always yields RGB uint8 and names the file when it cannot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from corpus.errors import CorpusError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")


def read_rgb(path: Path) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3), upright per its EXIF orientation.

    CMYK, palette, grey and 16-bit grey images are converted (16-bit mapped to 8-bit range).

    Raises CorpusError naming the file when it is missing, truncated or not an image.
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()  # forces a full decode so truncated files fail here, not later
            img = ImageOps.exif_transpose(img)
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                wide = np.asarray(img, dtype=np.float64)
                divisor = 257.0 if wide.max() > 255 else 1.0  # 16-bit range to 8-bit range
                img = Image.fromarray(np.clip(wide / divisor, 0, 255).astype(np.uint8))
            rgb = img.convert("RGB")
    except FileNotFoundError as exc:
        raise CorpusError(f"image file not found: {path}") from exc
    except (PermissionError, IsADirectoryError) as exc:
        raise CorpusError(f"cannot read image {path}: {exc.strerror}") from exc
    except UnidentifiedImageError as exc:
        raise CorpusError(f"not a readable image: {path}") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise CorpusError(f"corrupt or truncated image {path}: {exc}") from exc
    return np.asarray(rgb, dtype=np.uint8)
