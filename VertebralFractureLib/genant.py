"""Genant semi-quantitative measures from six keypoints per vertebral body.

Six keypoints per vertebra, in one fixed order used everywhere in the project (and identical to
the public ``segments`` annotation format, shape 3 x 2 x D):

====  ======================  ================
index name                    segment
====  ======================  ================
0     anterior superior       anterior  (h_a)
1     anterior inferior       anterior  (h_a)
2     middle superior         middle    (h_m)
3     middle inferior         middle    (h_m)
4     posterior superior      posterior (h_p)
5     posterior inferior      posterior (h_p)
====  ======================  ================

"superior" is the point on the upper (cranial) endplate, "inferior" on the lower one. Points are
in LPS millimetres (CT) or pixel columns/rows times spacing (radiographs); D is 3 or 2.

Measures (Pisov et al., "Keypoints localization for joint vertebra detection and fracture
severity quantification", MICCAI 2020 (Pisov et al. 2020), eq. 1; Genant et al. 1993):

* heights h_a, h_m, h_p: lengths of the three segments;
* G = min(h) / max(h) (Pisov et al. 2020, eq. 1);
* height reduction r = 1 - G; Genant grade 0 if r < 20 %, 1 if 20 % <= r < 25 %,
  2 if 25 % <= r <= 40 %, 3 if r > 40 % (Pisov et al. 2020, Table 2 uses G <= 0.8 for "at least mild" and
  G <= 0.74/0.75 for "at least moderate");
* morphological type from the reduced height: anterior -> wedge, middle -> biconcave,
  posterior -> crush;
* neighbour-relative reduction: 1 - max(h) / expected, the expected height being interpolated
  (by level position) between the maximal heights of the nearest cranial and caudal neighbours
  within two levels. A crush fracture lowers all three heights, keeps G near 1, and shows only here;
  when this reduction reaches a higher grade than G does, the vertebra is graded by it with type
  ``crush``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np

from .levels import LEVEL_NAMES, normalise_level

KEYPOINT_NAMES = (
    "anterior superior",
    "anterior inferior",
    "middle superior",
    "middle inferior",
    "posterior superior",
    "posterior inferior",
)
HEIGHT_NAMES = ("anterior", "middle", "posterior")
DEFORMITY_TYPES = ("none", "wedge", "biconcave", "crush")

#: Lower bounds of the height reduction for grades 1, 2, 3 (Genant 1993).
GRADE_THRESHOLDS = (0.20, 0.25, 0.40)
#: Heights below this are treated as degenerate (coincident points).
MIN_HEIGHT_MM = 1e-3
#: Neighbours further than this many level positions away are not used.
MAX_NEIGHBOUR_GAP = 2


class GenantError(ValueError):
    """Keypoints from which no Genant measure can be computed; the message names the problem."""


@dataclass(frozen=True)
class GenantMeasure:
    """Genant measures of one vertebral body.

    Attributes:
        heights: h_a, h_m, h_p in mm (or the radiograph's unit).
        G: min(h) / max(h), Pisov et al. 2020, eq. 1.
        grade: Genant grade 0-3 (combined with the neighbour reduction when given).
        type: ``none``, ``wedge``, ``biconcave`` or ``crush``.
        neighbour_reduction: 1 - max(h) / expected height from the neighbours, or None.

    """

    heights: tuple
    G: float
    grade: int
    type: str
    neighbour_reduction: Optional[float] = None

    @property
    def reduction(self) -> float:
        """Height reduction 1 - G."""
        return 1.0 - self.G


def as_segments(keypoints: np.ndarray | Sequence) -> np.ndarray:
    """Validate six keypoints and return them as segments, shape (3, 2, D).

    Accepts shape (6, D) in the project's order or (3, 2, D) ``segments``; D is 2 or 3.

    Raises:
        GenantError: for a wrong number of points, a wrong dimension or non-finite values.

    """
    try:
        points = np.asarray(keypoints, dtype=float)
    except (TypeError, ValueError) as error:
        raise GenantError(f"keypoints are not numeric: {error}") from None
    if points.ndim == 2 and points.shape[0] == 6:
        points = points.reshape(3, 2, points.shape[1])
    if points.ndim != 3 or points.shape[:2] != (3, 2) or points.shape[2] not in (2, 3):
        raise GenantError(
            f"expected 6 keypoints of 2 or 3 coordinates (shape 6 x D or 3 x 2 x D), "
            f"got shape {tuple(np.shape(keypoints))}"
        )
    if not np.all(np.isfinite(points)):
        bad = [KEYPOINT_NAMES[i] for i in range(6) if not np.all(np.isfinite(points.reshape(6, -1)[i]))]
        raise GenantError(f"keypoints contain non-finite values at: {', '.join(bad)}")
    return points


def heights(keypoints: np.ndarray | Sequence) -> np.ndarray:
    """Anterior, middle and posterior heights: the lengths of the three keypoint segments.

    Raises:
        GenantError: for invalid points (see :func:`as_segments`).

    """
    segments = as_segments(keypoints)
    return np.linalg.norm(segments[:, 0] - segments[:, 1], axis=-1)


def genant_index(h: np.ndarray | Sequence[float]) -> float:
    """G = min(h) / max(h) (Pisov et al. 2020, eq. 1).

    Raises:
        GenantError: if a height is zero (coincident endplate points) or not finite.

    """
    h = np.asarray(h, dtype=float)
    if h.shape != (3,) or not np.all(np.isfinite(h)):
        raise GenantError(f"expected three finite heights, got {h.tolist()}")
    degenerate = [HEIGHT_NAMES[i] for i in range(3) if h[i] < MIN_HEIGHT_MM]
    if degenerate:
        raise GenantError(
            f"degenerate keypoints: {', '.join(degenerate)} height is 0 "
            "(superior and inferior endplate points coincide)"
        )
    return float(h.min() / h.max())


def grade_from_reduction(reduction: float) -> int:
    """Genant grade of a relative height reduction (0.2 -> grade 1, 0.3 -> 2, 0.45 -> 3).

    The reduction is rounded to 9 decimals first, so that G = 0.8 (reduction 0.19999999999999996
    in floating point) is graded 1 as the definition says.
    """
    if reduction is None or not math.isfinite(reduction):
        raise GenantError(f"height reduction must be finite, got {reduction}")
    r = round(float(reduction), 9)
    if r < GRADE_THRESHOLDS[0]:
        return 0
    if r < GRADE_THRESHOLDS[1]:
        return 1
    if r <= GRADE_THRESHOLDS[2]:
        return 2
    return 3


def deformity_type(h: np.ndarray | Sequence[float], grade: int) -> str:
    """Morphological type from the most reduced height (``none`` for grade 0)."""
    if grade == 0:
        return "none"
    return ("wedge", "biconcave", "crush")[int(np.argmin(np.asarray(h, dtype=float)))]


def measure(keypoints: np.ndarray | Sequence, neighbour_reduction: Optional[float] = None) -> GenantMeasure:
    """Genant measures of one vertebra from its six keypoints.

    Args:
        keypoints: six points, shape (6, D) or (3, 2, D).
        neighbour_reduction: optional neighbour-relative reduction
            (see :func:`neighbour_reductions`); when it gives a higher grade than G, the vertebra
            takes that grade with type ``crush``.

    Raises:
        GenantError: for invalid or degenerate keypoints.

    """
    h = heights(keypoints)
    g = genant_index(h)
    grade = grade_from_reduction(1.0 - g)
    kind = deformity_type(h, grade)
    if neighbour_reduction is not None and math.isfinite(neighbour_reduction):
        neighbour_grade = grade_from_reduction(max(0.0, neighbour_reduction))
        if neighbour_grade > grade:
            grade, kind = neighbour_grade, "crush"
    return GenantMeasure(tuple(float(x) for x in h), g, grade, kind, neighbour_reduction)


def neighbour_reductions(levels: Sequence[str], all_heights: Sequence[Sequence[float]]) -> List[Optional[float]]:
    """Reduction of each vertebra's maximal height against its neighbours.

    The expected height of a vertebra is the linear interpolation, by level position, between
    the maximal heights of the nearest cranial and nearest caudal neighbour (each at most
    :data:`MAX_NEIGHBOUR_GAP` levels away); with a neighbour on one side only, that neighbour's
    maximal height. Using maximal heights makes a wedge or biconcave neighbour count at its
    intact height.

    Args:
        levels: level names (any order; duplicates are not allowed).
        all_heights: h_a, h_m, h_p per vertebra, in the same order.

    Returns:
        ``1 - max(h) / expected`` per vertebra, or None where no neighbour is close enough.

    Raises:
        GenantError: for duplicate levels or mismatched lengths.

    """
    if len(levels) != len(all_heights):
        raise GenantError(f"{len(levels)} levels but {len(all_heights)} height triples")
    # transitional T13 / L6 occupy a position only in columns that have them, so that T12 and L1
    # (L5 and S1) are adjacent in a typical spine
    names = [normalise_level(name) for name in levels]
    sequence = [n for n in LEVEL_NAMES if n not in ("T13", "L6") or n in names]
    positions = [sequence.index(name) for name in names]
    if len(set(positions)) != len(positions):
        dupes = sorted({levels[i] for i, p in enumerate(positions) if positions.count(p) > 1})
        raise GenantError(f"duplicate vertebra levels: {', '.join(dupes)}")
    tops = [float(np.max(h)) for h in all_heights]
    by_position = dict(zip(positions, tops))
    result: List[Optional[float]] = []
    for position, top in zip(positions, tops):
        above = next((p for p in range(position - 1, position - MAX_NEIGHBOUR_GAP - 1, -1) if p in by_position), None)
        below = next((p for p in range(position + 1, position + MAX_NEIGHBOUR_GAP + 1) if p in by_position), None)
        if above is None and below is None:
            result.append(None)
            continue
        if above is not None and below is not None:
            t = (position - above) / (below - above)
            expected = (1 - t) * by_position[above] + t * by_position[below]
        else:
            expected = by_position[above if above is not None else below]
        result.append(float(1.0 - top / expected) if expected > MIN_HEIGHT_MM else None)
    return result


def measure_column(levels: Sequence[str], keypoints: Sequence) -> List[GenantMeasure]:
    """Genant measures for every vertebra of a column, neighbour-relative reduction included.

    Raises:
        GenantError: naming the level whose keypoints are invalid, or duplicate levels.

    """
    all_heights = []
    for name, points in zip(levels, keypoints):
        try:
            all_heights.append(heights(points))
        except GenantError as error:
            raise GenantError(f"{name}: {error}") from None
    reductions = neighbour_reductions(levels, all_heights)
    measures = []
    for name, points, reduction in zip(levels, keypoints, reductions):
        try:
            measures.append(measure(points, reduction))
        except GenantError as error:
            raise GenantError(f"{name}: {error}") from None
    return measures


def patient_grade(grades: Sequence[int]) -> int:
    """Patient-level grade: the most severe vertebra (Pisov et al. 2020, §5.1); 0 for no vertebrae."""
    return int(max(grades, default=0))
