"""Targets: anchor objectness, encoded keypoints (Pisov et al. 2020, Fig. 3), level heatmaps (Gartland et al. 2025).

Detection targets follow Pisov et al. 2020, Fig. 3: the axis-aligned box of each vertebra's six keypoints is
compared with every anchor; objectness is 1 where IoU > 0.5 and, so that every vertebra has a
positive, at the best anchor of each vertebra. An anchor matching two vertebrae takes the one it
overlaps most. Positives carry the eq. 2 encoding of their vertebra's keypoints and the weight
1 / G of eq. 3.

Level targets follow Gartland et al. 2025, §2: one Gaussian heatmap per level channel with its hotspot at the
vertebral centroid (here: the mean of the six keypoints).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from ...keypoints.anchors import (  # noqa: F401 (keypoint_centroids re-exported)
    centre_size_to_corners,
    encode,
    grid_anchors,
    iou,
    keypoint_boxes,
    keypoint_centroids,
)
from ...levels import LABEL_LEVELS, TRANSITIONAL, normalise_level  # noqa: F401 (re-exported)

#: IoU above which an anchor is positive (Pisov et al. 2020, Fig. 3d).
POSITIVE_IOU = 0.5
#: Negatives within this distance (pixels) of a visible but unannotated vertebra are not penalised.
IGNORE_RADIUS_PX = 14.0


@dataclass
class DetectionTargets:
    """Per-anchor targets on an output grid (A anchors per cell, Hg x Wg cells).

    Attributes:
        objectness: (A, Hg, Wg) 0/1.
        encoded: (A, Hg, Wg, 12) eq. 2 encoding of the assigned vertebra's keypoints (x, y pairs).
        weight: (A, Hg, Wg) 1 / G of the assigned vertebra at positives, 0 elsewhere.
        assigned: (A, Hg, Wg) index of the assigned vertebra, -1 at negatives.
        valid: (A, Hg, Wg) 1 where the objectness counts, 0 at negatives near an ignore point
            (a visible but unannotated vertebra).

    """

    objectness: np.ndarray
    encoded: np.ndarray
    weight: np.ndarray
    assigned: np.ndarray
    valid: np.ndarray


def detection_targets(
    keypoints: np.ndarray,
    genant: Sequence[float],
    grid_shape: Tuple[int, int],
    stride: int,
    shapes: np.ndarray,
    positive_iou: float = POSITIVE_IOU,
    ignore: Optional[np.ndarray] = None,
    ignore_radius: float = IGNORE_RADIUS_PX,
) -> DetectionTargets:
    """Objectness, encoded keypoints and eq. 3 weights for one image.

    Args:
        keypoints: (n, 6, 2) ``[column, row]`` pixels of the image (n may be 0).
        genant: G of each vertebra (Pisov et al. 2020, eq. 1); the eq. 3 weight is 1 / G.
        grid_shape: output grid (rows, columns).
        stride: input pixels per output cell.
        shapes: (A, 2) anchor widths and heights in pixels.
        positive_iou: IoU above which an anchor is positive.
        ignore: (m, 2) ``[column, row]`` centres of visible but unannotated vertebrae.
        ignore_radius: negatives whose centre lies this close to an ignore point do not count.

    """
    anchors = grid_anchors(grid_shape, stride, shapes)
    count = anchors.shape[0]
    objectness = np.zeros((count, *grid_shape), dtype=np.float32)
    encoded = np.zeros((count, *grid_shape, 12), dtype=np.float32)
    weight = np.zeros((count, *grid_shape), dtype=np.float32)
    assigned = np.full((count, *grid_shape), -1, dtype=np.int64)
    valid = np.ones((count, *grid_shape), dtype=np.float32)
    if ignore is not None and len(ignore):
        centres = anchors[0, ..., :2]
        distance = np.min(
            np.linalg.norm(centres[None] - np.asarray(ignore, dtype=np.float64).reshape(-1, 1, 1, 2), axis=-1), axis=0
        )
        valid[:, distance < ignore_radius] = 0.0
    keypoints = np.asarray(keypoints, dtype=np.float64).reshape(-1, 6, 2)
    if len(keypoints) == 0:
        return DetectionTargets(objectness, encoded, weight, assigned, valid)
    flat = anchors.reshape(-1, 4)
    overlaps = iou(centre_size_to_corners(flat), keypoint_boxes(keypoints))  # (N, n)
    best_vertebra = overlaps.argmax(axis=1)
    best_overlap = overlaps.max(axis=1)
    positive = best_overlap > positive_iou
    forced = overlaps.argmax(axis=0)  # best anchor of every vertebra
    positive[forced] = True
    best_vertebra[forced] = np.arange(len(keypoints))
    index = np.flatnonzero(positive)
    vertebra = best_vertebra[index]
    genant = np.asarray(genant, dtype=np.float64).reshape(-1)
    objectness.reshape(-1)[index] = 1.0
    weight.reshape(-1)[index] = 1.0 / np.clip(genant[vertebra], 0.05, None)
    assigned.reshape(-1)[index] = vertebra
    encoded.reshape(-1, 12)[index] = encode(keypoints[vertebra], flat[index]).reshape(-1, 12)
    valid.reshape(-1)[index] = 1.0
    return DetectionTargets(objectness, encoded, weight, assigned, valid)


def gaussian_heatmaps(
    centroids: np.ndarray,
    levels: Sequence[str],
    grid_shape: Tuple[int, int],
    cell_mm: float,
    sigma_mm: float = 6.0,
    channels: Sequence[str] = LABEL_LEVELS,
) -> np.ndarray:
    """Per-level Gaussian heatmaps, Gartland et al. 2025, §2: (C, Hg, Wg), peak 1 at each labelled centroid.

    Args:
        centroids: (n, 2) ``[column, row]`` in mm from the image origin (pixel centre 0).
        levels: level name of each centroid; levels outside ``channels`` are ignored.
        grid_shape: heatmap rows and columns.
        cell_mm: heatmap pixel size in mm; heatmap pixel ``k`` is the block of 1 mm pixels
            ``[k * cell_mm, (k + 1) * cell_mm)``, centred at ``k * cell_mm + (cell_mm - 1) / 2``.
        sigma_mm: Gaussian width.
        channels: level of each channel.

    """
    out = np.zeros((len(channels), *grid_shape), dtype=np.float32)
    rows, cols = grid_shape
    offset = (cell_mm - 1.0) / 2.0
    y = np.arange(rows)[:, None] * cell_mm + offset
    x = np.arange(cols)[None, :] * cell_mm + offset
    index = {name: i for i, name in enumerate(channels)}
    for centre, level in zip(np.asarray(centroids, dtype=np.float64).reshape(-1, 2), levels):
        channel = index.get(normalise_level(level))
        if channel is None:
            continue
        d2 = (x - centre[0]) ** 2 + (y - centre[1]) ** 2
        out[channel] = np.maximum(out[channel], np.exp(-d2 / (2 * sigma_mm**2)))
    return out


def layer_weights(labelled: np.ndarray, channels: Sequence[str] = LABEL_LEVELS) -> np.ndarray:
    """Per-channel weight class of Gartland et al. 2025, appendix B, loss L2: 1 normal, 5 empty, 0 unlabelled-visible.

    Gartland et al. 2025 L2: a channel whose level is labelled keeps weight 1 (10 near the centroid, applied per
    pixel in the loss); an empty channel whose neighbours in the level order are empty too gets
    weight 5 (the level is not in view); an empty channel next to a labelled one gets weight 0 (it
    may be a visible but unlabelled vertebra at the end of the labelled run, so it is not
    penalised). One refinement for transitional levels: an empty T13 (L6) channel lying *between*
    two labelled levels (T12 and L1; L5 and S1) is known to be absent and gets weight 5.

    Args:
        labelled: (C,) bool, whether the channel's level has a centroid in this image.
        channels: level of each channel.

    Returns:
        (C,) float32 weights.

    """
    labelled = np.asarray(labelled, dtype=bool)
    count = len(labelled)
    weights = np.ones(count, dtype=np.float32)
    for j in range(count):
        if labelled[j]:
            continue
        before = labelled[j - 1] if j > 0 else False
        after = labelled[j + 1] if j + 1 < count else False
        if channels[j] in TRANSITIONAL and before and after:
            weights[j] = 5.0
        elif before or after:
            weights[j] = 0.0
        else:
            weights[j] = 5.0
    return weights


def labelled_channels(levels: Sequence[str], channels: Sequence[str] = LABEL_LEVELS) -> np.ndarray:
    """(C,) bool: which channels have a labelled vertebra."""
    present = {normalise_level(name) for name in levels}
    return np.array([name in present for name in channels], dtype=bool)


def genant_of(keypoints: np.ndarray, spacing: Optional[Tuple[float, float]] = None) -> np.ndarray:
    """G of each vertebra from 2D keypoints (for the eq. 3 weights only; reporting uses genant.py)."""
    from ...genant import GenantError, genant_index, heights

    scale = np.asarray(spacing if spacing is not None else (1.0, 1.0), dtype=np.float64)
    values = []
    for points in np.asarray(keypoints, dtype=np.float64).reshape(-1, 6, 2):
        try:
            values.append(genant_index(heights(points * scale)))
        except GenantError:
            values.append(1.0)
    return np.asarray(values, dtype=np.float64)
