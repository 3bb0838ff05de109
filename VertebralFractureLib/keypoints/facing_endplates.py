"""Neighbouring bodies whose facing endplates cross on thick slices: each gives back half of the overlap.

Two vertebral bodies are separated by their disc: the inferior endplate of the upper body lies above the superior
endplate of the lower one, however thin the disc (a vacuum or collapsed disc brings them together, never across).
Each body's endplates are refined on their own (:func:`.refine.refine_on_ct`). Where the voxel along the spine is
coarser than an endplate is resolved (``refine.CT_RESOLVED_MM``: 3 mm slices), a disc thinner than a slice and the
two endplates around it blur into one bright band, and each body takes its border from that band
(:func:`.refine.endplate_edge`: the band's centre, or the steepest fall, which may be the neighbour's inner face), so
the two bodies' borders can meet or cross each other (the real 3 mm chest CT, ``benchmarks/bench_real.py``: facing
points of neighbouring bodies up to 5.3 mm across each other, where three blind readers put the disc 1-5 mm wide).
Crossed borders cannot both be right. Within one band (two endplates and a disc thinner than a slice: at most a
voxel and two cortical plates across, ``refine.CT_PLATE_MM``) nothing says which body took the other's border, so
each gives back half of the overlap, along its own superior axis, and the two meet; points that do not cross are not
moved (the disc is not widened to a thickness the image does not show). A crossing wider than one band puts one
body's border outside it (a box spanning a disc): which one is unknown, so the points stay where they are. Either
way the crossed points are recorded, and a height loss measured with them is withheld
(:func:`VertebralFractureLib.quality.stage.withhold_unsupported_grades`). On resolved endplates the border is the
bone/disc step itself, agreed by several profiles: a crossing there is one body's error, not a shared band, and is
left to the quality gate (:mod:`VertebralFractureLib.quality`).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from .column_tilt import MAX_GAP
from .refine import CT_PLATE_MM, CT_RESOLVED_MM, _body_frame

#: (upper body's inferior point, lower body's superior point) facing each other across their disc: anterior, middle,
#: posterior (genant.KEYPOINT_NAMES order).
FACING = ((1, 0), (3, 2), (5, 4))


def _adjacent(centres: np.ndarray) -> List[bool]:
    """Whether each consecutive pair of bodies are neighbouring levels (no body missing between them).

    Neighbours: centres no farther apart than :data:`.column_tilt.MAX_GAP` times the median spacing.
    """
    steps = np.linalg.norm(np.diff(centres, axis=0), axis=1)
    if not len(steps):
        return []
    typical = float(np.median(steps))
    return [bool(0 < step <= MAX_GAP * typical) for step in steps]


def separate_crossing_endplates(bodies: Sequence[np.ndarray], geometry: Any,
                                crossed: Optional[List[Dict[int, float]]] = None) -> List[np.ndarray]:
    """The bodies' keypoints with each crossing pair of facing endplate points on thick slices moved until they meet.

    Args:
        bodies: (6, 3) LPS keypoints per body, in order along the spine (either direction).
        geometry: the CT's :class:`VertebralFractureLib.geometry.ImageGeometry`: a pair is split only when the voxel
            along either body's superior axis (:meth:`~VertebralFractureLib.geometry.ImageGeometry.voxel_extent_along`,
            what the image resolves) is coarser than ``refine.CT_RESOLVED_MM``.
        crossed: when a list is given, one dict per body is appended to it: the indices of its keypoints that
            crossed a neighbour's (moved to meet it, or left where a crossing is wider than one band), each with the
            overlap (mm) it had. Such a point is not a border the image shows: a height loss measured with it is
            not confirmed (:func:`VertebralFractureLib.quality.stage.withhold_unsupported_grades`).

    Returns:
        New (6, 3) arrays; pairs that do not cross, cross by more than one band, are resolved or are not neighbouring
        levels are left as they are.
    """
    out = [np.array(body, dtype=float).reshape(6, 3) for body in bodies]
    moved: List[Dict[int, float]] = [{} for _ in out]
    if crossed is not None:
        crossed.extend(moved)
    if len(out) < 2:
        return out
    centres = np.array([body.mean(axis=0) for body in out])
    for k, adjacent in enumerate(_adjacent(centres)):
        frames = _body_frame(out[k]), _body_frame(out[k + 1])
        if not adjacent or frames[0] is None or frames[1] is None:
            continue
        voxel = max(geometry.voxel_extent_along(frame[2]) for frame in frames)
        if voxel <= CT_RESOLVED_MM:
            continue
        first_above = float((centres[k] - centres[k + 1]) @ frames[0][2]) > 0
        (upper, up_axis, up_moved), (lower, low_axis, low_moved) = (
            ((out[k], frames[0][2], moved[k]), (out[k + 1], frames[1][2], moved[k + 1])) if first_above
            else ((out[k + 1], frames[1][2], moved[k + 1]), (out[k], frames[0][2], moved[k])))
        across = up_axis + low_axis
        across /= np.linalg.norm(across)
        for i, j in FACING:
            overlap = -float((upper[i] - lower[j]) @ across)
            if overlap <= 0:
                continue
            up_moved[i] = low_moved[j] = overlap
            if overlap > voxel + 2 * CT_PLATE_MM:  # wider than one band: one body's border lies outside it
                continue
            upper[i] = upper[i] + 0.5 * overlap * up_axis / float(up_axis @ across)
            lower[j] = lower[j] - 0.5 * overlap * low_axis / float(low_axis @ across)
    return out
