"""Training label volumes from sparse annotations (Nicolaes et al. 2019 §3.1, after Glocker et al. 2013).

Each annotated vertebra (centroid + normal / fractured) becomes an ellipsoid around its centroid,
labelled with its class; the ellipsoid of a fractured vertebra is flattened along the spine's
longitudinal axis. Everything else in the band is background. Nicolaes et al. 2019 combines mild, moderate and
severe into one fracture class; so does :func:`is_fractured` (Genant grade >= 1).

Two additions for generated cases: the ellipsoid size follows the vertebra's keypoints when they
are given (antero-posterior depth and posterior height), else per-vertebra defaults; and voxels
beyond the first and last annotated vertebra along the centre-line (partially visible neighbours
that carry no annotation) are labelled :data:`IGNORE` instead of background.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np

from ...voxelmap.band_grid import BandGrid, densify
from ...voxelmap.network_constants import BACKGROUND, FRACTURE, IGNORE, NORMAL

#: Ellipsoid semi-axes as fractions of the antero-posterior depth (radial) and posterior height (axial).
RADIAL_FRACTION = 0.40
AXIAL_FRACTION = 0.35
#: Axial semi-axis factor of fractured vertebrae (Nicolaes et al. 2019, §3.1: "flattened along the longitudinal axis").
FRACTURE_FLATTENING = 0.6
#: Defaults (mm) when a vertebra has no usable keypoints.
DEFAULT_RADIAL_MM = 12.0
DEFAULT_AXIAL_MM = 8.0


@dataclass
class Annotation:
    """One sparsely annotated vertebra.

    Attributes:
        label: level name.
        centroid: LPS mm.
        fractured: Genant grade >= 1.
        axis: unit longitudinal direction (LPS), or None to take it from the centre-line.
        radial_mm, axial_mm: ellipsoid semi-axes of a normal vertebra of this size.

    """

    label: str
    centroid: np.ndarray
    fractured: bool
    axis: Optional[np.ndarray] = None
    radial_mm: float = DEFAULT_RADIAL_MM
    axial_mm: float = DEFAULT_AXIAL_MM
    grade: int = 0


def grade_of(vertebra) -> int:
    """Genant grade of a truth vertebra: the generator's commanded grade, else the measured one."""
    commanded = vertebra.extra.get("commanded_grade") if getattr(vertebra, "extra", None) else None
    if commanded is not None:
        return int(commanded)
    measure = getattr(vertebra, "measure", None)
    return int(measure.grade) if measure is not None and measure.grade is not None else 0


def is_fractured(vertebra) -> bool:
    """Nicolaes et al. 2019, §3.1: mild, moderate and severe form the one fracture class."""
    return grade_of(vertebra) >= 1


def annotations_from_result(result) -> List[Annotation]:
    """Annotations from a :class:`~VertebralFractureLib.schema.SpineResult` (LPS) with grades.

    Sizes and axes come from the six keypoints (order of ``genant.KEYPOINT_NAMES``): depth =
    distance between the anterior and posterior wall midpoints, height = posterior height.
    """
    out = []
    for v in result.vertebrae:
        kp = np.asarray(v.keypoints, dtype=float)
        radial, axial, axis = DEFAULT_RADIAL_MM, DEFAULT_AXIAL_MM, None
        if kp.shape == (6, 3):
            depth = np.linalg.norm(0.5 * (kp[0] + kp[1]) - 0.5 * (kp[4] + kp[5]))
            height = np.linalg.norm(kp[4] - kp[5])
            down = (kp[1] + kp[3] + kp[5]) / 3 - (kp[0] + kp[2] + kp[4]) / 3
            if depth > 5 and height > 5 and np.linalg.norm(down) > 1e-6:
                radial, axial = RADIAL_FRACTION * depth, AXIAL_FRACTION * height
                axis = down / np.linalg.norm(down)
        out.append(Annotation(v.label, np.asarray(v.centroid, float), is_fractured(v), axis, radial, axial,
                              grade_of(v)))
    return out


