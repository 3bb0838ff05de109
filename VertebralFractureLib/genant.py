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
* neighbour-relative reduction: the vertebra's own loss (1 - G) combined with its size deficit
  against its normal neighbours, ``1 - G * (1 - max(0, s - SIZE_TOLERANCE))`` with
  ``s = 1 - max(h) / expected``; the expected height is interpolated, by level position, between
  the maximal heights of the nearest *reference* vertebra above and below (each at most two
  levels away; one side only: that reference's maximal height). A reference vertebra is one whose
  own shape is normal (G > 0.8, Genant grade 0), so that a fractured neighbour never lowers the
  expectation (in VerSe sub-verse004, T9 and T10, radiologists' grade 2, are each other's
  neighbours). Genant et al. 1993 grade the loss of a height against the vertebra's expected
  height "compared with adjacent normal vertebrae"; adjacent normal bodies differ by a few percent
  per level (heights grow cranio-caudally), so a deficit up to :data:`SIZE_TOLERANCE` is not
  counted. A crush fracture lowers all three heights and keeps G near 1; a wedge or biconcave body
  that is also smaller than its neighbours shows its full loss only here. When this reduction
  reaches a higher grade than G does, the vertebra is graded by it, with type ``crush`` when its
  own shape is normal. This comparison is for exact keypoints (a mask, an annotator); keypoints
  from a detector carry millimetres of error in every height, and for them only the crush
  comparison of the maximal heights is made (:func:`crush_reductions`, ``measure_column(exact=...)``).
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
#: Size deficit against the normal neighbours that is not counted as loss (adjacent normal bodies
#: differ by a few percent per level).
SIZE_TOLERANCE = 0.05


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
        neighbour_reduction: loss combining G and the size deficit against the normal neighbours
            (see :func:`neighbour_reductions`), or None.

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


def measure(keypoints: np.ndarray | Sequence, neighbour_reduction: Optional[float] = None, *,
            crush_only: bool = False) -> GenantMeasure:
    """Genant measures of one vertebra from its six keypoints.

    Args:
        keypoints: six points, shape (6, D) or (3, 2, D).
        neighbour_reduction: optional neighbour-relative reduction
            (see :func:`neighbour_reductions`); when it gives a higher grade than G, the vertebra
            takes that grade, with type ``crush`` when its own shape (G) is normal.
        crush_only: raise only a vertebra whose own shape is normal (the crush comparison of
            :func:`crush_reductions`).

    Raises:
        GenantError: for invalid or degenerate keypoints.

    """
    h = heights(keypoints)
    g = genant_index(h)
    grade = grade_from_reduction(1.0 - g)
    kind = deformity_type(h, grade)
    if neighbour_reduction is not None and math.isfinite(neighbour_reduction):
        neighbour_grade = grade_from_reduction(max(0.0, neighbour_reduction))
        if neighbour_grade > grade and not (crush_only and grade > 0):
            kind = "crush" if grade == 0 else kind
            grade = neighbour_grade
    return GenantMeasure(tuple(float(x) for x in h), g, grade, kind, neighbour_reduction)


def _positions(levels: Sequence[str]) -> List[int]:
    """Level positions in the column; transitional T13 / L6 take a slot only where present."""
    names = [normalise_level(name) for name in levels]
    sequence = [n for n in LEVEL_NAMES if n not in ("T13", "L6") or n in names]
    positions = [sequence.index(name) for name in names]
    if len(set(positions)) != len(positions):
        dupes = sorted({levels[i] for i, p in enumerate(positions) if positions.count(p) > 1})
        raise GenantError(f"duplicate vertebra levels: {', '.join(dupes)}")
    return positions


def _interpolate_neighbours(positions: Sequence[int], references: dict) -> List[Optional[float]]:
    """Per position: the value interpolated between the nearest reference above and below.

    ``references`` maps a level position to a value; each side looks at most
    :data:`MAX_NEIGHBOUR_GAP` positions away and never at the position itself; with one side only,
    that side's value; None with neither.
    """
    result: List[Optional[float]] = []
    for position in positions:
        above = next((p for p in range(position - 1, position - MAX_NEIGHBOUR_GAP - 1, -1) if p in references), None)
        below = next((p for p in range(position + 1, position + MAX_NEIGHBOUR_GAP + 1) if p in references), None)
        if above is None and below is None:
            result.append(None)
        elif above is not None and below is not None:
            t = (position - above) / (below - above)
            result.append((1 - t) * references[above] + t * references[below])
        else:
            result.append(references[above if above is not None else below])
    return result


def _references_and_losses(levels: Sequence[str], all_heights: Sequence[Sequence[float]]):
    """Expected heights and losses against the neighbours that end up normal (a fixed point).

    Start from the vertebrae whose own shape is normal (G above ``1 - GRADE_THRESHOLDS[0]``); a
    vertebra that the comparison with its references then grades >= 1 (smaller than its neighbours)
    stops being a reference, and the comparison is repeated until no reference is graded: a borderline
    G of 0.81 next to a fracture does not make the fracture look normal.
    """
    if len(levels) != len(all_heights):
        raise GenantError(f"{len(levels)} levels but {len(all_heights)} height triples")
    # transitional T13 / L6 occupy a position only in columns that have them, so that T12 and L1
    # (L5 and S1) are adjacent in a typical spine
    positions = _positions(levels)
    triples = [np.asarray(h, dtype=float) for h in all_heights]
    normal_g = 1.0 - GRADE_THRESHOLDS[0]
    valid = [bool(h.min() >= MIN_HEIGHT_MM) for h in triples]
    references = {p: float(h.max()) for p, h, ok in zip(positions, triples, valid)
                  if ok and round(float(h.min() / h.max()), 9) > normal_g}
    while True:
        expected = _interpolate_neighbours(positions, references)
        # a degenerate body gets no loss here; :func:`measure` names its problem
        losses = [loss_against_neighbours(h, e) if e is not None and ok else None
                  for h, e, ok in zip(triples, expected, valid)]
        graded = {p for p, loss in zip(positions, losses)
                  if p in references and loss is not None and grade_from_reduction(max(0.0, loss)) >= 1}
        if not graded:
            return expected, losses
        for p in graded:
            del references[p]


def expected_heights(levels: Sequence[str], all_heights: Sequence[Sequence[float]]) -> List[Optional[float]]:
    """Intact (maximal) height each vertebra is expected to have, from its normal neighbours.

    The linear interpolation, by level position, between the maximal heights of the nearest
    reference vertebra above and the nearest below (each at most :data:`MAX_NEIGHBOUR_GAP` levels
    away); with a reference on one side only, that reference's maximal height. Reference vertebrae
    are the others that are normal: their own shape (G above ``1 - GRADE_THRESHOLDS[0]``) and their
    size against their own references (:func:`_references_and_losses`); a vertebra is never its
    own reference.

    Args:
        levels: level names (any order; duplicates are not allowed).
        all_heights: h_a, h_m, h_p per vertebra, in the same order.

    Returns:
        The expected height per vertebra, or None where no reference is close enough.

    Raises:
        GenantError: for duplicate levels or mismatched lengths.

    """
    return _references_and_losses(levels, all_heights)[0]


def loss_against_neighbours(h: Sequence[float], expected: float) -> float:
    """Loss of a vertebra combining its shape and its size against the expected intact height.

    ``1 - G * (1 - max(0, s - SIZE_TOLERANCE))`` with ``s = 1 - max(h) / expected``: G alone for
    a body of its neighbours' size, and the product of the two shortenings for a smaller one.

    Raises:
        GenantError: for degenerate heights or a non-positive expected height.

    """
    if not expected > MIN_HEIGHT_MM:
        raise GenantError(f"expected height must be positive, got {expected}")
    g = genant_index(h)
    deficit = 1.0 - float(np.max(h)) / expected
    return float(1.0 - g * (1.0 - max(0.0, deficit - SIZE_TOLERANCE)))


def neighbour_reductions(levels: Sequence[str], all_heights: Sequence[Sequence[float]]) -> List[Optional[float]]:
    """Loss of each vertebra against its normal neighbours (:func:`loss_against_neighbours`).

    Args:
        levels: level names (any order; duplicates are not allowed).
        all_heights: h_a, h_m, h_p per vertebra, in the same order.

    Returns:
        The loss per vertebra, or None where no normal neighbour is close enough (or its heights are
        degenerate).

    Raises:
        GenantError: for duplicate levels or mismatched lengths.

    """
    return _references_and_losses(levels, all_heights)[1]


def crush_reductions(levels: Sequence[str], all_heights: Sequence[Sequence[float]]) -> List[Optional[float]]:
    """Reduction of each vertebra's maximal height against its neighbours (the crush comparison).

    Used for keypoints from a detector (CT, radiograph): their heights carry millimetres of error,
    and comparing sizes as well as shapes (:func:`neighbour_reductions`) compounds two noisy
    measures (on the 20 real sagittal CT images of ``benchmarks/bench_sagittal.py`` it raised the false
    grades >= 2 from 5 to 8 of 61 graded); the maximal heights are the robust part of a detection.

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
    positions = _positions(levels)
    tops = [float(np.max(h)) for h in all_heights]
    expected = _interpolate_neighbours(positions, dict(zip(positions, tops)))
    return [None if e is None or e <= MIN_HEIGHT_MM else float(1.0 - top / e) for top, e in zip(tops, expected)]


def measure_column(levels: Sequence[str], keypoints: Sequence,
                   exact: bool | Sequence[bool] = False) -> List[GenantMeasure]:
    """Genant measures for every vertebra of a column, neighbour-relative reduction included.

    Args:
        levels: level names.
        keypoints: six keypoints per vertebra.
        exact: per vertebra (or for all; default False), whether its keypoints come from exact
            geometry (a mask, an annotator, the generator's truth): those are graded against their
            normal neighbours with :func:`neighbour_reductions`; keypoints from a detector only with
            the crush comparison of :func:`crush_reductions`.

    Raises:
        GenantError: naming the level whose keypoints are invalid, or duplicate levels.

    """
    all_heights = []
    for name, points in zip(levels, keypoints):
        try:
            all_heights.append(heights(points))
        except GenantError as error:
            raise GenantError(f"{name}: {error}") from None
    flags = [bool(exact)] * len(levels) if isinstance(exact, bool) else [bool(x) for x in exact]
    if len(flags) != len(levels):
        raise GenantError(f"{len(levels)} levels but {len(flags)} exact flags")
    against_normal = neighbour_reductions(levels, all_heights) if any(flags) else [None] * len(levels)
    crush = crush_reductions(levels, all_heights) if not all(flags) else [None] * len(levels)
    measures = []
    for name, points, flag, reduction, crushed in zip(levels, keypoints, flags, against_normal, crush):
        try:
            measures.append(measure(points, reduction) if flag else measure(points, crushed, crush_only=True))
        except GenantError as error:
            raise GenantError(f"{name}: {error}") from None
    return measures


def patient_grade(grades: Sequence[int]) -> int:
    """Patient-level grade: the most severe vertebra (Pisov et al. 2020, §5.1); 0 for no vertebrae."""
    return int(max(grades, default=0))
