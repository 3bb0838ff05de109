"""Image geometry: voxel indices <-> patient LPS millimetres, and the canonical orientation.

Conventions used throughout the project:

* Patient coordinates are LPS millimetres (x to the patient's left, y posterior, z superior), as
  in ITK, DICOM and Slicer's files. Slicer's scene uses RAS; the MRML bridge converts.
* An index ``(i, j, k)`` is in ITK order; a NumPy array read from an image is indexed
  ``array[k, j, i]``.
* The *canonical* orientation is the identity direction ("LPS" in ITK's naming): after
  :func:`VertebralFractureLib.io.images.to_canonical`, ``array[k, j, i]`` has k running from
  inferior to superior, j from anterior to posterior and i from right to left. Physical
  coordinates do not change, so points found in the canonical image are already in the
  original patient frame; volumes go back with :func:`VertebralFractureLib.io.images.resample_like`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Sequence

import numpy as np


class GeometryError(ValueError):
    """An image geometry that cannot be used (non-positive spacing, singular direction...)."""


@dataclass(frozen=True)
class ImageGeometry:
    """Where an image's voxels are in patient space.

    Attributes:
        size: number of voxels along i, j, k (ITK order), or i, j for 2D images.
        spacing: voxel size in mm along i, j(, k).
        origin: LPS mm position of voxel (0, 0, 0).
        direction: D x D matrix whose columns are the unit directions of the i, j(, k) axes.
        resolution: mm the image resolves along i, j(, k) where that is coarser than the spacing (a reconstruction
            whose slices are thicker than their spacing: DICOM Slice Thickness (0018,0050) over the slice spacing,
            :func:`VertebralFractureLib.io.images.read_image`), or None: the spacing. Each value is at least the
            spacing along its axis.

    """

    size: tuple
    spacing: tuple
    origin: tuple
    direction: np.ndarray = field(compare=False)
    resolution: tuple | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        dim = len(self.size)
        direction = np.asarray(self.direction, dtype=float).reshape(dim, dim)
        object.__setattr__(self, "direction", direction)
        object.__setattr__(self, "size", tuple(int(s) for s in self.size))
        object.__setattr__(self, "spacing", tuple(float(s) for s in self.spacing))
        object.__setattr__(self, "origin", tuple(float(s) for s in self.origin))
        if len(self.spacing) != dim or len(self.origin) != dim:
            raise GeometryError(f"size, spacing and origin must all have {dim} values")
        if not all(np.isfinite(self.spacing)) or min(self.spacing) <= 0:
            raise GeometryError(f"voxel spacing must be positive and finite, got {self.spacing}")
        if not np.all(np.isfinite(self.origin)):
            raise GeometryError(f"image origin must be finite, got {self.origin}")
        if not np.all(np.isfinite(direction)) or abs(np.linalg.det(direction)) < 1e-6:
            raise GeometryError(f"image direction matrix is singular: {direction.tolist()}")
        if self.resolution is not None:
            resolution = tuple(float(r) for r in self.resolution)
            if len(resolution) != dim or not all(np.isfinite(resolution)):
                raise GeometryError(f"resolution must have {dim} finite values, got {self.resolution}")
            object.__setattr__(self, "resolution", tuple(max(r, s) for r, s in zip(resolution, self.spacing)))

    @property
    def dimension(self) -> int:
        """2 or 3."""
        return len(self.size)

    @property
    def affine(self) -> np.ndarray:
        """(D+1) x (D+1) matrix mapping homogeneous (i, j, k, 1) to LPS mm."""
        dim = self.dimension
        matrix = np.eye(dim + 1)
        matrix[:dim, :dim] = self.direction * np.asarray(self.spacing)[None, :]
        matrix[:dim, dim] = self.origin
        return matrix

    def index_to_lps(self, index: np.ndarray | Sequence) -> np.ndarray:
        """Continuous ITK-order indices (..., D) to LPS mm (..., D)."""
        index = np.asarray(index, dtype=float)
        scaled = index * np.asarray(self.spacing)
        return scaled @ self.direction.T + np.asarray(self.origin)

    def lps_to_index(self, points: np.ndarray | Sequence) -> np.ndarray:
        """LPS mm (..., D) to continuous ITK-order indices (..., D)."""
        points = np.asarray(points, dtype=float) - np.asarray(self.origin)
        return (points @ np.linalg.inv(self.direction).T) / np.asarray(self.spacing)

    def contains(self, points: np.ndarray | Sequence, margin: float = 0.5) -> np.ndarray:
        """Whether LPS points fall inside the image (voxel centres +- ``margin`` voxels)."""
        index = self.lps_to_index(points)
        size = np.asarray(self.size)
        return np.all((index >= -margin) & (index <= size - 1 + margin), axis=-1)

    @property
    def is_axis_aligned(self) -> bool:
        """True when every axis is parallel to a patient axis (a permutation with signs)."""
        return bool(np.allclose(np.abs(self.direction).max(axis=0), 1.0, atol=1e-4))

    @property
    def orientation_code(self) -> str:
        """ITK-style three-letter code of the axis directions, e.g. ``"LPS"`` or ``"RAS"``."""
        letters = (("R", "L"), ("A", "P"), ("I", "S"))
        code = ""
        for column in self.direction.T:
            axis = int(np.argmax(np.abs(column)))
            code += letters[axis][int(column[axis] > 0)]
        return code

    @property
    def extent_mm(self) -> np.ndarray:
        """Physical length of the image along each axis (size x spacing)."""
        return np.asarray(self.size) * np.asarray(self.spacing)

    @property
    def resolved_mm(self) -> tuple:
        """What the image resolves along each index axis: :attr:`resolution`, or the spacing when it is None."""
        return self.resolution if self.resolution is not None else self.spacing

    def voxel_extent_along(self, direction: np.ndarray | Sequence) -> float:
        """Extent (mm) of one voxel along a unit LPS direction: sum over the index axes of |component| x resolution.

        The spacing itself along an index axis (or the slice thickness where the slices are thicker than their
        spacing, :attr:`resolution`); on a 0.7 x 0.7 x 3 mm grid about 3 mm along the body's superior axis of an axial
        CT and 0.7 mm across it (the resolution the CT refinement and the endplate check work at).
        """
        in_index_axes = np.linalg.inv(self.direction) @ np.asarray(direction, dtype=float)
        return float(np.abs(in_index_axes) @ np.asarray(self.resolved_mm, dtype=float))

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready description (the ``input`` block of results)."""
        described = {
            "size": list(self.size),
            "spacing": list(self.spacing),
            "origin": list(self.origin),
            "direction": self.direction.flatten().tolist(),
        }
        if self.resolution is not None:
            described["resolution"] = list(self.resolution)
        return described

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> ImageGeometry:
        """Inverse of :meth:`to_dict`.

        Raises:
            GeometryError: if a field is missing or malformed.

        """
        try:
            size = data["size"]
            dim = len(size)
            return cls(size, data["spacing"], data["origin"], np.asarray(data["direction"], float).reshape(dim, dim),
                       data.get("resolution"))
        except (KeyError, TypeError, ValueError) as error:
            raise GeometryError(f"malformed image geometry {data!r}: {error}") from None

    def same_grid(self, other: ImageGeometry, tolerance: float = 1e-4) -> bool:
        """True if both geometries describe the same voxel grid."""
        return (
            self.size == other.size
            and np.allclose(self.spacing, other.spacing, atol=tolerance)
            and np.allclose(self.origin, other.origin, atol=tolerance)
            and np.allclose(self.direction, other.direction, atol=tolerance)
        )


