"""Extend the chain of confident vertebrae with weaker detections that fit it and that the image supports.

The region-proposal net scores most vertebrae near 1, but where the image is poor -- the upper thoracic
spine of a chest CT seen obliquely through 3 mm slices (kyphosis, shoulder streaks), a body whose
posterior wall is cut by a small cardiac field of view -- a real vertebra can score 0.1-0.8, below the
model's objectness threshold, while false candidates (spinous processes, ribs, bowel) can score as much.
The objectness alone cannot tell them apart; the column can. Vertebrae are stacked at a spacing that
changes slowly along the spine (body + disc height grows by a few per cent per level), so a candidate is
taken only where it continues the chain of confident detections:

* it lies beyond an end of the chain at a distance that fits the local spacing: one level
  (:data:`ONE_LEVEL`) or one missed level (:data:`TWO_LEVELS`); or inside a gap: one level from both sides of a
  gap of two levels, or one level from either side of a longer gap, which is so grown into from both ends (the
  real chest CT with 80 HU of noise: T2-T5 missed on the one plane between a T1 and T6 the detector kept, their
  candidates on the second look's slab at 0.22-0.98 with the CT's evidence, none taken, and the bodies past the
  gap named two levels off);
* it is stacked on its neighbour (their anterior-posterior extents overlap, :data:`MIN_AP_OVERLAP`)
  and its height is similar (:data:`HEIGHT_RATIO`);
* the CT shows a whole vertebra there: the quality gate's field-of-view check, its bone check (a
  cortical rim around a trabecular core) and its spinal canal / posterior elements check all pass
  (``evidence``), so the same image evidence that lets a vertebra be graded lets a weak detection in.

Candidates are added one at a time, best objectness first among those that fit, growing the chain
outward; each addition updates the spacing. Nothing is added to a chain of fewer than
:data:`MIN_CHAIN` confident vertebrae (no spacing to fit) or without an evidence function.
"""

from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

#: Lowest objectness a candidate may have to be considered: the detector's anchors score below 0.05 on soft
#: tissue. 0.1 (until 2026-12-07) kept the stored chest CT crop's T1 (0.18) and T3 (0.17), whose bodies are seen
#: through streaks, but not the same scan's T1 and T2 in its original series (0.56 mm pixels, sharp B70f kernel: 0.09
#: and 0.07); at 0.05 its T2 joins the chain (T1's candidate lies off the body and the CT evidence refuses it), and on
#: the real reference CTs and the generated ones at 1, 5 and 0.6 mm no other body is found or lost and no grade
#: changes (docs/findings.md, "A picture's plane and its padding from the DICOM file", last part).
EXTEND_THRESHOLD = 0.05
#: A step of one level: the distance over the local spacing (adjacent levels differ by < 10 %, a
#: collapsed neighbour shortens one step by up to a body's half height).
ONE_LEVEL = (0.7, 1.3)
#: A step over one missed level at a chain end (its vertebra not detected even weakly).
TWO_LEVELS = (1.75, 2.3)
#: Least overlap of the candidate's anterior-posterior extent (its keypoint columns) with its neighbour's, as a
#: fraction of the shorter one: stacked bodies overlap over most of their depth, a Meyerding grade II
#: spondylolisthesis (25-50 % slip) still over half of it; a spinous process or a rib beside the column does not.
MIN_AP_OVERLAP = 0.5
#: Candidate height over its neighbour's (six-keypoint extent along the rows).
HEIGHT_RATIO = (0.6, 1.6)
#: Lateral slab (mm) of the second look: the mid-sagittal planes within +-3 mm averaged. A body is 30-50 mm wide
#: and its endplates are nearly flat across the middle, so the slab keeps the body's sagittal section while the
#: noise and the streaks of an oblique 3 mm slice stack (a different pattern on every plane) drop by about
#: sqrt(7); candidates from it may only extend the chain, like the weak ones.
SECOND_LOOK_SLAB_MM = 6.0
#: The CT must extend this far (mm) beyond both endplates of an added body: the disc beyond each endplate is
#: in view (thoracic discs 4-6 mm, lumbar 8-12 mm; Panjabi 1991, 1992). A body at the very end of the scan,
#: with the edge at its endplate, may be cut there.
DISC_CLEARANCE_MM = 5.0
#: Confident detections needed before the chain is extended.
MIN_CHAIN = 3
#: Gaps on each side used for the local spacing.
SPACING_WINDOW = 3

