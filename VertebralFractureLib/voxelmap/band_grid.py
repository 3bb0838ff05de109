"""The band grid: a regular LPS grid around the spine centre-line on which voxels are classified.

Nicolaes et al. 2019, §3 resamples the whole CT to 1 mm^3 and classifies every voxel. On a CPU that is far too slow
for a 512 x 512 x 300 CT, so here (a documented deviation) only voxels within ``band_mm`` of the
spine centre-line are classified, on an identity-direction LPS grid of ``spacing`` mm (2 mm by
default, coarser than Nicolaes et al. 2019's 1 mm). The CT is resampled onto this grid plus a context margin of
:data:`~VertebralFractureLib.voxelmap.network.MARGIN` voxels each side (the network's receptive
field), with 2 x 2 x 2 supersampling against aliasing, and scaled to a fixed HU window (instead
of Nicolaes et al. 2019's per-image zero mean / unit variance, which would depend on how much of the band is bone).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..geometry import ImageGeometry
from .network_constants import FACTOR, MARGIN

#: Intensity scaling: ``(clip(HU, *HU_WINDOW) - HU_CENTRE) / HU_SCALE``.
HU_WINDOW = (-1000.0, 1500.0)
HU_CENTRE = 100.0
HU_SCALE = 400.0
#: Default voxel size (mm) and band half-width (mm).
DEFAULT_SPACING = 2.0
DEFAULT_BAND_MM = 25.0


@dataclass
class BandGrid:
    """A regular LPS grid around a centre-line.

    Attributes:
        geometry: the output grid (identity direction); ``size`` is a multiple of 3 per axis.
        mask: ``[k, j, i]`` bool, voxels within the band (the ones classified).
        arc_mm: ``[k, j, i]`` arc length (mm from the first centre-line point) of the nearest
            centre-line point, NaN outside the band.
        margin: context voxels each side added by :func:`sample_context`.

    """

    geometry: ImageGeometry
    mask: np.ndarray
    arc_mm: np.ndarray
    margin: int = MARGIN

    @property
    def shape(self) -> tuple:
        """Array shape ``(k, j, i)`` of the output grid."""
        return tuple(int(s) for s in reversed(self.geometry.size))

    def context_geometry(self) -> ImageGeometry:
        """Geometry of the input grid (the output grid plus ``margin`` voxels each side)."""
        g = self.geometry
        origin = np.asarray(g.origin) - self.margin * np.asarray(g.spacing)
        size = [int(s) + 2 * self.margin for s in g.size]
        return ImageGeometry(size, g.spacing, origin, np.eye(3))


def densify(points: np.ndarray, step_mm: float = 0.5) -> tuple:
    """Points every ``step_mm`` or closer along a polyline, and their arc lengths (mm).

    Returns:
        ``(points (M, 3), arc (M,))``.

    """
    points = np.asarray(points, dtype=float).reshape(-1, 3)
    if len(points) == 1:
        return points, np.zeros(1)
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    if arc[-1] <= 0:
        return points[:1], np.zeros(1)
    samples = np.linspace(0.0, arc[-1], max(2, int(np.ceil(arc[-1] / step_mm)) + 1))
    dense = np.stack([np.interp(samples, arc, points[:, a]) for a in range(3)], axis=1)
    return dense, samples


def image_bounds(image) -> tuple:
    """LPS bounding box ``(low, high)`` of a SimpleITK image's voxel centres."""
    from ..io.images import geometry_of

    geometry = geometry_of(image)
    corners = np.array(np.meshgrid(*[[0, s - 1] for s in geometry.size], indexing="ij")).reshape(3, -1).T
    points = geometry.index_to_lps(corners)
    return points.min(axis=0), points.max(axis=0)


def band_grid(
    centreline_points: np.ndarray,
    spacing: float = DEFAULT_SPACING,
    band_mm: float = DEFAULT_BAND_MM,
    bounds: Optional[tuple] = None,
) -> BandGrid:
    """The grid of voxels within ``band_mm`` of the centre-line (polyline through the points).

    Args:
        centreline_points: (N, 3) LPS mm, ordered along the spine.
        spacing: voxel size in mm (isotropic).
        band_mm: half-width of the band.
        bounds: optional LPS box ``(low, high)`` (e.g. :func:`image_bounds`) to clip the grid to.

    Raises:
        ValueError: for an empty centre-line or a band outside ``bounds``.

    """
    from scipy.spatial import cKDTree

    points = np.asarray(centreline_points, dtype=float).reshape(-1, 3)
    if len(points) == 0 or not np.all(np.isfinite(points)):
        raise ValueError("the centre-line has no (finite) points")
    dense, arc = densify(points, min(0.5, spacing / 2))
    low, high = dense.min(axis=0) - band_mm, dense.max(axis=0) + band_mm
    if bounds is not None:
        low, high = np.maximum(low, bounds[0]), np.minimum(high, bounds[1])
        if np.any(high <= low):
            raise ValueError("the centre-line band lies outside the image")
    size = np.ceil((high - low) / spacing).astype(int) + 1
    size = FACTOR * np.ceil(size / FACTOR).astype(int)
    centre = 0.5 * (low + high)
    origin = centre - 0.5 * (size - 1) * spacing
    geometry = ImageGeometry([int(s) for s in size], [float(spacing)] * 3, origin, np.eye(3))
    k, j, i = np.meshgrid(*[np.arange(n) for n in size[::-1]], indexing="ij")
    xyz = np.stack([i, j, k], axis=-1).reshape(-1, 3) * spacing + origin
    distance, nearest = cKDTree(dense).query(xyz, distance_upper_bound=band_mm + 1e-6)
    inside = np.isfinite(distance)
    arc_mm = np.full(len(xyz), np.nan, dtype=np.float32)
    arc_mm[inside] = arc[nearest[inside]]
    shape = tuple(size[::-1])
    return BandGrid(geometry, inside.reshape(shape), arc_mm.reshape(shape))


def normalise(hu: np.ndarray) -> np.ndarray:
    """HU to the network's input scale (see :data:`HU_WINDOW`)."""
    hu = np.clip(np.asarray(hu, dtype=np.float32), *HU_WINDOW)
    return (hu - HU_CENTRE) / HU_SCALE


def sample_context(image, grid: BandGrid, supersample: int = 2) -> np.ndarray:
    """The CT on the grid plus its context margin, normalised: float32 ``[k, j, i]``.

    Args:
        image: SimpleITK CT in HU (any orientation and spacing).
        grid: from :func:`band_grid`.
        supersample: sub-voxel samples per axis averaged per voxel (anti-aliasing).

    """
    import SimpleITK as sitk

    g = grid.context_geometry()
    n = max(1, int(supersample))
    fine_spacing = np.asarray(g.spacing) / n
    fine_origin = np.asarray(g.origin) - 0.5 * np.asarray(g.spacing) + 0.5 * fine_spacing
    fine_size = [int(s) * n for s in g.size]
    fine = sitk.Resample(image, fine_size, sitk.Transform(), sitk.sitkLinear, fine_origin.tolist(),
                         fine_spacing.tolist(), np.eye(3).flatten().tolist(), -1024.0, sitk.sitkFloat32)
    array = sitk.GetArrayFromImage(fine)
    if n > 1:
        k, j, i = (s // n for s in array.shape)
        array = array.reshape(k, n, j, n, i, n).mean(axis=(1, 3, 5))
    return normalise(array)
