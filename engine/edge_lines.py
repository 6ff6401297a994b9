"""Lines carried across a hole: known edges that enter it from two sides along one course, joined.

The edge models continue a known edge a short way into the hole and then fade: trained with per-pixel losses,
they are never sure enough of one line to draw it across (docs/quality.md). A horizon behind a removed ship or a
branch behind a bird is the common case a person expects to see continued, and it needs no learning:

1. *Entries*: each known edge (8-connected, within ``REACH`` px of the hole) that touches the hole's border and
   runs into it: its pixels are nearly collinear (principal axis), and a step along that axis from the edge's
   innermost pixel lands in the hole.
2. *Pairs*: two entries whose axes both point along the chord between them (each within ``MAX_ANGLE`` degrees),
   whose chord runs mostly through the hole, and whose sides match: the grey level left and right of the line
   where it enters equals that where it leaves (within ``MAX_SIDE_DIFFERENCE``), so a dark roof edge is not
   joined to a bright one. The best pairs (smallest angles and side differences) are taken greedily, each entry
   once, skipping a pair that crosses one already taken or starts beside one (one thick edge, one line).
3. *Curves*: a cubic Hermite curve from one entry to the other, with the entries' directions as tangents, so
   collinear edges give a straight line and slightly bent ones a smooth arc. Only its pixels inside the hole
   are returned.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

REACH = 12  # px outside the hole over which an edge's course is measured
BORDER_GAP = 1.5  # px next to the hole whose edges are ignored (the hole's outline, see find_entries)
MIN_PIXELS = 9  # an edge shorter than this in that band gives no direction (texture makes short bits)
MAX_SPREAD = 0.25  # the edge's width across its axis over its length along it (sqrt of the eigenvalue ratio)
MAX_ANGLE = 10.0  # degrees between an entry's axis and the chord to its partner
MIN_INSIDE = 0.6  # share of the chord's pixels that lie in the hole
SIDE_OFFSET = 3  # px either side of the line where its sides' grey levels are read
MAX_SIDE_DIFFERENCE = 25.0  # grey levels (0-255): the sides must match on entering and leaving
SAME_PLACE = 5.0  # px: two entries closer than this enter at one place
TANGENT_SCALE = 0.5  # the curve's end tangents, in chord lengths
MAX_ENTRIES = 200  # the most entries considered (the longest), so a cluttered border stays cheap


@dataclass(frozen=True)
class Entry:
    """A known edge entering the hole: where (y, x), which way (unit vector into the hole), its length in the band
    and the grey levels left and right of it (looking into the hole)."""

    point: np.ndarray
    direction: np.ndarray
    length: int
    left: float
    right: float


def _side_levels(gray: np.ndarray, usable: np.ndarray, point: np.ndarray, direction: np.ndarray,
                 ) -> tuple[float, float] | None:
    """Mean grey level a few px left and right of ``point`` (normal to ``direction``), over usable pixels."""
    normal = np.array([-direction[1], direction[0]])  # (y, x): left of the direction of travel
    values = []
    for sign in (1.0, -1.0):
        samples = []
        for back in (0.0, 2.0, 4.0):  # a little way back along the edge, where the pixels are known
            y, x = np.rint(point - back * direction + sign * SIDE_OFFSET * normal).astype(int)
            if 0 <= y < gray.shape[0] and 0 <= x < gray.shape[1] and usable[y, x]:
                samples.append(float(gray[y, x]))
        if not samples:
            return None
        values.append(float(np.mean(samples)))
    return values[0], values[1]


def _straightest(points: np.ndarray, inner: np.ndarray) -> tuple[np.ndarray, np.ndarray, int] | None:
    """(centre, unit axis, pixel count) of the straighter of two stretches of an edge: all its pixels in the
    band (robust for a long straight line), or those within ``REACH`` px of ``inner`` (an edge that meets a
    junction farther out); None when neither is straight and long enough."""
    best = None
    for stretch in (points, points[np.hypot(*(points - inner).T) <= REACH]):
        if len(stretch) < MIN_PIXELS:
            continue
        centre = stretch.mean(axis=0)
        values, vectors = np.linalg.eigh(np.cov((stretch - centre).T))
        if values[1] <= 0:
            continue
        spread = float(np.sqrt(max(values[0], 0.0) / values[1]))
        if spread <= MAX_SPREAD and (best is None or spread < best[0]):
            best = (spread, centre, vectors[:, 1], len(stretch))
    return None if best is None else best[1:]


def find_entries(known: np.ndarray, hole: np.ndarray, gray: np.ndarray) -> list[Entry]:
    """The known edges that run into ``hole`` (see the module docstring, step 1)."""
    distance = cv2.distanceTransform((~hole).astype(np.uint8), cv2.DIST_L2, 3)  # px to the nearest hole pixel
    # The band's first pixel is left out: there Canny often traces the hole's own outline (known_edges fills
    # the hole with one grey level), which would merge every entering edge into one ring.
    band = (distance > BORDER_GAP) & (distance <= REACH)
    edges = known.astype(bool) & band
    if not edges.any():
        return []
    count, labels = cv2.connectedComponents(edges.astype(np.uint8), connectivity=8)
    usable = ~hole & ~known.astype(bool)
    h, w = hole.shape
    entries = []
    for label in range(1, count):
        ys, xs = np.nonzero(labels == label)
        if ys.size < MIN_PIXELS:
            continue
        inner = int(np.argmin(distance[ys, xs]))
        if distance[ys[inner], xs[inner]] > BORDER_GAP + 1.5:
            continue  # it never reaches the hole's border
        points = np.stack([ys, xs], axis=1).astype(np.float64)
        point = points[inner]
        course = _straightest(points, point)
        if course is None:
            continue
        centre, direction, length = course
        if np.dot(point - centre, direction) < 0:
            direction = -direction
        ahead = np.rint(point + 3.0 * direction).astype(int)
        if not (0 <= ahead[0] < h and 0 <= ahead[1] < w and hole[ahead[0], ahead[1]]):
            continue  # it runs along the border, not into the hole
        sides = _side_levels(gray, usable, point, direction)
        if sides is None:
            continue
        entries.append(Entry(point, direction, length, *sides))
    entries.sort(key=lambda e: -e.length)
    return entries[:MAX_ENTRIES]


def _chord_inside(hole: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    steps = max(2, int(np.ceil(np.abs(b - a).max())) + 1)
    t = np.linspace(0.0, 1.0, steps)[:, None]
    pixels = np.rint(a + t * (b - a)).astype(int)
    return float(hole[pixels[:, 0], pixels[:, 1]].mean())


def pair_entries(entries: list[Entry], hole: np.ndarray) -> list[tuple[Entry, Entry]]:
    """The entries joined across the hole (step 2): best first, each entry in one pair at most."""
    limit = np.cos(np.radians(MAX_ANGLE))
    candidates = []
    for i, a in enumerate(entries):
        for j in range(i + 1, len(entries)):
            b = entries[j]
            chord = b.point - a.point
            length = float(np.hypot(*chord))
            if length < 3.0:
                continue
            unit = chord / length
            cos_a, cos_b = float(np.dot(a.direction, unit)), float(np.dot(b.direction, -unit))
            if cos_a < limit or cos_b < limit:
                continue
            # Looking along the travel from a to b, b's left is the right of b's own direction (into the hole).
            sides = max(abs(a.left - b.right), abs(a.right - b.left))
            if sides > MAX_SIDE_DIFFERENCE or _chord_inside(hole, a.point, b.point) < MIN_INSIDE:
                continue
            angle = np.degrees(np.arccos(min(1.0, cos_a))) + np.degrees(np.arccos(min(1.0, cos_b)))
            candidates.append((angle / MAX_ANGLE + sides / MAX_SIDE_DIFFERENCE, i, j))
    used: set[int] = set()
    pairs: list[tuple[Entry, Entry]] = []
    for _, i, j in sorted(candidates):
        a, b = entries[i], entries[j]
        if i in used or j in used or any(_conflict(a, b, c, d) for c, d in pairs):
            continue
        used.update((i, j))
        pairs.append((a, b))
    return pairs


def _crosses(p1: np.ndarray, p2: np.ndarray, q1: np.ndarray, q2: np.ndarray) -> bool:
    """Whether segments p1-p2 and q1-q2 cross (strictly)."""
    def side(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
        return float((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))

    return side(p1, p2, q1) * side(p1, p2, q2) < 0 and side(q1, q2, p1) * side(q1, q2, p2) < 0


def _conflict(a: Entry, b: Entry, c: Entry, d: Entry) -> bool:
    """Whether the pair (a, b) contradicts the pair (c, d) already taken: the chords cross, or one of its ends
    lies beside one of theirs (the two sides of one thick edge entering at one place: one line, not two)."""
    close = min(float(np.hypot(*(e - f))) for e in (a.point, b.point) for f in (c.point, d.point))
    return close < SAME_PLACE or _crosses(a.point, b.point, c.point, d.point)


def hermite_curve(a: Entry, b: Entry) -> np.ndarray:
    """Points (y, x) of the cubic Hermite curve from ``a`` to ``b`` leaving along ``a``'s direction and arriving
    against ``b``'s (step 3), about two per pixel of length."""
    chord = b.point - a.point
    length = float(np.hypot(*chord))
    t = np.linspace(0.0, 1.0, max(2, int(2 * length) + 1))[:, None]
    h00, h10, h01, h11 = 2 * t**3 - 3 * t**2 + 1, t**3 - 2 * t**2 + t, -2 * t**3 + 3 * t**2, t**3 - t**2
    # Tangents of half the chord's length: a few degrees of error in an entry's direction bend the curve by
    # a few px, not by a tenth of its length (a sagging horizon at the full length).
    tangent = TANGENT_SCALE * length
    return h00 * a.point + h10 * tangent * a.direction + h01 * b.point + h11 * tangent * (-b.direction)


def connect_lines(known: np.ndarray, hole: np.ndarray, gray: np.ndarray) -> np.ndarray:
    """Bool map of the curves joining known edges across ``hole`` (inside the hole only); see the module
    docstring. ``known``: the photo's edges outside the hole; ``gray``: the photo as uint8 grey levels."""
    hole = hole.astype(bool)
    out = np.zeros(hole.shape, np.uint8)
    if not hole.any() or hole.all():
        return out.astype(bool)
    for a, b in pair_entries(find_entries(known, hole, gray), hole):
        points = np.rint(hermite_curve(a, b)[:, ::-1]).astype(np.int32)  # (x, y) for OpenCV
        cv2.polylines(out, [points.reshape(-1, 1, 2)], False, 1, thickness=1, lineType=cv2.LINE_8)
    return (out > 0) & hole