Evidence = Callable[[np.ndarray], bool]


def _centres(points: np.ndarray) -> np.ndarray:
    return np.asarray(points, dtype=np.float64).reshape(-1, 6, 2).mean(axis=1)


def _heights(points: np.ndarray) -> np.ndarray:
    rows = np.asarray(points, dtype=np.float64).reshape(-1, 6, 2)[:, :, 1]
    return rows.max(axis=1) - rows.min(axis=1)


def level_spacing(rows: np.ndarray) -> float:
    """Typical distance between adjacent levels of sorted rows, gaps over a missed level counted as two.

    Args:
        rows: (n,) sorted cranio-caudal positions, n >= 2.

    Returns:
        the median one-level gap.
    """
    gaps = np.diff(np.sort(np.asarray(rows, dtype=np.float64)))
    if len(gaps) == 0:
        return float("nan")
    typical = float(np.median(gaps))
    levels = np.maximum(np.round(gaps / max(typical, 1e-6)), 1.0)
    return float(np.median(gaps / levels))


def _local_spacing(rows: np.ndarray, index: int) -> float:
    """Spacing from the gaps nearest chain member ``index`` (sorted rows)."""
    lo, hi = max(0, index - SPACING_WINDOW), min(len(rows), index + SPACING_WINDOW + 1)
    return level_spacing(rows[lo:hi])


def extend_chain(
    strong: np.ndarray,
    weak: np.ndarray,
    weak_scores: np.ndarray,
    evidence: Optional[Evidence],
) -> List[int]:
    """Weak candidates that continue the chain of strong ones (see module doc).

    Args:
        strong: (n, 6, 2) keypoints ``[column, row]`` of the confident detections (mm grid).
        weak: (m, 6, 2) keypoints of the weaker candidates, none overlapping a strong one.
        weak_scores: (m,) their objectness.
        evidence: ``evidence(keypoints (6, 2)) -> bool``: whether the CT shows a vertebra there.

    Returns:
        indices into ``weak`` of the accepted candidates, in the order they were added.
    """
    strong = np.asarray(strong, dtype=np.float64).reshape(-1, 6, 2)
    weak = np.asarray(weak, dtype=np.float64).reshape(-1, 6, 2)
    if evidence is None or len(strong) < MIN_CHAIN or len(weak) == 0:
        return []
    order = np.argsort(-np.asarray(weak_scores, dtype=np.float64), kind="stable")
    chain = list(strong)
    accepted: List[int] = []
    checked: dict = {}
    while True:
        # one-level steps first: a candidate over a missed level is taken only where none fits a single step
        added = _next_link(chain, weak, order, accepted, checked, evidence, skips=False)
        if added is None:
            added = _next_link(chain, weak, order, accepted, checked, evidence, skips=True)
        if added is None:
            return accepted
        accepted.append(added)
        chain.append(weak[added])


