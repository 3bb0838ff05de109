"""Input checks: whether a CT volume (or a radiograph) is one the analysis can use.

Each check raises :class:`InputError` with a message that names the problem in the user's terms
(the file, the axis, the values), before any model runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List

import numpy as np

from .geometry import ImageGeometry

#: Voxel spacing outside this range (mm) is considered absurd for a CT.
SPACING_RANGE_MM = (0.1, 10.0)
#: The largest volume analysed in one piece (voxels); larger ones are refused.
MAX_VOXELS = 1024 * 1024 * 1200
#: The smallest extent along each axis (voxels) for a volume to hold a vertebra.
MIN_VOXELS_PER_AXIS = 8
#: The smallest radiograph side (pixels): three vertebrae at 2 mm per pixel.
MIN_RADIOGRAPH_PIXELS = 64
#: A volume in which at least this share of the voxels holds one and the same value above
#: :data:`MASK_FILL_ABOVE_HU` is masked (everything around one structure set to a fill value, e.g. a bone-only
#: crop at 0): on the real CTs of the reference set the most frequent value holds 0.2-1.3 % of the voxels, on the
#: masked VerSe crop 92 %.
MASKED_FRACTION = 0.5
#: Fill values at or below this (HU) are air or the padding outside the reconstructed circle (-1024, -2048, -3024),
#: which can cover a large share of a real CT and are not a mask.
MASK_FILL_ABOVE_HU = -900.0
#: Share of the voxels an air-valued fill must hold for the volume to be tried as a crop masked with air (the masked
#: VerSe crop: 92 %; padding outside the reconstructed circle covers about a fifth of a square slice).
AIR_MASKED_FRACTION = 0.8
#: Voxels read for the mask check (an evenly strided sample: the check stays cheap on a 512 x 512 x 1000 volume).
MASK_SAMPLE_VOXELS = 1_000_000


class InputError(ValueError):
    """An input the analysis cannot use; the message says what is wrong and what was expected."""


@dataclass
class CtCheck:
    """What :func:`check_ct` found (for the result's ``input`` block and warnings)."""

    geometry: ImageGeometry
    hu_min: float
    hu_max: float
    warnings: List[str]


def check_ct(array: np.ndarray, geometry: ImageGeometry, name: str = "input", *, masked: bool = False) -> CtCheck:
    """Check that an array with its geometry looks like a CT volume in Hounsfield units.

    Args:
        array: ``array[k, j, i]`` intensities.
        geometry: its geometry.
        name: how to call the input in messages (a file name).
        masked: the caller measures a CT masked to one vertebra (:mod:`VertebralFractureLib.shape.masked_ct`): the
            masking and the missing air or fat are expected.

    Raises:
        InputError: for a 2D image, a tiny axis, absurd spacing, a huge, empty or constant volume,
            non-finite values, intensities that are not Hounsfield units (MR, normalised data), or a masked
            volume (:func:`masked_fill`).
    """
    if array.ndim == 2 or geometry.dimension == 2 or (array.ndim == 3 and min(array.shape) == 1):
        raise InputError(
            f"{name}: this is a 2D image (shape {array.shape}); a CT volume is expected here. "
            "Lateral radiographs are analysed through the radiograph path."
        )
    if array.ndim != 3:
        raise InputError(f"{name}: expected a 3D volume, got an array of {array.ndim} dimensions {array.shape}")
    small = [axis for axis, n in zip("ijk", geometry.size) if n < MIN_VOXELS_PER_AXIS]
    if small:
        raise InputError(
            f"{name}: axis {', '.join(small)} has fewer than {MIN_VOXELS_PER_AXIS} voxels (size {geometry.size}); "
            "this cannot hold a vertebra"
        )
    low, high = SPACING_RANGE_MM
    if min(geometry.spacing) < low or max(geometry.spacing) > high:
        raise InputError(
            f"{name}: voxel spacing {tuple(round(s, 4) for s in geometry.spacing)} mm is outside the plausible "
            f"CT range {low}-{high} mm; check the file's header"
        )
    if array.size > MAX_VOXELS:
        raise InputError(
            f"{name}: {array.size / 1e6:.0f} million voxels is more than the {MAX_VOXELS / 1e6:.0f} million this tool "
            "analyses at once; crop the volume to the spine or resample it"
        )
    if array.size == 0:
        raise InputError(f"{name}: the volume is empty")
    if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
        raise InputError(f"{name}: the volume contains NaN or infinite values")
    hu_min, hu_max = float(array.min()), float(array.max())
    if hu_max - hu_min < 1e-6:
        raise InputError(f"{name}: the volume is constant (every voxel is {hu_min:g}); there is nothing to analyse")
    if hu_max - hu_min < 200:
        raise InputError(
            f"{name}: intensities span only {hu_min:g} to {hu_max:g}; this looks like normalised data, not a CT "
            "in Hounsfield units"
        )
    warnings: List[str] = []
    if hu_min > -200 and not masked:
        raise InputError(
            f"{name}: the lowest intensity is {hu_min:g}, but a CT in Hounsfield units has air or fat below -200; "
            "this looks like MR or data already rescaled (no HU)"
        )
    fill = None if masked else masked_fill(array)
    if fill is not None:
        value, fraction = fill
        raise InputError(
            f"{name}: {fraction:.0%} of the voxels hold exactly {value:g}: the CT looks masked (everything around one "
            "structure set to one value); the spine is found from the tissue around it and the endplates from the "
            "discs, so give the unmasked CT"
        )
    if hu_max < 150:
        raise InputError(
            f"{name}: the highest intensity is {hu_max:g} HU; no bone is in view (a CT of the spine has "
            "vertebrae above 150 HU)"
        )
    if max(geometry.resolved_mm) > 3.5:  # the slice thickness where the slices overlap (ImageGeometry.resolution)
        warnings.append(
            f"{name}: slices {max(geometry.resolved_mm):.1f} mm thick; heights are measured less accurately"
        )
    return CtCheck(geometry, hu_min, hu_max, warnings)


def masked_fill(array: np.ndarray, *, air: bool = False) -> tuple[float, float] | None:
    """``(fill value, share of the voxels)`` when the volume looks masked (:data:`MASKED_FRACTION`), else None.

    Read on an evenly strided sample of at most :data:`MASK_SAMPLE_VOXELS` voxels: a value that holds half of the
    volume is the sample's median, so only the median's share is counted.

    Args:
        array: the volume.
        air: also a fill at air or padding values (at most :data:`MASK_FILL_ABOVE_HU`), when it holds at least
            :data:`AIR_MASKED_FRACTION` of the voxels: a crop masked with air (-1000, -1024) rather than 0, which only
            a check of what is left (one vertebra, :mod:`VertebralFractureLib.shape.masked_ct`) tells from padding.
    """
    flat = np.asarray(array).reshape(-1)
    sample = flat[:: max(1, flat.size // MASK_SAMPLE_VOXELS)]
    value = float(np.median(sample))
    fraction = float(np.mean(sample == value))
    if value <= MASK_FILL_ABOVE_HU:
        return (value, fraction) if air and fraction >= AIR_MASKED_FRACTION else None
    return (value, fraction) if fraction >= MASKED_FRACTION else None


def check_radiograph(array: np.ndarray, name: str = "input") -> None:
    """Check that an array is a usable 2D radiograph.

    Raises:
        InputError: for a 3D volume, a tiny, empty or constant image, or non-finite values.
    """
    if array.ndim == 3 and min(array.shape) > 4:
        raise InputError(f"{name}: this is a 3D volume (shape {array.shape}); a 2D radiograph is expected here")
    if array.ndim == 3:
        array = array.mean(axis=-1) if array.shape[-1] <= 4 else array[0]
    if array.ndim != 2 or min(array.shape) < MIN_RADIOGRAPH_PIXELS:
        raise InputError(
            f"{name}: a lateral radiograph of at least {MIN_RADIOGRAPH_PIXELS} x {MIN_RADIOGRAPH_PIXELS} pixels "
            f"is expected, got shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise InputError(f"{name}: the image contains NaN or infinite values")
    if float(array.max()) - float(array.min()) < 1e-6:
        raise InputError(f"{name}: the image is constant; there is nothing to analyse")
