"""Capture distributions: named, parameterised presets (configs/distributions.yaml) and their effects.

`capture(card, preset, rng)` turns a flat rendered document into what a scanner or a phone would
deliver, and returns where the document's four corners ended up (top-left, top-right,
bottom-right, bottom-left, in output pixels).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import cv2
import numpy as np

from common.config import NON_EMPTY, Check, PositiveFloat, PositiveInt, config_error, load, read_yaml
from corpus.errors import CorpusError

DEFAULT_DISTRIBUTIONS = Path(__file__).resolve().parent.parent / "configs" / "distributions.yaml"
STATISTICS = ("brightness", "contrast", "sharpness", "skew", "highlights", "color_cast")
LOW_HIGH = Check(lambda span: span[0] <= span[1], "[low, high] with low ≤ high")
Range = Annotated[tuple[float, float], "a [low, high] list", LOW_HIGH]
IntRange = Annotated[tuple[int, int], "a [low, high] list of integers", LOW_HIGH]
Statistic = Literal[STATISTICS]


@dataclass(frozen=True)
class Preset:
    """One capture distribution. Unset steps are skipped."""

    name: str
    description: str = ""
    place: Literal["scan", "phone"] | None = None
    margin: Range | None = None
    frame: tuple[PositiveInt, PositiveInt] | None = None  # width, height
    scale: Range | None = None
    rotate_deg: Range | None = None
    perspective: Range | None = None
    gain: Range | None = None
    gamma: Range | None = None
    light_gradient: Range | None = None
    glare_count: IntRange | None = None
    glare_radius: Range | None = None
    glare_strength: Range | None = None
    tint: Annotated[tuple[Literal["warm", "cool"], ...], NON_EMPTY] | None = None
    tint_strength: Range | None = None
    blur_sigma: Range | None = None
    noise_sigma: Range | None = None
    jpeg_quality: IntRange = (92, 92)
    mixture: dict[str, PositiveFloat] | None = None  # plain preset -> weight
    expect: dict[Statistic, Literal["higher", "lower"]] | None = None

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


@dataclass(frozen=True)
class DistributionsFile:
    """configs/distributions.yaml: each preset as a mapping of Preset's fields (its name is its key)."""

    presets: dict[str, dict[str, Any]]
    version: Literal[1] = 1


@lru_cache(maxsize=8)
def load_presets(path: Path = DEFAULT_DISTRIBUTIONS) -> dict[str, Preset]:
    """All presets of a distributions file, typed and checked (mixtures must name existing plain presets);
    a ConfigError names the file and the key."""
    data = load(DistributionsFile, read_yaml(path), path)
    presets = {name: load(Preset, raw, path, f"presets.{name}", name=name) for name, raw in data.presets.items()}
    for preset in presets.values():
        for part in preset.mixture or {}:
            if part not in presets or presets[part].mixture:
                raise config_error(path, f"presets.{preset.name}.mixture",
                                   f"names {part!r}, not a plain preset; plain presets: "
                                   f"{', '.join(n for n, p in presets.items() if not p.mixture)}")
    return presets


def get_preset(name: str, path: Path = DEFAULT_DISTRIBUTIONS) -> Preset:
    presets = load_presets(path)
    if name not in presets:
        raise CorpusError(f"unknown distribution {name!r}; valid: {', '.join(presets)}")
    return presets[name]


def _uniform(rng: np.random.Generator, span: Range) -> float:
    return float(rng.uniform(span[0], span[1])) if span[0] != span[1] else float(span[0])


def _card_mask(height: int, width: int, radius: int) -> np.ndarray:
    mask = np.full((height, width), 255, np.uint8)
    if radius > 0:
        mask[:radius, :radius] = 0
        mask[:radius, -radius:] = 0
        mask[-radius:, :radius] = 0
        mask[-radius:, -radius:] = 0
        for cx, cy in ((radius, radius), (width - radius - 1, radius), (radius, height - radius - 1),
                       (width - radius - 1, height - radius - 1)):
            cv2.circle(mask, (cx, cy), radius, 255, -1, lineType=cv2.LINE_AA)
    return mask


