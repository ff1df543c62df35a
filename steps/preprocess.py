"""Preprocessing variants: colour channel, binarisation, contrast, denoising, rectification.

Each variant is a recipe — optional rectification, then a channel, then at most one enhancement —
so that rectification combines with the others (`preprocess/rectify:red`, `rectify:adaptive`, …).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from steps.base import Variant
from steps.errors import StepError
from steps.geometry import find_quad, warp_flat
from steps.records import ImageRecord

CHANNELS = ("rgb", "gray", "red", "green", "blue")
METHODS = ("none", "otsu", "adaptive", "clahe", "denoise")


@dataclass(frozen=True)
class PreprocessParams:
    channel: str = "gray"  # rgb | gray | red | green | blue
    method: str = "none"  # none | otsu | adaptive | clahe | denoise
    rectify: bool = False
    adaptive_block: int = 31  # adaptive threshold: neighbourhood (odd, px)
    adaptive_c: int = 12  # adaptive threshold: offset below the local mean
    clahe_clip: float = 2.0
    clahe_tile: int = 8
    denoise_h: float = 9.0  # non-local means filter strength

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise StepError(f"preprocess channel {self.channel!r} is not one of {', '.join(CHANNELS)}")
        if self.method not in METHODS:
            raise StepError(f"preprocess method {self.method!r} is not one of {', '.join(METHODS)}")
        if self.method != "none" and self.channel == "rgb":
            raise StepError(f"preprocess method {self.method!r} needs a single channel, not rgb")
        if self.adaptive_block < 3 or self.adaptive_block % 2 == 0:
            raise StepError(f"adaptive_block must be odd and >= 3, got {self.adaptive_block}")


def select_channel(image: np.ndarray, channel: str) -> np.ndarray:
    """An RGB image's channel ('gray' = luma); single-channel input passes through."""
    if image.ndim == 2 or channel == "rgb":
        return image
    if channel == "gray":
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return np.ascontiguousarray(image[..., {"red": 0, "green": 1, "blue": 2}[channel]])


def enhance(gray: np.ndarray, params: PreprocessParams) -> np.ndarray:
    if params.method == "otsu":
        return cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)[1]
    if params.method == "adaptive":
        return cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY,
                                     params.adaptive_block, params.adaptive_c)
    if params.method == "clahe":
        clahe = cv2.createCLAHE(clipLimit=params.clahe_clip, tileGridSize=(params.clahe_tile, params.clahe_tile))
        return clahe.apply(gray)
    if params.method == "denoise":
        return cv2.fastNlMeansDenoising(gray, None, h=params.denoise_h, templateWindowSize=7, searchWindowSize=15)
    return gray


class Recipe(Variant[ImageRecord, ImageRecord, PreprocessParams]):
    """[rectify] → channel → [otsu | adaptive | clahe | denoise]."""

    step = "preprocess"
    spread = True  # stateless OpenCV calls that release the GIL: a batch's documents run on parallel threads

    def __init__(self, model: str, version: str, params: PreprocessParams, description: str) -> None:
        super().__init__(version, params, description)
        self.model = model  # type: ignore[misc] — one class serves several preprocessing models

    def set_threads(self, n: int) -> None:
        super().set_threads(n)
        cv2.setNumThreads(1)  # parallelism comes from spreading documents over threads, not inside OpenCV

    def process(self, item: ImageRecord) -> ImageRecord:
        p: PreprocessParams = self.params
        image, applied = item.image, list(item.applied)
        if image.size == 0:
            raise StepError(f"document {item.doc_id!r}: empty image")
        if p.rectify:
            image = warp_flat(image, find_quad(image))
            applied.append("rectify")
        image = select_channel(image, p.channel)
        applied.append(p.channel)
        if p.method != "none":
            image = enhance(image, p)
            applied.append(p.method)
        return ImageRecord(item.doc_id, image, tuple(applied))


def variants() -> list[Recipe]:
    """The preprocessing catalog."""
    out = [
        Recipe("channel", "rgb", PreprocessParams(channel="rgb"), "colour image unchanged (for colour OCR models)"),
        Recipe("channel", "gray", PreprocessParams(channel="gray"), "luma (ITU-R BT.601)"),
        Recipe("channel", "red", PreprocessParams(channel="red"), "red channel: erases red/pink security ink"),
        Recipe("channel", "green", PreprocessParams(channel="green"), "green channel"),
        Recipe("channel", "blue", PreprocessParams(channel="blue"), "blue channel: erases blue/violet security ink"),
        Recipe("otsu", "gray", PreprocessParams(channel="gray", method="otsu"), "global Otsu threshold on luma"),
        Recipe("otsu", "red", PreprocessParams(channel="red", method="otsu"), "global Otsu threshold on the red channel"),
        Recipe("adaptive", "gray", PreprocessParams(channel="gray", method="adaptive"),
               "local (Gaussian) adaptive threshold on luma: copes with uneven light"),
        Recipe("adaptive", "red", PreprocessParams(channel="red", method="adaptive"),
               "local adaptive threshold on the red channel"),
        Recipe("clahe", "gray", PreprocessParams(channel="gray", method="clahe"),
               "contrast-limited adaptive histogram equalisation on luma: lifts dark captures"),
        Recipe("denoise", "gray", PreprocessParams(channel="gray", method="denoise"),
               "non-local-means denoising on luma: for noisy low-light captures"),
    ]
    for inner in ("gray", "red", "clahe", "adaptive", "rgb"):
        channel = "rgb" if inner == "rgb" else ("red" if inner == "red" else "gray")
        method = inner if inner in METHODS else "none"
        out.append(Recipe("rectify", inner, PreprocessParams(channel=channel, method=method, rectify=True),
                          f"find the document's quad, warp it flat, then {inner}"))
    return out