def interposed(points: np.ndarray) -> List[int]:
    """Detections lying between two neighbours that are one level apart: a box on a disc, not a body.

    A detection stacked on both its neighbours (depth overlap :data:`MIN_AP_OVERLAP`) is interposed when each of its
    two gaps is shorter than ``ONE_LEVEL[0]`` of the local spacing (the chain's spacing without it) and the two
    together span one level (:data:`ONE_LEVEL`). A real body between them cannot fit: a collapsed one still carries a
    disc on each side, so its neighbours lie one level plus a disc and its own height apart. The caller decides with
    the image (the CT's evidence of a body) whether such a detection goes: seen on the sample CT at 5 mm slices, a box
    over the L4/L5 disc (gaps 26 and 22 mm against a spacing of about 40) was named L5 and the true L5 below it S1.

    Args:
        points: (n, 6, 2) keypoints ``[column, row]``, rows along the spine.

    Returns:
        indices into ``points`` of the interposed detections.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 6, 2)
    if len(points) < MIN_CHAIN + 1:
        return []
    order = np.argsort(_centres(points)[:, 1], kind="stable")
    rows = _centres(points)[order, 1]
    found: List[int] = []
    for k in range(1, len(rows) - 1):
        above, here, below = points[order[k - 1]], points[order[k]], points[order[k + 1]]
        if _ap_overlap(here, above) < MIN_AP_OVERLAP or _ap_overlap(here, below) < MIN_AP_OVERLAP:
            continue
        spacing = _local_spacing(np.delete(rows, k), k - 1)
        gaps = (rows[k] - rows[k - 1], rows[k + 1] - rows[k])
        if max(gaps) < ONE_LEVEL[0] * spacing and _fits(sum(gaps), spacing, ONE_LEVEL):
            found.append(int(order[k]))
    return found


def chain_has_room(strong: np.ndarray, n_rows: int) -> bool:
    """Whether :func:`extend_chain` could add anything: room for one more body beyond an end, or a two-level gap.

    A candidate beyond an end lies at least ``ONE_LEVEL[0]`` x the local spacing from the end body and is at
    least ``HEIGHT_RATIO[0]`` x its height tall; when even such a body would stick out of the image's rows
    at both ends and no gap holds a missed level (``TWO_LEVELS``), no candidate can fit, and the weak
    candidates and the second look (a second detector pass) need not be computed. The test only skips work:
    it never refuses a candidate that :func:`extend_chain` would have accepted.

    Args:
        strong: (n, 6, 2) keypoints ``[column, row]`` of the confident detections (detector grid).
        n_rows: rows of the detector's image.
    """
    strong = np.asarray(strong, dtype=np.float64).reshape(-1, 6, 2)
    if len(strong) < MIN_CHAIN:
        return False
    order = np.argsort(_centres(strong)[:, 1], kind="stable")
    rows, heights = _centres(strong)[order, 1], _heights(strong)[order]
    first, last = _local_spacing(rows, 0), _local_spacing(rows, len(rows) - 1)
    if rows[0] - ONE_LEVEL[0] * first - 0.5 * HEIGHT_RATIO[0] * heights[0] >= 0:
        return True
    if rows[-1] + ONE_LEVEL[0] * last + 0.5 * HEIGHT_RATIO[0] * heights[-1] <= n_rows - 1:
        return True
    return any(rows[i + 1] - rows[i] >= TWO_LEVELS[0] * _local_spacing(rows, i) for i in range(len(rows) - 1))


def extent_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Overlap of the extents of two sets of positions along one axis over the shorter extent (0-1)."""
    a0, a1 = float(np.min(a)), float(np.max(a))
    b0, b1 = float(np.min(b)), float(np.max(b))
    shorter = max(min(a1 - a0, b1 - b0), 1e-6)
    return max(0.0, min(a1, b1) - max(a0, b0)) / shorter


