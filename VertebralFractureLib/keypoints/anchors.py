"""Anchor boxes, keypoint boxes, IoU and the eq. 2 keypoint encoding (Pisov et al. 2020, §3.2).

Coordinates are 2D ``[column, row]`` = ``(x, y)`` in pixels of the mid-sagittal image (1 mm per
pixel by default), pixel ``k``'s centre at ``k``. Columns run anterior -> posterior, rows superior
-> inferior. Boxes are ``(x0, y0, x1, y1)``.

Anchors: scales 17, 23, 28, 35 mm and aspect ratios 0.8, 1.1, 1.3, 2 (Pisov et al. 2020, §3.2), 16 shapes per
location. **Aspect ratio here is width / height** (anterior-posterior extent over cranio-caudal
extent): a shape of scale ``s`` and ratio ``r`` has ``w = s * sqrt(r)``, ``h = s / sqrt(r)``
(area ``s**2``), so a lumbar body (about 45 x 27 mm) matches ratio 1.3-2 and a compressed body
with a larger ratio still finds an anchor.
"""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

#: Anchor scales in mm (Pisov et al. 2020, §3.2).
SCALES_MM: Tuple[float, ...] = (17.0, 23.0, 28.0, 35.0)
#: Anchor aspect ratios, width / height (Pisov et al. 2020, §3.2).
ASPECT_RATIOS: Tuple[float, ...] = (0.8, 1.1, 1.3, 2.0)


def anchor_shapes(
    scales_mm: Sequence[float] = SCALES_MM,
    ratios: Sequence[float] = ASPECT_RATIOS,
    spacing_mm: float = 1.0,
) -> np.ndarray:
    """Widths and heights of the anchor shapes in pixels, shape (A, 2), scale-major order.

    Args:
        scales_mm: square-root areas in mm.
        ratios: width / height.
        spacing_mm: pixel size of the image the anchors are used on.

    """
    shapes = [
        (s * np.sqrt(r) / spacing_mm, s / np.sqrt(r) / spacing_mm) for s in scales_mm for r in ratios
    ]
    return np.asarray(shapes, dtype=np.float64)


def grid_centres(grid_shape: Tuple[int, int], stride: int) -> np.ndarray:
    """Pixel coordinates (x, y) of the output-grid cells' centres, shape (Hg, Wg, 2).

    Output cell ``(i, j)`` covers input pixels ``[stride*i, stride*i + stride)``; its centre lies at
    ``stride*i + (stride - 1) / 2``.
    """
    rows, cols = grid_shape
    offset = (stride - 1) / 2.0
    y = np.arange(rows) * stride + offset
    x = np.arange(cols) * stride + offset
    xx, yy = np.meshgrid(x, y)
    return np.stack([xx, yy], axis=-1)


def grid_anchors(grid_shape: Tuple[int, int], stride: int, shapes: np.ndarray) -> np.ndarray:
    """Anchor boxes (cx, cy, w, h) for every shape and cell, shape (A, Hg, Wg, 4)."""
    centres = grid_centres(grid_shape, stride)
    count = len(shapes)
    out = np.empty((count, *grid_shape, 4), dtype=np.float64)
    out[..., 0] = centres[None, ..., 0]
    out[..., 1] = centres[None, ..., 1]
    out[..., 2] = shapes[:, 0, None, None]
    out[..., 3] = shapes[:, 1, None, None]
    return out


def keypoint_boxes(keypoints: np.ndarray) -> np.ndarray:
    """Axis-aligned bounding boxes (x0, y0, x1, y1) of six keypoints (Pisov et al. 2020, Fig. 3b).

    Args:
        keypoints: (..., 6, 2) points ``[column, row]``.

    Returns:
        (..., 4) boxes.

    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    return np.concatenate([keypoints.min(axis=-2), keypoints.max(axis=-2)], axis=-1)


def centre_size_to_corners(boxes: np.ndarray) -> np.ndarray:
    """(cx, cy, w, h) -> (x0, y0, x1, y1)."""
    boxes = np.asarray(boxes, dtype=np.float64)
    half = boxes[..., 2:4] / 2.0
    return np.concatenate([boxes[..., :2] - half, boxes[..., :2] + half], axis=-1)


def iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Pairwise intersection-over-union of corner boxes: (N, 4) x (M, 4) -> (N, M)."""
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def encode(keypoints: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Encode keypoints relative to anchors, Pisov et al. 2020, eq. 2.

    ``e_x = (g_x - a_x) / a_w``, ``e_y = (g_y - a_y) / a_h``.

    Args:
        keypoints: (..., K, 2) global ``[x, y]``.
        anchors: (..., 4) anchors (cx, cy, w, h), broadcastable against ``keypoints[..., 0, :]``.

    Returns:
        (..., K, 2) encoded coordinates.

    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    anchors = np.asarray(anchors, dtype=np.float64)[..., None, :]
    return (keypoints - anchors[..., 0:2]) / anchors[..., 2:4]


def decode(encoded: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Inverse of :func:`encode`: ``g = a + e * (a_w, a_h)``."""
    encoded = np.asarray(encoded, dtype=np.float64)
    anchors = np.asarray(anchors, dtype=np.float64)[..., None, :]
    return anchors[..., 0:2] + encoded * anchors[..., 2:4]


def keypoint_centroids(keypoints: np.ndarray) -> np.ndarray:
    """Vertebral-body centre in 2D: the mean of the six keypoints, (n, 2)."""
    return np.asarray(keypoints, dtype=np.float64).reshape(-1, 6, 2).mean(axis=1)
