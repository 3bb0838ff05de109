"""Vertebra patches for the fracture classifier (Husseini et al. 2020 §3, "Data Preparation").

A spline through the spine is used to reformat the sagittal plane along it (here: the project's
straightening, :func:`VertebralFractureLib.spine.straighten`); from that plane a 112 x 112 patch at
1 x 1 mm is cut, centred on the vertebra's centroid, so the vertebrae above and below give context.
A second channel holds a Gaussian around the centroid to say which vertebra is meant.

The plane is the straightened volume's sagittal plane at the centroid's own lateral offset (the
mid-sagittal plane when the centre-line runs through the body), read with linear interpolation.
HU are clipped to ``[-1000, 2000]`` and mapped by ``(HU - 250) / 500``.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

#: Patch side in pixels (Husseini et al. 2020, §3: 112 x 112 at 1 x 1 mm).
PATCH_SIZE = 112
#: Side of the cached patches (pixels at 1 mm): a margin of 8 mm around the 112 mm crop for shifts.
CACHE_SIZE = 128
#: Pixel size of the patches in mm (Husseini et al. 2020, §3).
PATCH_SPACING_MM = 1.0
#: Half widths (antero-posterior, lateral) of the straightening used to cut patches, in mm.
STRAIGHTEN_HALF_WIDTH_MM = (CACHE_SIZE / 2 + 8.0, 12.0)
#: Standard deviation of the vertebra-marking Gaussian channel, mm.
GAUSSIAN_SIGMA_MM = 8.0
#: Straight extension of the curve beyond its ends, mm.
CURVE_MARGIN_MM = 64.0
#: Value outside the CT.
FILL_HU = -1024.0


def straighten_for_patches(image, curve, margin_mm: float = CURVE_MARGIN_MM):
    """Straighten a CT along a centre-line on the grid the patches are cut from (1 mm, wide enough).

    Args:
        image: SimpleITK CT (any orientation) or ``(array, ImageGeometry)``.
        curve: (N, 3) LPS points (e.g. the vertebral centroids: Husseini et al. 2020's "spline passing through the
            centroids"), a ``SpineCurve`` or a ``Centreline``.
        margin_mm: extend the curve straight beyond both ends, so the end vertebrae keep their context.

    """
    from ..spine import straighten

    points = getattr(curve, "points", curve)
    return straighten(image, points, spacing=PATCH_SPACING_MM, half_width_mm=STRAIGHTEN_HALF_WIDTH_MM,
                      fill=FILL_HU, margin_mm=margin_mm)


def normalise_hu(hu: np.ndarray) -> np.ndarray:
    """Map HU to the network's input range: ``(clip(HU, -1000, 2000) - 250) / 500``."""
    return ((np.clip(np.asarray(hu, dtype=np.float32), -1000.0, 2000.0) - 250.0) / 500.0).astype(np.float32)


def extract_patch(straightened, centroid_lps: np.ndarray, size: int = PATCH_SIZE,
                  spacing_mm: float = PATCH_SPACING_MM) -> np.ndarray:
    """Cut one sagittal patch (HU) centred on a vertebra (Husseini et al. 2020, §3).

    Args:
        straightened: a :class:`~VertebralFractureLib.spine.StraightenedSpine` with its volume.
        centroid_lps: vertebral-body centroid, LPS mm.
        size: patch side in pixels.
        spacing_mm: patch pixel size.

    Returns:
        float32 ``(size, size)`` HU: rows superior -> inferior, columns anterior -> posterior; pixel
        ``((size - 1) / 2, (size - 1) / 2)`` is the centroid.

    """
    from scipy.ndimage import map_coordinates

    st = straightened
    if st.volume is None:
        raise ValueError("the straightened spine holds no volume; straighten with with_volume=True")
    rows_cols, lateral = st.patient_to_mid_sagittal(np.asarray(centroid_lps, dtype=float).reshape(1, 3))
    row0, col0 = rows_cols[0]
    lat0 = np.clip((float(lateral[0]) + st.half_width_lateral) / st.spacing, 0, st.n_lats - 1)
    offsets = (np.arange(size) - (size - 1) / 2.0) * spacing_mm / st.spacing
    rr, cc = np.meshgrid(row0 + offsets, col0 + offsets, indexing="ij")
    coords = np.stack([rr, cc, np.full_like(rr, lat0)])
    return map_coordinates(st.volume, coords, order=1, mode="constant", cval=FILL_HU).astype(np.float32)


def gaussian_channel(size: int, centre: Tuple[float, float], sigma_px: float = GAUSSIAN_SIGMA_MM) -> np.ndarray:
    """The vertebra-of-interest marker: ``exp(-r^2 / 2 sigma^2)`` around ``centre`` (row, col)."""
    r = np.arange(size, dtype=np.float32)
    g_row = np.exp(-((r - centre[0]) ** 2) / (2 * sigma_px**2))
    g_col = np.exp(-((r - centre[1]) ** 2) / (2 * sigma_px**2))
    return (g_row[:, None] * g_col[None, :]).astype(np.float32)


def model_input(cached: np.ndarray, shift: Tuple[int, int] = (0, 0), size: int = PATCH_SIZE,
                flip: bool = False) -> np.ndarray:
    """Two-channel network input ``(2, size, size)`` from a normalised cached patch.

    Args:
        cached: normalised patch ``(S, S)`` centred on the centroid, ``S >= size``.
        shift: crop offset (rows, cols) in pixels from the centred crop (augmentation); the Gaussian
            follows the centroid.
        size: output side.
        flip: mirror superior <-> inferior (augmentation; keeps anterior / posterior).

    """
    cached = np.asarray(cached, dtype=np.float32)
    side = cached.shape[0]
    start = (side - size) // 2
    r0, c0 = start + int(shift[0]), start + int(shift[1])
    if r0 < 0 or c0 < 0 or r0 + size > side or c0 + size > cached.shape[1]:
        raise ValueError(f"shift {shift} leaves the cached {side} x {cached.shape[1]} patch")
    crop = cached[r0 : r0 + size, c0 : c0 + size]
    centre = ((side - 1) / 2.0 - r0, (cached.shape[1] - 1) / 2.0 - c0)
    marker = gaussian_channel(size, centre)
    out = np.stack([crop, marker])
    if flip:
        out = out[:, ::-1, :]
    return np.ascontiguousarray(out)