def _axis_from_centreline(point: np.ndarray, dense: np.ndarray) -> np.ndarray:
    nearest = int(np.argmin(np.linalg.norm(dense - point, axis=1)))
    a, b = max(0, nearest - 20), min(len(dense) - 1, nearest + 20)
    direction = dense[b] - dense[a]
    norm = np.linalg.norm(direction)
    return direction / norm if norm > 0 else np.array([0.0, 0.0, 1.0])


def label_volume(
    grid: BandGrid,
    annotations: Sequence[Annotation],
    centreline_points: Optional[np.ndarray] = None,
    flattening: float = FRACTURE_FLATTENING,
    ignore_ends: bool = True,
) -> np.ndarray:
    """The Nicolaes et al. 2019, §3.1 label image on the band grid: uint8 ``[k, j, i]``.

    Values: 0 background, 1 normal, 2 fracture (overlaps go to the nearer ellipsoid in normalised
    distance), :data:`IGNORE` outside the band and, with ``ignore_ends``, beyond half a vertebra
    spacing past the first / last annotated vertebra along the centre-line.

    Args:
        grid: the band grid.
        annotations: annotated vertebrae.
        centreline_points: (N, 3) LPS, used for axes not given and for the arc lengths.
        flattening: axial semi-axis factor of fractured vertebrae.
        ignore_ends: label the unannotated ends :data:`IGNORE`.

    """
    shape = grid.shape
    labels = np.full(shape, BACKGROUND, dtype=np.uint8)
    best = np.full(shape, np.inf, dtype=np.float32)
    g = grid.geometry
    spacing = float(g.spacing[0])
    dense = densify(centreline_points)[0] if centreline_points is not None else None
    for a in annotations:
        axis = a.axis
        if axis is None:
            axis = _axis_from_centreline(a.centroid, dense) if dense is not None else np.array([0.0, 0.0, 1.0])
        axial = a.axial_mm * (flattening if a.fractured else 1.0)
        reach = max(a.radial_mm, axial) + spacing
        centre_index = (a.centroid - np.asarray(g.origin)) / spacing
        lo = np.maximum(np.floor(centre_index - reach / spacing).astype(int), 0)
        hi = np.minimum(np.ceil(centre_index + reach / spacing).astype(int) + 1, np.asarray(g.size))
        if np.any(hi <= lo):
            continue
        i, j, k = np.meshgrid(*[np.arange(lo[d], hi[d]) for d in range(3)], indexing="ij")
        offset = np.stack([i, j, k], axis=-1) * spacing + np.asarray(g.origin) - a.centroid
        along = offset @ axis
        radial = np.linalg.norm(offset - along[..., None] * axis, axis=-1)
        distance = (along / axial) ** 2 + (radial / a.radial_mm) ** 2
        inside = distance <= 1.0
        # arrays are [i, j, k] here; the volume is [k, j, i]
        view_best = best[lo[2]:hi[2], lo[1]:hi[1], lo[0]:hi[0]]
        view_labels = labels[lo[2]:hi[2], lo[1]:hi[1], lo[0]:hi[0]]
        distance_kji = np.transpose(distance, (2, 1, 0))
        take = np.transpose(inside, (2, 1, 0)) & (distance_kji < view_best)
        view_best[take] = distance_kji[take]
        view_labels[take] = FRACTURE if a.fractured else NORMAL
    labels[~grid.mask] = IGNORE
    if ignore_ends and dense is not None and len(annotations) > 0:
        _ignore_ends(labels, grid, annotations, centreline_points)
    return labels


def _ignore_ends(labels: np.ndarray, grid: BandGrid, annotations: Sequence[Annotation], points: np.ndarray) -> None:
    dense, arc = densify(points, min(0.5, float(grid.geometry.spacing[0]) / 2))
    arcs = np.sort([arc[int(np.argmin(np.linalg.norm(dense - a.centroid, axis=1)))] for a in annotations])
    gap = float(np.median(np.diff(arcs))) if len(arcs) > 1 else 30.0
    low, high = arcs[0] - 0.6 * gap, arcs[-1] + 0.6 * gap
    with np.errstate(invalid="ignore"):
        outside = (grid.arc_mm < low) | (grid.arc_mm > high)
    labels[outside & (labels == BACKGROUND)] = IGNORE
