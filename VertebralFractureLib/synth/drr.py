"""Lateral digitally reconstructed radiograph (DRR) of a CT volume.

Parallel-beam line integrals of the linear attenuation along the left-right axis,
``P = sum_i mu(HU) * dx`` with ``mu = mu_water * max(0, 1 + g HU / 1000)`` (g = ``BONE_GAIN`` for
HU > 0, 1 otherwise); ``P`` is the negative log of the transmitted fraction, so displaying it,
windowed like a film after the dynamic-range compression and unsharp masking of digital
radiography processing, makes bone bright and air dark.

Radiograph pixel frame (the project's ``"pixel"`` frame, points ``[column, row]``): row 0 is the
most superior line and rows run inferiorly; column 0 is the most anterior line and columns run
posteriorly (the patient faces left). Pixels are square, ``pixel_mm`` wide in the isocentre
plane (so heights measured in pixels x spacing are true mm at the spine). Parallel beam: for a
point at LPS (x, y, z), ``column = (y - y0) / pixel_mm``, ``row = (z_top - z) / pixel_mm``.
Point source (``sid_mm``, on the patient's right, detector on the left): y and z are first
taken where the ray through the point crosses the isocentre plane,
``y' = y_c + (y - y_c) SOD / (x - x_source)`` (same for z), which magnifies the far side of
the body more than the near side, as in a real radiograph (double endplate contours away from
the central ray).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .grid import Grid

#: Linear attenuation of water at about 70 keV, per mm.
MU_WATER_PER_MM = 0.019
#: Bone attenuates relatively more at radiographic tube voltages than at CT energies
#: (photoelectric effect of calcium): HU above 0 are scaled by this factor. Cortical bone is
#: about 2.5 x water at ~70 keV (CT) but about 4.8 x water at ~40 keV (the mean energy of a
#: 70-80 kVp radiograph; NIST XCOM mass attenuation coefficients), hence about 2.5.
BONE_GAIN = 2.5
#: Digital radiography processing: dynamic-range compression (subtract this share of a wide
#: Gaussian blur, sigma in mm) then unsharp masking (weight, sigma in mm).
EQUALISE_WEIGHT, EQUALISE_SIGMA_MM = 0.6, 40.0
UNSHARP_WEIGHT, UNSHARP_SIGMA_MM = 1.0, 8.0


@dataclass(frozen=True)
class DRRGeometry:
    """Mapping from LPS mm to radiograph pixels.

    Attributes:
        y0, z_top: LPS y of column 0 and z of row 0, in the isocentre plane.
        pixel_mm: square pixel size in the isocentre plane (mm at the spine, not at the detector).
        shape: (rows, columns).
        source: None for a parallel beam; else (x of the point source, y and z of the central
            ray, source-isocentre distance SOD) for a point source on the patient's right.

    """

    y0: float
    z_top: float
    pixel_mm: float
    shape: tuple
    source: Optional[tuple] = None

    def to_isocentre(self, points: np.ndarray) -> tuple:
        """(y, z) where the ray through each LPS point crosses the isocentre plane."""
        points = np.asarray(points, float)
        y, z = points[..., 1], points[..., 2]
        if self.source is None:
            return y, z
        x_source, y_centre, z_centre, sod = self.source
        scale = sod / (points[..., 0] - x_source)
        return y_centre + (y - y_centre) * scale, z_centre + (z - z_centre) * scale

    def project(self, points: np.ndarray) -> np.ndarray:
        """LPS points (..., 3) to pixel ``[column, row]`` (..., 2)."""
        y, z = self.to_isocentre(points)
        return np.stack([(y - self.y0) / self.pixel_mm, (self.z_top - z) / self.pixel_mm], -1)


def _attenuation(plane: np.ndarray, bone_gain: float) -> np.ndarray:
    """Linear attenuation (per mm) of HU values, bone scaled by ``bone_gain``."""
    plane = np.where(plane > 0, plane * np.float32(bone_gain), plane)
    return np.clip(plane + np.float32(1000.0), 0, None) * np.float32(MU_WATER_PER_MM / 1000.0)


def line_integrals(hu: np.ndarray, spacing_x: float, bone_gain: float = 1.0) -> np.ndarray:
    """Attenuation line integrals along x of an ``array[k, j, i]`` HU volume; shape (nz, ny).

    ``bone_gain`` scales positive HU (bone) before the conversion to attenuation.
    """
    total = np.zeros(hu.shape[:2], np.float64)
    for k in range(hu.shape[0]):
        total[k] = _attenuation(hu[k], bone_gain).sum(axis=1, dtype=np.float64)
    return total * spacing_x


def _cone_beam(hu: np.ndarray, grid: Grid, geometry: DRRGeometry, slab_mm: float = 5.0) -> np.ndarray:
    """Point-source line integrals on the isocentre-plane pixel grid of ``geometry``.

    The volume is summed in slabs of about ``slab_mm`` along x; each slab is magnified about the
    central ray by its own factor SOD / (x - x_source) and weighted by the ray obliquity.
    """
    from scipy.ndimage import map_coordinates

    nx = hu.shape[2]
    step = max(1, int(round(slab_mm / grid.spacing[0])))
    starts = np.arange(0, nx, step)
    slabs = np.empty((len(starts), hu.shape[0], hu.shape[1]), np.float32)
    for k in range(hu.shape[0]):
        slabs[:, k, :] = np.add.reduceat(_attenuation(hu[k], BONE_GAIN), starts, axis=1).T * grid.spacing[0]
    x = grid.axis(0).astype(float)
    x_slab = np.array([x[a : a + step].mean() for a in starts])
    x_source, y_centre, z_centre, sod = geometry.source
    rows, cols = geometry.shape
    u = geometry.y0 + np.arange(cols) * geometry.pixel_mm
    v = geometry.z_top - np.arange(rows) * geometry.pixel_mm
    vv, uu = np.meshgrid(v, u, indexing="ij")
    total = np.zeros((rows, cols), np.float64)
    for slab, xs in zip(slabs, x_slab):
        distance = xs - x_source
        shrink = distance / sod
        y = y_centre + (uu - y_centre) * shrink
        z = z_centre + (vv - z_centre) * shrink
        k = (z - grid.origin[2]) / grid.spacing[2]
        j = (y - grid.origin[1]) / grid.spacing[1]
        obliquity = np.sqrt(1.0 + ((y - y_centre) ** 2 + (z - z_centre) ** 2) / distance**2)
        total += map_coordinates(slab, [k, j], order=1, mode="constant", cval=0.0) * obliquity
    return total


def lateral_drr(
    hu: np.ndarray,
    grid: Grid,
    pixel_mm: Optional[float] = None,
    *,
    sid_mm: Optional[float] = None,
    centre: Optional[tuple] = None,
    detector_gap_mm: float = 180.0,
) -> tuple:
    """Lateral DRR of a canonical-grid HU volume.

    Args:
        hu: ``array[k, j, i]`` in HU on ``grid``.
        grid: the canonical grid of ``hu``.
        pixel_mm: square pixel size (isocentre plane); default the smaller of the y and z spacings.
        sid_mm: source-to-detector distance for a point source on the patient's right (typical
            lateral spine radiographs: 1000-1150 mm); None or 0 for a parallel beam.
        centre: LPS (x, y, z) of the isocentre the central ray goes through (default: the
            volume centre); the detector is ``detector_gap_mm`` beyond it on the patient's left.
        detector_gap_mm: isocentre-to-detector distance.

    Returns:
        (image float32 in [0, 1], bone bright; :class:`DRRGeometry`).

    """
    from scipy.ndimage import gaussian_filter, map_coordinates

    sy, sz = grid.spacing[1], grid.spacing[2]
    pixel = float(pixel_mm or min(sy, sz))
    nz, ny = hu.shape[:2]
    rows = int(np.floor((nz - 1) * sz / pixel)) + 1
    cols = int(np.floor((ny - 1) * sy / pixel)) + 1
    z_top = grid.origin[2] + (nz - 1) * sz
    if sid_mm:
        if centre is None:
            centre = tuple(o + (n - 1) * s / 2 for o, n, s in zip(grid.origin, reversed(hu.shape), grid.spacing))
        sod = float(sid_mm) - detector_gap_mm
        if sod <= 0:
            raise ValueError(f"sid_mm {sid_mm} must exceed the isocentre-detector gap {detector_gap_mm} mm")
        source = (centre[0] - sod, centre[1], centre[2], sod)
        # keep only the part of the detector that every ray reaches inside the volume (no edge seams)
        x_ends = np.array([grid.origin[0], grid.origin[0] + (hu.shape[2] - 1) * grid.spacing[0]])
        scale = sod / (x_ends - source[0])
        y_ends = np.array([grid.origin[1], grid.origin[1] + (ny - 1) * sy])
        z_ends = np.array([grid.origin[2], z_top])
        y_low = float(np.max(centre[1] + (y_ends[0] - centre[1]) * scale))
        y_high = float(np.min(centre[1] + (y_ends[1] - centre[1]) * scale))
        z_low = float(np.max(centre[2] + (z_ends[0] - centre[2]) * scale))
        z_high = float(np.min(centre[2] + (z_ends[1] - centre[2]) * scale))
        rows = int(np.floor((z_high - z_low) / pixel)) + 1
        cols = int(np.floor((y_high - y_low) / pixel)) + 1
        geometry = DRRGeometry(y_low, z_high, pixel, (rows, cols), source)
        image = _cone_beam(hu, grid, geometry)
    else:
        geometry = DRRGeometry(grid.origin[1], z_top, pixel, (rows, cols))
        integral = line_integrals(hu, grid.spacing[0], BONE_GAIN)
        r, c = np.mgrid[0:rows, 0:cols].astype(np.float64)
        image = map_coordinates(integral, [(z_top - r * pixel - grid.origin[2]) / sz, c * pixel / sy], order=1,
                                mode="nearest")  # fmt: skip
    image = image - EQUALISE_WEIGHT * gaussian_filter(image, EQUALISE_SIGMA_MM / pixel, mode="nearest")
    image = image + UNSHARP_WEIGHT * (image - gaussian_filter(image, UNSHARP_SIGMA_MM / pixel, mode="nearest"))
    inside = image[image > 0.05 * image.max()] if image.max() > 0 else image.ravel()
    low, high = np.percentile(inside, 2.0), np.percentile(image, 99.9)
    film = np.clip((image - low) / max(high - low, 1e-6), 0, 1) ** 1.4
    return film.astype(np.float32), geometry
