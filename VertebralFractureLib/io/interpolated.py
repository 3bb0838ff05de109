"""What a CT resampled finer than it was acquired resolves, read from its voxels.

A CT written by another tool at a finer spacing than its scanner's slices (a 3 mm series put on a 1 mm grid, as
many research pipelines do before segmentation) still resolves only its slices, but its file says 1 mm and nothing
else: the endplates are then read as if resolved (:func:`VertebralFractureLib.keypoints.refine.endplate_edge`), the
quality gate's endplate check counts as decisive, and a height loss the slices cannot make out is graded (on the
real chest CT resampled to 1 mm, ``benchmarks/bench_real_variants.py --variants iso1``, a normal T6 graded 2 by a
plane 0.5 mm to the side). A DICOM series says its Slice Thickness and a NIfTI's sidecar may
(:func:`.images.read_image`); this module reads the rest from the voxels themselves.

Method. Interpolation leaves a signature no reconstructed CT has. Between two acquired planes, linear
interpolation writes every plane as a blend of its two neighbours on a straight line, so its second difference
along that axis is zero (up to the rounding of integer HU) where a scanner's plane carries its own noise and
texture; nearest-neighbour resampling repeats planes, so their first difference is zero. Per index axis, on tissue
voxels (-300 to 400 HU, where the CT's noise is; air and padding are flat in any image), the median absolute
second (and first) difference is taken plane by plane; where at least :data:`MIN_FLAT_SHARE` of the planes are flat
(under :data:`FLAT_FRACTION` of the 90th percentile, which is the acquired planes' level) the planes that are not
flat are the acquired ones, and the axis resolves the spacing times planes per acquired plane (planes / runs of
non-flat planes). Measured on the reference set (``benchmarks/bench_real_variants.py``): every real CT as stored
has no flat plane on any axis; the chest CT resampled to 1 mm has 67 % flat planes along z (every third: 3 mm),
the 3 mm sample CT resampled to 1 mm 66-67 % along every axis. Cubic or B-spline resampling leaves no such zeros and
is not detected: a file that says nothing keeps its spacing, or ``analyze --slice-thickness`` says it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

#: Tissue window (HU) whose voxels show the CT's noise (air, padding and metal are flat or saturated in any image).
TISSUE_HU = (-300.0, 400.0)
#: A plane is flat when its median absolute difference lies under this fraction of the 90th percentile over the
#: planes (the acquired planes' level) ...
FLAT_FRACTION = 0.15
#: ... or under this (HU: the rounding of integer voxels leaves up to 2 HU in a second difference of exact blends).
FLAT_FLOOR_HU = 2.0
#: An axis whose planes vary less than this (HU, 90th percentile) shows no noise to read (a masked or synthetic
#: image): nothing is concluded.
MIN_SCALE_HU = 6.0
#: Share of flat planes from which an axis counts as interpolated: one in three of a 2:1 linear upsampling
#: (the knots fall on alternate planes), two in three of 3:1; a reconstructed CT has none.
MIN_FLAT_SHARE = 0.3
#: Planes per acquired plane below this are not reported (a resampling by less than this changes little).
MIN_RATIO = 1.8
#: Fewest planes with enough tissue (each at least :data:`MIN_PLANE_VOXELS` voxels of it) to judge an axis.
MIN_PLANES = 12
MIN_PLANE_VOXELS = 200
#: About this many voxels are read per plane (a regular sub-sample of each plane: the statistic is a median).
SAMPLES_PER_PLANE = 5000


@dataclass(frozen=True)
class Interpolation:
    """What an interpolated CT resolves.

    Attributes:
        resolution: (x, y, z) mm along the image's index axes (the spacing where the axis is not interpolated).
        ratios: planes per acquired plane along each axis (1.0 where not interpolated).
        kinds: per axis ``"linear"``, ``"nearest"`` or None.
    """

    resolution: Tuple[float, float, float]
    ratios: Tuple[float, float, float]
    kinds: Tuple[Optional[str], Optional[str], Optional[str]]

    def describe(self) -> str:
        """One sentence for the warnings: which axes, how coarse."""
        names = ("first", "second", "third")
        parts = [f"{kind} blends of planes {ratio:.1f} apart along its {names[axis]} axis (it resolves "
                 f"{self.resolution[axis]:.1f} mm there)"
                 for axis, (kind, ratio) in enumerate(zip(self.kinds, self.ratios)) if kind is not None]
        return "the CT was resampled finer than it was acquired: its voxels are " + "; ".join(parts)


def _plane_medians(array: np.ndarray, order: int) -> np.ndarray:
    """Median absolute ``order``-th difference along axis 0, plane by plane, over tissue voxels (NaN: too few)."""
    n = array.shape[0]
    if n < order + 1:
        return np.full(0, np.nan)
    tissue = (array > TISSUE_HU[0]) & (array < TISSUE_HU[1])
    if order == 2:
        difference = np.abs(array[:-2] - 2.0 * array[1:-1] + array[2:])
        usable = tissue[:-2] & tissue[1:-1] & tissue[2:]
    else:
        difference = np.abs(array[1:] - array[:-1])
        usable = tissue[:-1] & tissue[1:]
    counts = usable.reshape(usable.shape[0], -1).sum(axis=1)
    with warnings.catch_warnings():  # planes without tissue are all NaN: they are set aside below
        warnings.simplefilter("ignore", RuntimeWarning)
        medians = np.nanmedian(np.where(usable, difference, np.nan).reshape(difference.shape[0], -1), axis=1)
    medians[counts < MIN_PLANE_VOXELS] = np.nan
    return medians


def _ratio(medians: np.ndarray) -> Optional[float]:
    """Planes per acquired plane from one axis' plane medians, or None when the axis is not interpolated."""
    values = medians[np.isfinite(medians)]
    if values.size < MIN_PLANES:
        return None
    scale = float(np.percentile(values, 90))
    if scale < MIN_SCALE_HU:
        return None
    flat = values < max(FLAT_FRACTION * scale, FLAT_FLOOR_HU)
    if flat.mean() < MIN_FLAT_SHARE:
        return None
    runs = int(np.count_nonzero(~flat[1:] & flat[:-1])) + int(not flat[0])  # runs of acquired (non-flat) planes
    ratio = values.size / max(runs, 1)
    return ratio if ratio >= MIN_RATIO else None


