"""3D anatomical cues for level identification: rib / pelvis bone bands along the straightened spine.

The 2D level heatmaps of Gartland et al. 2025 see only the mid-sagittal image, where thoracic and lumbar vertebrae
look alike; in CT the decisive cues are lateral (Pisov et al. 2020, §3.2 labels with the help of the whole
field of view): ribs articulate with T1-T12 (the last rib-bearing vertebra is T12), the iliac wings
flank S1 and L5, the transverse processes of the lumbar spine are short. This module summarises
the straightened volume (:class:`~VertebralFractureLib.spine.StraightenedSpine`, ``[row, col,
lat]``) into a per-row *bone-band profile*: the fraction of bone voxels (> ``BONE_HU``) in lateral
bands on both sides of the vertebral column, separately anterior and posterior of the centre-line.
Per vertebra, the profile averaged over its rows, above and below it, plus its size (height and
depth from the keypoints, absolute and relative to the case's median) form a feature vector that
:mod:`.levelnet` maps to level probabilities (emission scores of the consecutive-order decoding of
:mod:`.labelling`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np

#: Bone threshold in HU.
BONE_HU = 200.0
#: Lateral bands (mm from the mid-sagittal plane, both sides together).
LATERAL_BANDS_MM: Tuple[Tuple[float, float], ...] = ((15.0, 30.0), (30.0, 45.0), (45.0, 60.0))
#: Windows above / below a vertebra (mm beyond its top / bottom keypoint).
NEIGHBOUR_WINDOW_MM = (5.0, 35.0)
#: Number of per-vertebra features (see :func:`vertebra_features`).
N_FEATURES = 3 * 2 * len(LATERAL_BANDS_MM) + 4


@dataclass
class RowProfile:
    """Bone-band fractions per row of a straightened volume.

    Attributes:
        values: (rows, 2 * len(LATERAL_BANDS_MM)) fractions in [0, 1]: bands anterior, then posterior.
        spacing: row spacing in mm (row ``k`` lies ``k * spacing`` mm along the curve).

    """

    values: np.ndarray
    spacing: float

    def window(self, start_mm: float, stop_mm: float) -> np.ndarray:
        """Mean profile over rows whose position lies in ``[start_mm, stop_mm]`` (zeros outside the volume)."""
        rows = self.values.shape[0]
        i0 = int(np.floor(start_mm / self.spacing))
        i1 = int(np.ceil(stop_mm / self.spacing)) + 1
        out = np.zeros(self.values.shape[1])
        lo, hi = max(0, i0), min(rows, i1)
        if hi > lo:
            out = self.values[lo:hi].sum(axis=0) / max(i1 - i0, 1)
        return out

    def save(self, path) -> None:
        """Write as ``.npz``."""
        np.savez_compressed(path, values=self.values.astype(np.float32), spacing=np.float64(self.spacing))

    @classmethod
    def load(cls, path) -> RowProfile:
        """Read a :meth:`save` file."""
        with np.load(path) as data:
            return cls(data["values"].astype(np.float64), float(data["spacing"]))


def row_profile(
    volume: np.ndarray, spacing: float, half_width_ap: float, half_width_lateral: float, bone_hu: float = BONE_HU
) -> RowProfile:
    """Bone-band profile of a straightened volume ``[row, col, lat]`` (cols anterior -> posterior).

    Bands beyond the volume's lateral extent stay empty (the pipeline straightens 60 mm each side).
    """
    volume = np.asarray(volume)
    rows, cols, lats = volume.shape
    lateral = np.abs((np.arange(lats) - (lats - 1) / 2.0) * spacing)
    ap = np.arange(cols) * spacing - half_width_ap
    bone = volume > bone_hu
    values = []
    for half in (ap < 0, ap >= 0):
        part = bone[:, half, :]
        for lo, hi in LATERAL_BANDS_MM:
            band = (lateral >= lo) & (lateral < hi)
            if band.sum() == 0:
                values.append(np.zeros(rows))
                continue
            values.append(part[:, :, band].mean(axis=(1, 2)))
    del half_width_lateral
    return RowProfile(np.stack(values, axis=1), float(spacing))


def profile_of_spine(spine) -> RowProfile:
    """:func:`row_profile` of a :class:`~VertebralFractureLib.spine.StraightenedSpine` with a volume."""
    if spine.volume is None:
        raise ValueError("the straightened spine holds no volume")
    return row_profile(spine.volume, spine.spacing, spine.half_width_ap, spine.half_width_lateral)


def vertebra_features(keypoints_mm: np.ndarray, profile: RowProfile) -> np.ndarray:
    """Feature vectors (n, N_FEATURES) of vertebrae given by keypoints in mm ``[column, row]``.

    Per vertebra: the bone-band profile over its own rows, over ``NEIGHBOUR_WINDOW_MM`` above and
    below; its height (mean of the three heights) and depth (mean of the end-plate lengths) in mm
    and both relative to the median of the case.
    """
    points = np.asarray(keypoints_mm, dtype=np.float64).reshape(-1, 6, 2)
    n = len(points)
    if n == 0:
        return np.zeros((0, N_FEATURES))
    # genant.KEYPOINT_NAMES order: (superior, inferior) of anterior, middle, posterior
    heights = np.linalg.norm(points[:, 1::2] - points[:, 0::2], axis=2).mean(axis=1)
    depths = 0.5 * (
        np.linalg.norm(points[:, 0] - points[:, 4], axis=1) + np.linalg.norm(points[:, 1] - points[:, 5], axis=1)
    )
    med_h = float(np.median(heights)) if n else 1.0
    med_d = float(np.median(depths)) if n else 1.0
    out = np.zeros((n, N_FEATURES))
    near, far = NEIGHBOUR_WINDOW_MM
    for k in range(n):
        top, bottom = float(points[k, :, 1].min()), float(points[k, :, 1].max())
        own = profile.window(top, bottom)
        above = profile.window(top - far, top - near)
        below = profile.window(bottom + near, bottom + far)
        size = [heights[k] / 25.0, depths[k] / 40.0, heights[k] / max(med_h, 1e-3), depths[k] / max(med_d, 1e-3)]
        out[k] = np.concatenate([own, above, below, size])
    return out


#: Straightening of the profile cache (coarser than the detector's image: only band fractions are needed).
PROFILE_SPACING_MM = 2.0
PROFILE_HALF_WIDTH_MM = (48.0, 60.0)


def cached_profile(ct_path, curve, cache_path=None) -> RowProfile:
    """Profile of a CT straightened on ``curve`` (LPS points, as in a sample's ``meta["curve"]``).

    The straightening starts at the curve's first point like the sample's, so profile rows line up
    with the sample's image rows (``PROFILE_SPACING_MM`` apart). Cached as ``.npz`` when a path is given.
    """
    from pathlib import Path

    from ..io.images import read_image
    from ..spine import straighten

    if cache_path is not None and Path(cache_path).exists():
        return RowProfile.load(cache_path)
    spine = straighten(
        read_image(ct_path), np.asarray(curve, dtype=np.float64), spacing=PROFILE_SPACING_MM,
        half_width_mm=PROFILE_HALF_WIDTH_MM,
    )
    profile = profile_of_spine(spine)
    if cache_path is not None:
        Path(cache_path).parent.mkdir(parents=True, exist_ok=True)
        profile.save(cache_path)
    return profile