def _ap_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Overlap of the column extents of two keypoint sets over the shorter extent (0-1)."""
    return extent_overlap(a[:, 0], b[:, 0])


def _fits(gap: float, spacing: float, limits: Tuple[float, float]) -> bool:
    return limits[0] * spacing <= gap <= limits[1] * spacing


def _next_link(chain: Sequence[np.ndarray], weak: np.ndarray, order: np.ndarray, accepted: List[int],
               checked: dict, evidence: Evidence, skips: bool) -> Optional[int]:
    """The best weak candidate that fits the current chain (or None); ``skips``: also over a missed level."""
    points = np.asarray(chain)
    centres = _centres(points)
    sort = np.argsort(centres[:, 1], kind="stable")
    points, centres = points[sort], centres[sort]
    rows, heights = centres[:, 1], _heights(points)
    weak_centres, weak_heights = _centres(weak), _heights(weak)
    n = len(rows)
    for k in order:
        if k in accepted:
            continue
        row = weak_centres[k, 1]
        above = int(np.searchsorted(rows, row))  # chain members with a smaller row: indices < above
        if above == 0:  # beyond the superior end
            neighbours, spacing = [0], _local_spacing(rows, 0)
            ok = _fits(rows[0] - row, spacing, TWO_LEVELS if skips else ONE_LEVEL)
        elif above == n:  # beyond the inferior end
            neighbours, spacing = [n - 1], _local_spacing(rows, n - 1)
            ok = _fits(row - rows[-1], spacing, TWO_LEVELS if skips else ONE_LEVEL)
        else:  # inside a gap
            i, j = above - 1, above
            spacing = _local_spacing(rows, i)
            gap, from_above, from_below = rows[j] - rows[i], row - rows[i], rows[j] - row
            if _fits(gap, spacing, TWO_LEVELS):  # one missed level: split into two steps
                ok = not skips and _fits(from_above, spacing, ONE_LEVEL) and _fits(from_below, spacing, ONE_LEVEL)
                neighbours = [i, j]
            else:  # several missed levels: grown into one level at a time from either side, as from an end
                above_fits = _fits(from_above, spacing, ONE_LEVEL)
                ok = (not skips and gap > TWO_LEVELS[1] * spacing
                      and (above_fits or _fits(from_below, spacing, ONE_LEVEL))
                      and min(from_above, from_below) >= ONE_LEVEL[0] * spacing)
                neighbours = [i] if above_fits else [j]
        if not ok or not np.isfinite(spacing):
            continue
        if any(_ap_overlap(weak[k], points[m]) < MIN_AP_OVERLAP for m in neighbours):
            continue
        ratio = weak_heights[k] / max(float(np.mean(heights[neighbours])), 1e-6)
        if not HEIGHT_RATIO[0] <= ratio <= HEIGHT_RATIO[1]:
            continue
        if k not in checked:
            checked[k] = bool(evidence(weak[k]))
        if checked[k]:
            return int(k)
    return None


def _discs_in_view(geometry, frame) -> bool:
    """Whether the CT extends :data:`DISC_CLEARANCE_MM` beyond both endplates at all six keypoints."""
    outward = np.where(np.arange(6) % 2 == 0, 1.0, -1.0)[:, None] * frame.s[None, :]  # superior points up
    index = geometry.lps_to_index(frame.keypoints + DISC_CLEARANCE_MM * outward)
    size = np.asarray(geometry.size, dtype=np.float64)
    return bool(np.all((index >= -0.5) & (index <= size - 0.5)))


def ct_evidence(straightened, ct, to_input_pixels: np.ndarray, refine: bool = True) -> Evidence:
    """An evidence function on the CT: the quality gate's field-of-view, bone and canal-or-posterior checks pass.

    The keypoints are first refined on the CT (``refine``); a body whose refined height differs from the
    detector's by more than :data:`HEIGHT_RATIO` (the refinement snapped to edges that are not this body's
    endplates) is rejected, and so is one cut by the edge of the field of view or without the discs beyond its
    endplates in view (:data:`DISC_CLEARANCE_MM`; it could not be measured, and a weak detection at the scan's
    end is the one least supported by the image).

    Args:
        straightened: the :class:`~VertebralFractureLib.spine.StraightenedSpine` whose mid-sagittal image
            the detector read.
        ct: the canonical SimpleITK CT it was made from.
        to_input_pixels: (2,) factors from the detector grid ``[column, row]`` to the mid-sagittal pixels.
        refine: check the keypoints after :func:`.refine.refine_on_ct` (as the quality gate sees them
            in the analysis), not the detector's.

    Returns:
        ``evidence(keypoints (6, 2)) -> bool``.
    """
    import SimpleITK as sitk

    from ..io.images import geometry_of
    from ..quality import checks
    from .refine import refine_on_ct

    volume = sitk.GetArrayViewFromImage(ct)
    geometry = geometry_of(ct)
    scale = np.asarray(to_input_pixels, dtype=np.float64)

    def evidence(keypoints: np.ndarray) -> bool:
        detected = straightened.mid_sagittal_to_patient(np.asarray(keypoints, dtype=np.float64) * scale,
                                                        order="col_row")
        # on the detector's own plane: the check compares the refined body with the detected one, and the
        # mid-sagittal plane of the body (refine.body_midplane) can give a truer height that no longer matches it
        points = refine_on_ct(ct, detected, midplane=False) if refine else detected
        try:
            frames = [checks.BodyFrame.from_keypoints(points), checks.BodyFrame.from_keypoints(detected)]
        except ValueError:
            return False
        frame = frames[0]
        # the middle of the three heights: one corner snapped to the neighbour's far endplate (a small upper
        # thoracic body on 3 mm slices) does not make the body another size
        ratio = float(np.median(frame.heights)) / max(float(np.median(frames[1].heights)), 1e-6)
        if not HEIGHT_RATIO[0] <= ratio <= HEIGHT_RATIO[1]:  # the refinement found no body of that height
            return False
        # in view as detected and as refined: the refinement cannot see beyond the edge and stops inside it
        for seen in frames:
            if checks.check_field_of_view(geometry, seen).score < 0.5 or not _discs_in_view(geometry, seen):
                return False
        bone = checks.check_bone(volume, geometry, frame)
        canal, posterior = checks.check_canal_and_posterior(volume, geometry, frame)
        return bool(bone.score >= 0.5 and max(canal.score, posterior.score) >= 0.5)

    return evidence
