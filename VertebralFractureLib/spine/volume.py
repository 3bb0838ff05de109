"""The centre-line network's input: any CT -> canonical orientation at 3 mm (Pisov et al. 2020, §5.1).

Fine images are box-averaged (``BinShrink``) before the linear resampling so thin structures do not alias.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from ..geometry import ImageGeometry

#: Resolution of the network input in mm (Pisov et al. 2020, §5.1).
NET_SPACING = 3.0


def prepare_volume(image, spacing: float = NET_SPACING) -> Tuple[np.ndarray, ImageGeometry]:
    """Canonical orientation at ``spacing`` mm.

    Args:
        image: SimpleITK CT image (HU), any orientation and spacing.
        spacing: target isotropic spacing in mm.

    Returns:
        ``(array[k, j, i] int16 HU, ImageGeometry)`` with identity direction.

    """
    import SimpleITK as sitk

    from ..io.images import geometry_of, resample_spacing, to_canonical

    old = np.asarray(image.GetSpacing())
    factors = [max(1, int(np.floor(spacing / s + 1e-6))) for s in old]
    if max(factors) > 1:
        # box averaging first, on the original grid (cheap: no copy of the full-size image);
        # BinShrink keeps the physical box (the origin moves to the first bin's centre)
        image = sitk.BinShrink(image, factors)
    canonical = to_canonical(image)
    resampled = resample_spacing(canonical, (spacing,) * 3, default=-1024.0)
    array = sitk.GetArrayFromImage(resampled)
    array = np.clip(np.rint(array), -1024, 3071).astype(np.int16)
    return array, geometry_of(resampled)