def box_around(array: np.ndarray, geometry: ImageGeometry, points: np.ndarray | Sequence,
               margin_mm: float) -> tuple[np.ndarray, ImageGeometry]:
    """The part of ``array`` (``[k, j, i]``) around LPS ``points`` widened by ``margin_mm``, and its geometry.

    The box holds every voxel of the LPS bounding box of the points grown by the margin (any orientation), clipped to
    the image; the geometry keeps the spacing, direction and resolution.

    Returns:
        ``(box, geometry)``: the voxels as float32 and the box's :class:`ImageGeometry`.
    """
    points = np.asarray(points, dtype=float).reshape(-1, 3)
    low, high = points.min(axis=0) - margin_mm, points.max(axis=0) + margin_mm
    corners = np.array([[x, y, z] for x in (low[0], high[0]) for y in (low[1], high[1]) for z in (low[2], high[2])])
    index = geometry.lps_to_index(corners)
    size = np.asarray(geometry.size, dtype=int)
    start = np.clip(np.floor(index.min(axis=0)).astype(int), 0, size - 1)
    stop = np.clip(np.ceil(index.max(axis=0)).astype(int) + 1, start + 1, size)
    box = np.asarray(array[start[2]:stop[2], start[1]:stop[1], start[0]:stop[0]], dtype=np.float32)
    boxed = ImageGeometry(size=tuple(int(v) for v in stop - start), spacing=geometry.spacing,
                          origin=tuple(float(v) for v in geometry.index_to_lps(start.astype(float))),
                          direction=geometry.direction, resolution=geometry.resolution)
    return box, boxed


def lps_to_ras(points: np.ndarray | Sequence) -> np.ndarray:
    """LPS mm to RAS mm (and back: the map is its own inverse)."""
    points = np.array(points, dtype=float)
    points[..., :2] *= -1
    return points


ras_to_lps = lps_to_ras
