"""Vertebral-body masks drawn from six keypoints, for the segmentation output.

When no segmentation is given, each vertebral body is approximated by the solid bounded, in the
body's own mid-sagittal plane, by the hexagon of its six keypoints (both endplates follow the
measured points, so a wedge or biconcave deformity shows), and across the body by an ellipse whose
anteroposterior axis is the body depth and whose lateral axis is :data:`WIDTH_TO_DEPTH` times the
depth (vertebral bodies are wider than deep; Panjabi et al., Spine 1991/1992). It is a display and
export aid, not a segmentation model: measurements never come from it.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from .geometry import ImageGeometry
from .levels import label_from_level
from .schema import SpineResult

#: Body width / depth ratio used for the lateral extent.
WIDTH_TO_DEPTH = 1.35
#: Hexagon order: anterior sup, middle sup, posterior sup, posterior inf, middle inf, anterior inf.
_HEXAGON = (0, 2, 4, 5, 3, 1)


def body_frame(keypoints: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Local frame of a vertebral body from its six LPS keypoints.

    Returns:
        centre, superior axis, posterior axis, lateral axis (unit vectors, orthonormal).
    """
    points = np.asarray(keypoints, dtype=float).reshape(6, 3)
    superior = points[[0, 2, 4]].mean(axis=0) - points[[1, 3, 5]].mean(axis=0)
    superior /= max(np.linalg.norm(superior), 1e-9)
    posterior = points[[4, 5]].mean(axis=0) - points[[0, 1]].mean(axis=0)
    posterior -= posterior.dot(superior) * superior
    posterior /= max(np.linalg.norm(posterior), 1e-9)
    lateral = np.cross(superior, posterior)
    return points.mean(axis=0), superior, posterior, lateral


def body_masks_from_keypoints(result: SpineResult, geometry: ImageGeometry) -> np.ndarray:
    """Label array ``[k, j, i]`` on ``geometry``'s grid with one VerSe label per vertebral body.

    Args:
        result: vertebrae with LPS keypoints.
        geometry: the grid to draw on (the CT's).

    Returns:
        uint8 array; 0 background, VerSe label of the level inside each body.
    """
    from skimage.measure import points_in_poly

    labels = np.zeros(tuple(reversed(geometry.size)), dtype=np.uint8)
    for vertebra in result.vertebrae:
        if vertebra.keypoints.shape != (6, 3):
            continue
        centre, superior, posterior, lateral = body_frame(vertebra.keypoints)
        local = (vertebra.keypoints - centre) @ np.stack([posterior, superior]).T
        depth = float(local[:, 0].max() - local[:, 0].min())
        half_width = 0.5 * WIDTH_TO_DEPTH * depth
        ap_centre = 0.5 * (local[:, 0].max() + local[:, 0].min())
        radius = np.linalg.norm(vertebra.keypoints - centre, axis=1).max() + half_width
        cube = np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).reshape(3, -1).T
        corners = geometry.lps_to_index(centre + radius * cube)
        low = np.maximum(np.floor(corners.min(axis=0)).astype(int), 0)
        high = np.minimum(np.ceil(corners.max(axis=0)).astype(int), np.asarray(geometry.size) - 1)
        if np.any(high < low):
            continue
        grid = np.stack(np.meshgrid(*[np.arange(a, b + 1) for a, b in zip(low, high)], indexing="ij"), axis=-1)
        offsets = geometry.index_to_lps(grid.reshape(-1, 3)) - centre
        ap, si, lat = offsets @ posterior, offsets @ superior, offsets @ lateral
        inside = ((ap - ap_centre) / max(depth / 2, 1e-6)) ** 2 + (lat / max(half_width, 1e-6)) ** 2 <= 1.0
        candidates = np.flatnonzero(inside)
        if candidates.size:
            in_poly = points_in_poly(np.stack([ap[candidates], si[candidates]], axis=1), local[list(_HEXAGON)])
            inside[candidates[~in_poly]] = False
        index = grid.reshape(-1, 3)[inside]
        target = labels[index[:, 2], index[:, 1], index[:, 0]]
        labels[index[:, 2], index[:, 1], index[:, 0]] = np.where(target == 0, label_from_level(vertebra.label), target)
    return labels