def interpolated_resolution(array: np.ndarray, spacing: Tuple[float, float, float]) -> Optional[Interpolation]:
    """What each index axis of a CT resolves, when its voxels show it was resampled finer (module doc), or None.

    Args:
        array: the CT, numpy ``[k, j, i]`` order (SimpleITK's array view), HU.
        spacing: (x, y, z) mm (SimpleITK order).

    Returns:
        The :class:`Interpolation`, or None when no axis is interpolated.
    """
    array = np.asarray(array)
    if array.ndim != 3:
        return None
    resolution, ratios, kinds = list(map(float, spacing)), [1.0, 1.0, 1.0], [None, None, None]
    for axis in range(3):  # SimpleITK axis x, y, z = numpy axis 2, 1, 0
        planes = np.moveaxis(array, 2 - axis, 0)
        stride = max(1, int(np.sqrt(planes.shape[1] * planes.shape[2] / SAMPLES_PER_PLANE)))
        planes = planes[:, ::stride, ::stride].astype(np.float32)
        for order, kind in ((2, "linear"), (1, "nearest")):
            ratio = _ratio(_plane_medians(planes, order))
            if ratio is not None:
                resolution[axis], ratios[axis], kinds[axis] = ratio * float(spacing[axis]), ratio, kind
                break
    if not any(kinds):
        return None
    return Interpolation(tuple(resolution), tuple(ratios), tuple(kinds))


def unrecorded_interpolation(image) -> Optional[Interpolation]:
    """:func:`interpolated_resolution` of a SimpleITK image that says nothing of what it resolves, else None.

    Only a 3D one-component image without :data:`.images.RESOLUTION_KEY` (no DICOM Slice Thickness, sidecar or
    given thickness) is read.
    """
    import SimpleITK as sitk

    from .images import RESOLUTION_KEY

    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1 or \
            image.HasMetaDataKey(RESOLUTION_KEY):
        return None
    return interpolated_resolution(sitk.GetArrayViewFromImage(image), image.GetSpacing())
