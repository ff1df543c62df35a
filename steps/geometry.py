"""Finding a document's four corners in a photo or scan, and warping it flat."""

from __future__ import annotations

import cv2
import numpy as np

WORK_SIDE = 640  # the quad search runs on a copy of this size (longer side)
ID1_ASPECT, TD3_ASPECT = 85.6 / 54.0, 125.0 / 88.0
ID1_SIZE, TD3_SIZE = (1000, 630), (1250, 880)


def order_corners(points: np.ndarray) -> np.ndarray:
    """Four points ordered top-left, top-right, bottom-right, bottom-left (for rotations below 45°)."""
    pts = np.asarray(points, np.float64).reshape(4, 2)
    s, d = pts.sum(axis=1), pts[:, 1] - pts[:, 0]
    return np.array([pts[np.argmin(s)], pts[np.argmin(d)], pts[np.argmax(s)], pts[np.argmax(d)]])


def find_quad(image: np.ndarray, min_area: float = 0.15, frame_margin: float = 0.015) -> np.ndarray:
    """The document's corners (TL, TR, BR, BL) in image pixels.

    Edges (Canny on a blurred, downscaled copy) are closed by dilation; the largest external contour
    covering at least `min_area` of the image is approximated by a quadrilateral (its convex hull,
    simplified; the minimum-area rectangle when simplification does not give four corners). When
    that outline spans the image from border to opposite border (within `frame_margin`), it is a
    band of the document's own layout, not its edge: the document fills the image (a flat scan)
    and the image frame is returned — as it is when nothing card-sized is found.
    """
    h, w = image.shape[:2]
    frame = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64)
    quad = _outline_quad(image, min_area)
    if quad is None:
        return frame
    low, high = quad.min(axis=0), quad.max(axis=0)
    left, top = low / [w, h]
    right, bottom = 1 - high / [w, h]
    spans = (left < frame_margin and right < frame_margin) or (top < frame_margin and bottom < frame_margin)
    return frame if spans else quad


def _outline_quad(image: np.ndarray, min_area: float) -> np.ndarray | None:
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    h, w = gray.shape
    scale = WORK_SIDE / max(h, w)
    small = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    blurred = cv2.GaussianBlur(small, (5, 5), 0)
    edges = cv2.Canny(blurred, 15, 45)
    edges = cv2.dilate(edges, np.ones((3, 3), np.uint8), iterations=2)
    contours, _ = cv2.findContours(edges, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    area_total = small.shape[0] * small.shape[1]
    for contour in sorted(contours, key=cv2.contourArea, reverse=True)[:5]:
        hull = cv2.convexHull(contour)
        if cv2.contourArea(hull) < min_area * area_total:
            break
        quad = None
        for eps in (0.02, 0.03, 0.05):
            approx = cv2.approxPolyDP(hull, eps * cv2.arcLength(hull, True), True)
            if len(approx) == 4:
                quad = approx.reshape(4, 2).astype(np.float64)
                break
        if quad is None:
            quad = cv2.boxPoints(cv2.minAreaRect(hull)).astype(np.float64)
        # Dilation grew the outline by ~2 px at the working scale: pull the corners back towards the centre.
        centre = quad.mean(axis=0)
        quad = centre + (quad - centre) * (1 - 2.0 / max(small.shape))
        return order_corners(quad / scale)
    return None


def warp_flat(image: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """Warp the quad to a flat document of the nearest standard size (ID-1 card or TD3 page)."""
    tl, tr, br, bl = quad
    width = (np.linalg.norm(tr - tl) + np.linalg.norm(br - bl)) / 2
    height = (np.linalg.norm(bl - tl) + np.linalg.norm(br - tr)) / 2
    aspect = width / max(height, 1.0)
    size = ID1_SIZE if abs(aspect - ID1_ASPECT) < abs(aspect - TD3_ASPECT) else TD3_SIZE
    dst = np.array([[0, 0], [size[0], 0], [size[0], size[1]], [0, size[1]]], np.float32)
    matrix = cv2.getPerspectiveTransform(quad.astype(np.float32), dst)
    return cv2.warpPerspective(image, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def corner_error(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean distance between found and true corners, as a fraction of the true quad's diagonal."""
    truth = np.asarray(truth, float)
    diagonal = float(np.linalg.norm(truth[2] - truth[0]))
    return float(np.mean(np.linalg.norm(np.asarray(found, float) - truth, axis=1)) / diagonal)
