"""Image statistics that capture distributions move: brightness, contrast, sharpness, skew, highlights, colour cast."""

from __future__ import annotations

import cv2
import numpy as np

STAT_WIDTH = 1000  # images are compared at a common width so sharpness is comparable


def image_stats(image: np.ndarray, corners: np.ndarray | None = None) -> dict[str, float]:
    """Statistics of an RGB uint8 image. Skew needs the document's corners (TL, TR, BR, BL)."""
    rgb = image.astype(np.float32)
    luma = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    scale = STAT_WIDTH / luma.shape[1]
    small = cv2.resize(luma, (STAT_WIDTH, max(1, int(round(luma.shape[0] * scale)))), interpolation=cv2.INTER_AREA)
    means = rgb.reshape(-1, 3).mean(axis=0) + 1.0
    stats = {
        "brightness": float(luma.mean()),
        "contrast": float(luma.std()),
        # Variance of the Laplacian after a light denoise, so sensor noise does not pass for detail.
        "sharpness": float(cv2.Laplacian(cv2.GaussianBlur(small, (3, 3), 0.8), cv2.CV_64F).var()),
        "highlights": float((luma >= 253).mean()),
        "color_cast": float(abs(np.log(means[0] / means[2]))),
        "skew": 0.0,
    }
    if corners is not None:
        c = np.asarray(corners, float)
        top, bottom = c[1] - c[0], c[2] - c[3]
        angles = [abs(np.degrees(np.arctan2(v[1], v[0]))) for v in (top, bottom)]
        stats["skew"] = float(np.mean(angles))
    return stats
