"""Edge maps as EdgeConnect uses them: Canny on a Gaussian-blurred grayscale image.

OpenCV's Canny has no pre-blur of its own, unlike skimage's (which the paper used with sigma 2),
so the blur is applied first. Thresholds follow skimage's defaults (10% and 20% of the dtype range, on the
L2 Sobel gradient magnitude of the blurred image), expressed on the uint8 scale.
"""

from __future__ import annotations

import cv2
import numpy as np

DEFAULT_SIGMA = 2.0
# Edge probability (the edge model's sigmoid) above which a completed edge counts as an edge: in the edge map the
# engine shows and returns, and in the edge precision and recall of the trainer's validation.
EDGE_THRESHOLD = 0.5
# The trainer's validation also scores these thresholds (a precision/recall curve); an edge model's card keeps
# the one with the best F-measure as its ``edge_threshold``, which Predict Edges then uses. A model trained on
# supervised losses is rarely sure of a line inside a hole, so its probabilities there stay below 0.5.
EDGE_CURVE_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5)


def curve_keys(threshold: float) -> tuple[str, str]:
    """The validation table's (precision, recall) keys at ``threshold``."""
    return f"edge_precision@{threshold:g}", f"edge_recall@{threshold:g}"


def best_edge_threshold(row: dict) -> tuple[float, float, float] | None:
    """(threshold, precision, recall) with the best F-measure among the curve points of a validation ``row``
    (the plain ``edge_precision`` / ``edge_recall`` are the point at ``EDGE_THRESHOLD``); None without any."""
    points = []
    for threshold in EDGE_CURVE_THRESHOLDS:
        p_key, r_key = curve_keys(threshold)
        if threshold == EDGE_THRESHOLD and p_key not in row:
            p_key, r_key = "edge_precision", "edge_recall"
        precision, recall = row.get(p_key), row.get(r_key)
        if isinstance(precision, int | float) and isinstance(recall, int | float):
            points.append((threshold, float(precision), float(recall)))
    if not points:
        return None
    return max(points, key=lambda t: (2 * t[1] * t[2] / (t[1] + t[2]) if t[1] + t[2] > 0 else 0.0, t[0] == 0.5))


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 H x W x 3 to grayscale uint8 H x W (ITU-R 601 luma, as OpenCV)."""
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def canny_edges(gray: np.ndarray, sigma: float = DEFAULT_SIGMA, low: float = 25.5, high: float = 51.0) -> np.ndarray:
    """Binary edge map (bool H x W) of a uint8 grayscale image, after a Gaussian blur of ``sigma``.

    ``low`` and ``high`` are hysteresis thresholds on the L2 gradient magnitude of the blurred image
    (uint8 scale). ``sigma <= 0`` skips the blur.
    """
    if gray.ndim != 2:
        raise ValueError(f"canny_edges wants a 2-D grayscale image, got shape {gray.shape}")
    image = np.ascontiguousarray(gray, dtype=np.uint8)
    if sigma > 0:
        image = cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)
    # OpenCV's 3x3 Sobel has the same scale as the ndimage Sobel that skimage thresholds.
    return cv2.Canny(image, low, high, apertureSize=3, L2gradient=True) > 0


def known_edges(rgb: np.ndarray, mask: np.ndarray, sigma: float = DEFAULT_SIGMA) -> np.ndarray:
    """Edges of the known area only (bool): the hole is excluded so the fill's input never leaks in.

    The hole is first filled with a neutral value (the mean of the known pixels) so no spurious
    contour along the hole boundary survives outside it, then edges inside the hole are removed.
    """
    gray = to_gray(rgb)
    hole = mask.astype(bool)
    if hole.any() and (~hole).any():
        gray = gray.copy()
        gray[hole] = round(float(gray[~hole].mean()))
    edges = canny_edges(gray, sigma)
    edges[hole] = False
    return edges