def _table_background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A smooth textured surface (desk, cloth) of one random colour with luminance texture and grain."""
    base = rng.uniform(35, 190, 3).astype(np.float32)
    coarse = rng.normal(0, 14, (height // 48 + 2, width // 48 + 2)).astype(np.float32)
    texture = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)[..., None]
    grain = rng.normal(0, 4, (height // 2, width // 2, 1)).astype(np.float32)
    grain = cv2.resize(grain, (width, height), interpolation=cv2.INTER_LINEAR)[..., None]
    return np.clip(base * (1 + (texture + grain) / 100.0), 0, 255).astype(np.float32)


def _rotate(points: np.ndarray, degrees: float, centre: np.ndarray) -> np.ndarray:
    rad = np.deg2rad(degrees)
    rot = np.array([[np.cos(rad), -np.sin(rad)], [np.sin(rad), np.cos(rad)]])
    return (points - centre) @ rot.T + centre


def _place(card: np.ndarray, preset: Preset, rng: np.random.Generator, applied: dict) -> tuple[np.ndarray, np.ndarray]:
    """Warp the card onto a scanner bed or a camera frame; returns the image (float32) and its corners."""
    h, w = card.shape[:2]
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    angle = _uniform(rng, preset.rotate_deg) if preset.rotate_deg else 0.0
    applied["rotate_deg"] = round(angle, 3)
    if preset.place == "scan":
        margin = _uniform(rng, preset.margin or (0.05, 0.05))
        pad = int(round(margin * w))
        out_w, out_h = w + 2 * pad, h + 2 * pad
        dst = _rotate(src + pad, angle, np.array([out_w / 2, out_h / 2]))
        bed = float(rng.uniform(236, 248))
        canvas = np.full((out_h, out_w, 3), bed, np.float32)
        applied["margin"] = round(margin, 4)
    else:
        out_w, out_h = preset.frame or (1280, 960)
        scale = _uniform(rng, preset.scale or (0.8, 0.8)) * out_w / w
        centre = np.array([out_w / 2, out_h / 2]) + rng.uniform(-0.05, 0.05, 2) * [out_w, out_h]
        dst = (src - [w / 2, h / 2]) * scale + centre
        dst = _rotate(dst, angle, centre)
        jitter = _uniform(rng, preset.perspective or (0.0, 0.0))
        dst = dst + rng.uniform(-jitter, jitter, (4, 2)) * [w * scale, h * scale]
        # Keep the whole document in frame (2% margin): shrink and shift when the draw overshoots.
        frame_size, margin = np.array([out_w, out_h], float), 0.02 * out_w
        low, high = dst.min(axis=0), dst.max(axis=0)
        fit = min(1.0, *((frame_size - 2 * margin) / (high - low)))
        half = (high - low) * fit / 2
        middle = np.clip((low + high) / 2, half + margin, frame_size - half - margin)
        dst = (dst - (low + high) / 2) * fit + middle
        scale *= fit
        canvas = _table_background(rng, out_w, out_h)
        applied["scale"] = round(float(scale), 4)
        applied["perspective"] = round(jitter, 4)
    dst = dst.astype(np.float32)
    homography = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(card.astype(np.float32), homography, (out_w, out_h), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(_card_mask(h, w, radius=int(0.035 * w)), homography, (out_w, out_h))
    alpha = (mask.astype(np.float32) / 255.0)[..., None]
    return warped * alpha + canvas * (1 - alpha), dst


def _light(img: np.ndarray, preset: Preset, rng: np.random.Generator, applied: dict) -> np.ndarray:
    if preset.gain:
        gain = _uniform(rng, preset.gain)
        gamma = _uniform(rng, preset.gamma) if preset.gamma else 1.0
        img = 255.0 * np.power(np.clip(img / 255.0, 0, 1), gamma) * gain
        applied.update(gain=round(gain, 4), gamma=round(gamma, 4))
    if preset.light_gradient:
        low = _uniform(rng, preset.light_gradient)
        h, w = img.shape[:2]
        direction = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        proj = (xx - w / 2) * np.cos(direction) + (yy - h / 2) * np.sin(direction)
        proj = (proj - proj.min()) / max(1e-6, float(proj.max() - proj.min()))
        img = img * (low + (1.0 - low) * proj)[..., None]
        applied["light_gradient"] = round(low, 4)
    return img


def _glare(img: np.ndarray, corners: np.ndarray, preset: Preset, rng: np.random.Generator, applied: dict) -> np.ndarray:
    count = int(round(_uniform(rng, preset.glare_count)))
    h, w = img.shape[:2]
    card_w = float(np.linalg.norm(corners[1] - corners[0]))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    spots = []
    for _ in range(count):
        u, v = rng.uniform(0.15, 0.85, 2)
        top = corners[0] + (corners[1] - corners[0]) * u
        bottom = corners[3] + (corners[2] - corners[3]) * u
        cx, cy = top + (bottom - top) * v
        radius = _uniform(rng, preset.glare_radius) * card_w
        strength = _uniform(rng, preset.glare_strength or (220.0, 220.0))
        stretch = rng.uniform(0.5, 1.0)
        dist2 = ((xx - cx) / radius) ** 2 + ((yy - cy) / (radius * stretch)) ** 2
        img = img + (strength * np.exp(-dist2 * 2.0))[..., None]
        spots.append([round(float(cx), 1), round(float(cy), 1), round(float(radius), 1), round(strength, 1)])
    applied["glare"] = spots
    return img


def _tint(img: np.ndarray, preset: Preset, rng: np.random.Generator, applied: dict) -> np.ndarray:
    kind = str(preset.tint[int(rng.integers(len(preset.tint)))])
    strength = _uniform(rng, preset.tint_strength or (0.2, 0.2))
    gains = np.array([1 + strength, 1.0, 1 - strength]) if kind == "warm" else np.array([1 - strength, 1.0, 1 + strength])
    applied.update(tint=kind, tint_strength=round(strength, 4))
    return img * gains.astype(np.float32)


def capture(card: np.ndarray, preset: Preset, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Apply a (non-mixture) preset to a flat document. Returns (RGB uint8 image, corners (4,2), applied params)."""
    if preset.mixture:
        raise ValueError("capture() takes a plain preset; pick a mixture component first")
    applied: dict[str, Any] = {"preset": preset.name}
    h, w = card.shape[:2]
    if preset.place:
        img, corners = _place(card, preset, rng, applied)
    else:
        img, corners = card.astype(np.float32), np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    img = _light(img, preset, rng, applied)
    if preset.glare_count:
        img = _glare(img, corners, preset, rng, applied)
    if preset.tint:
        img = _tint(img, preset, rng, applied)
    if preset.blur_sigma:
        sigma = _uniform(rng, preset.blur_sigma)
        img = cv2.GaussianBlur(img, (0, 0), sigma)
        applied["blur_sigma"] = round(sigma, 4)
    if preset.noise_sigma:
        sigma = _uniform(rng, preset.noise_sigma)
        img = img + rng.standard_normal(img.shape, dtype=np.float32) * np.float32(sigma)
        applied["noise_sigma"] = round(sigma, 4)
    applied["jpeg_quality"] = int(round(_uniform(rng, preset.jpeg_quality)))
    out = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    return out, corners.astype(np.float64), applied


def pick_component(preset: Preset, rng: np.random.Generator) -> str:
    """For a mixture preset, the component drawn for one document."""
    names = list(preset.mixture or {})
    weights = np.array([preset.mixture[n] for n in names], float)  # type: ignore[index]
    return names[int(rng.choice(len(names), p=weights / weights.sum()))]
