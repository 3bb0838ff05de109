"""Turn each body's keypoints in the coronal plane to the line of its neighbours' centres.

The detector places a body's six points in the straightened spine's mid-sagittal plane (Pisov et al. 2020, §3.1),
whose superior axis is the centre line's tangent. The centre line is smooth: in a scoliotic stretch it turns over
two to three levels, so a body at the start of a curve keeps part of the tilt of the body above (measured on the
real chest CT, ``benchmarks/bench_real.py``: T10 and T11 tilted 9 and 18 degrees in the coronal plane, the centre
line's tangent 4 and 9; their inferior points then lie 3-7 mm beside the body's own mid-sagittal plane). The line
through the two neighbouring bodies' centres, each moved onto its own mid-sagittal plane
(:func:`.refine.body_midplane`: the middle of its spinal canal, checked against its side walls), follows the column
over one level on each side, which is how the spine's axis at a vertebra is read by eye (the reference points of the
chest CT were placed in the plane along the axis from the neighbouring centres). Only the coronal component changes
(a rotation about the body's antero-posterior axis): the sagittal tilt is the body's own, measured by the endplate
refinement that follows.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np
from scipy.spatial.transform import Rotation

from .refine import _body_frame, body_midplane

#: Smallest coronal turn (degrees) applied; below it the centre line's plane stays (a degree moves a corner by
#: 0.2 mm over a 25 mm body).
MIN_TURN_DEG = 2.0
#: Largest coronal turn (degrees): beyond it a neighbour's centre is more likely wrong than the centre line.
MAX_TURN_DEG = 20.0
#: Largest distance between neighbouring centres, over the median spacing, for them to count as adjacent levels.
MAX_GAP = 1.5


def coronal_turn(points: np.ndarray, chord: np.ndarray) -> Optional[float]:
    """Signed angle (radians, about the body's posterior axis) that brings its superior axis onto ``chord``'s.

    Args:
        points: (6, 3) LPS keypoints of the body.
        chord: (3,) direction from the lower neighbour's centre to the upper one's.

    Returns:
        The angle, or None when it is below :data:`MIN_TURN_DEG` or above :data:`MAX_TURN_DEG`.
    """
    frame = _body_frame(points)
    if frame is None:
        return None
    _, p, s, _ = frame
    target = chord - (chord @ p) * p
    if np.linalg.norm(target) < 1e-6:
        return None
    target = target / np.linalg.norm(target)
    if target @ s <= 0:
        return None
    angle = float(np.arctan2(np.cross(s, target) @ p, s @ target))
    if not np.radians(MIN_TURN_DEG) <= abs(angle) <= np.radians(MAX_TURN_DEG):
        return None
    return angle


def turned_to_neighbours(bodies: Sequence[np.ndarray], centres: Sequence[Optional[np.ndarray]]) -> List[np.ndarray]:
    """Each body's points turned in the coronal plane onto the line of its two neighbours' centres.

    Args:
        bodies: (6, 3) LPS keypoints of each detected body, in column order (either direction).
        centres: each body's centre on its own mid-sagittal plane, or None where that plane was not found.

    Returns:
        The points, turned where both neighbours' centres are known and adjacent, else unchanged.
    """
    out = [np.asarray(b, dtype=float).copy() for b in bodies]
    known = [c for c in centres if c is not None]
    if len(out) < 3 or len(known) < 3:
        return out
    steps = [np.linalg.norm(centres[i + 1] - centres[i]) for i in range(len(centres) - 1)
             if centres[i] is not None and centres[i + 1] is not None]
    spacing = float(np.median(steps)) if steps else 0.0
    for i in range(1, len(out) - 1):
        above, below, here = centres[i - 1], centres[i + 1], centres[i]
        if above is None or below is None or here is None or spacing <= 0:
            continue
        if max(np.linalg.norm(above - here), np.linalg.norm(here - below)) > MAX_GAP * spacing:
            continue
        chord = above - below
        if chord @ (out[i][0::2].mean(0) - out[i][1::2].mean(0)) < 0:
            chord = -chord
        angle = coronal_turn(out[i], chord)
        if angle is None:
            continue
        centre, p, _, _ = _body_frame(out[i])
        out[i] = centre + Rotation.from_rotvec(angle * p).apply(out[i] - centre)
    return out


def midplane_centres(ct, bodies: Sequence[np.ndarray]) -> List[np.ndarray]:
    """Each body's centre moved onto its own mid-sagittal plane, or its points' centre where that plane is not found.

    The plane is :func:`.refine.body_midplane`'s without the cortical ring (the middle of the spinal canal, checked
    against the side walls): measured on the real chest CT (2026-12-06), the ring there turned T4 away from its
    reference (keypoint error 4.9 -> 5.9 mm, height 2.7 -> 4.5 mm) and improved no body. Without a plane the centre
    stays on the straightened spine's plane.
    """
    from ..spine.straighten import _image_parts

    array, geometry = _image_parts(ct)
    centres = []
    for points in bodies:
        frame = _body_frame(np.asarray(points, dtype=float))
        if frame is None:
            centres.append(np.asarray(points, dtype=float).mean(axis=0))
            continue
        plane = body_midplane((array, geometry), points, geometry.voxel_extent_along(frame[3]), ring=False)
        centres.append(frame[0] if plane is None else frame[0] + plane * frame[3])
    return centres


def turned_to_column(ct, bodies: Sequence[np.ndarray]) -> List[np.ndarray]:
    """:func:`turned_to_neighbours` with the centres of :func:`midplane_centres`.

    Args:
        ct: the CT (SimpleITK image or ``(array, geometry)``).
        bodies: (6, 3) LPS keypoints of each detected body, in column order.
    """
    return turned_to_neighbours(bodies, midplane_centres(ct, bodies))
