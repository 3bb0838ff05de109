"""Lateral radiographs in the scene: 2D results (frame ``"pixel"``) <-> RAS points on a one-slice volume.

A radiograph is a one-slice scalar volume node, ``array[0, row, column]``. Its IJK -> RAS matrix
is the mapping between a result's 2D points ``[column, row]`` and the scene: pixel ``(c, r)`` is
voxel ``(i, j, k) = (c, r, 0)``, so a point sits on the pixel it names whatever the volume's
orientation (a picture loaded by Slicer itself is used as it is).

Radiographs the module creates (:func:`radiograph_volume`) follow one convention, that of the
straightened mid-sagittal image: the image lies in the sagittal plane x = 0 (it shows in the
sagittal, yellow, view); columns run anterior -> posterior (RAS -y, column 0 anterior), rows run
superior -> inferior (RAS -z, row 0 superior), with the pixel spacing ``(column mm, row mm)``;
pixel (0, 0) is at the origin. So a distance between two points in the scene is the distance in
mm that the Genant heights use.

Markups nodes hold RAS like for a CT. The 4 x 4 pixel -> RAS matrix used to place them is kept
in the keypoints and centroids nodes' attribute ``VertebralFracture.PixelToRAS`` (saved with a
``.mrb``), so dragged points map back to the same pixels (:func:`pixel_result_from_lps`).
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from ..geometry import ImageGeometry, lps_to_ras, ras_to_lps
from ..schema import SpineResult, Vertebra

PIXEL_TO_RAS_ATTRIBUTE = "VertebralFracture.PixelToRAS"
RADIOGRAPH_ROLE = "radiograph"
#: LPS direction of a created radiograph: columns -> posterior (+y), rows -> inferior (-z), slice -> right (-x).
RADIOGRAPH_DIRECTION = np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
_FLIP = np.diag([-1.0, -1.0, 1.0, 1.0])


def radiograph_geometry(shape: Tuple[int, int], spacing: Sequence[float]) -> ImageGeometry:
    """The geometry of a created radiograph volume (see the module docstring).

    Args:
        shape: ``(rows, columns)`` of the image.
        spacing: ``(column mm, row mm)`` (:attr:`SpineResult.pixel_spacing`).

    """
    rows, columns = (int(n) for n in shape)
    return ImageGeometry((columns, rows, 1), (float(spacing[0]), float(spacing[1]), 1.0), np.zeros(3),
                         RADIOGRAPH_DIRECTION)


def default_pixel_to_ras(spacing: Sequence[float]) -> np.ndarray:
    """Pixel -> RAS matrix of a created radiograph with this ``(column mm, row mm)`` spacing."""
    from .volumes import ijk_to_ras_matrix

    return ijk_to_ras_matrix(radiograph_geometry((1, 1), spacing))


def is_radiograph_volume(node) -> bool:
    """Whether a volume node holds one 2D image (a single slice along k): the radiograph path."""
    if node is None or not hasattr(node, "GetImageData"):
        return False
    image = node.GetImageData()
    if image is None:
        return False
    dimensions = image.GetDimensions()
    return dimensions[2] == 1 and dimensions[0] > 1 and dimensions[1] > 1


def volume_pixel_to_ras(node) -> np.ndarray:
    """The IJK -> RAS matrix of a volume node (4 x 4), i.e. its pixel -> RAS mapping."""
    from vtkmodules.vtkCommonMath import vtkMatrix4x4

    matrix = vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def volume_pixel_spacing(node) -> Tuple[float, float]:
    """``(column mm, row mm)`` of a radiograph volume node."""
    spacing = np.linalg.norm(volume_pixel_to_ras(node)[:3, :2], axis=0)
    return float(spacing[0]), float(spacing[1])


def radiograph_array(node) -> np.ndarray:
    """The radiograph of a one-slice volume node as a 2D float32 array ``[row, column]``.

    A colour picture (vector volume, RGB or RGBA) becomes grey: the mean of its colour channels.

    Raises:
        ValueError: if the node is not a one-slice volume.

    """
    from .volumes import array_from_volume

    if not is_radiograph_volume(node):
        raise ValueError(f"volume {node.GetName()!r} is not a single 2D image")
    image = array_from_volume(node)[0].astype(np.float32)
    if image.ndim == 3:
        image = image[..., :3].mean(axis=-1)
    return image


def radiograph_volume(image: np.ndarray, spacing: Sequence[float], *, scene, name: str = "Radiograph", node=None):
    """A scalar volume node showing a radiograph ``[row, column]`` (created convention, see the module).

    The display window spans the 1st - 99.5th percentile of the image.
    """
    from .volumes import volume_from_array

    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise ValueError(f"a radiograph is a 2D image, got shape {image.shape}")
    geometry = radiograph_geometry(image.shape, spacing)
    node = volume_from_array(image[None], geometry, scene=scene, name=name, node=node)
    node.SetAttribute("VertebralFracture.Role", RADIOGRAPH_ROLE)
    display = node.GetDisplayNode()
    if display is not None:
        low, high = (float(v) for v in np.percentile(image, [1.0, 99.5]))
        display.SetAutoWindowLevel(False)
        display.SetWindowLevel(max(high - low, 1e-6), (high + low) / 2)
    return node


# ---------------------------------------------------------------------------- points
def pixels_to_ras(points: np.ndarray, pixel_to_ras: np.ndarray) -> np.ndarray:
    """(N, 2) ``[column, row]`` -> (N, 3) RAS."""
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    homogeneous = np.column_stack([points, np.zeros(len(points)), np.ones(len(points))])
    return (homogeneous @ np.asarray(pixel_to_ras, float).T)[:, :3]


def ras_to_pixels(points: np.ndarray, pixel_to_ras: np.ndarray) -> np.ndarray:
    """(N, 3) RAS -> (N, 2) ``[column, row]`` (the component off the image plane is dropped)."""
    points = np.asarray(points, dtype=float).reshape(-1, 3)
    homogeneous = np.column_stack([points, np.ones(len(points))])
    return (homogeneous @ np.linalg.inv(np.asarray(pixel_to_ras, float)).T)[:, :2]


def matrix_text(matrix: np.ndarray) -> str:
    """A 4 x 4 matrix as 16 numbers (the node attribute's value)."""
    return " ".join(repr(float(v)) for v in np.asarray(matrix, float).reshape(-1))


def matrix_of_text(text: Optional[str]) -> Optional[np.ndarray]:
    """The matrix an attribute holds, or None for a missing or malformed one."""
    try:
        values = np.array([float(v) for v in (text or "").split()])
    except ValueError:
        return None
    return values.reshape(4, 4) if values.size == 16 and np.isfinite(values).all() else None


def node_pixel_to_ras(node) -> Optional[np.ndarray]:
    """The pixel -> RAS matrix a markups node was placed with, or None (a CT result's node)."""
    return matrix_of_text(node.GetAttribute(PIXEL_TO_RAS_ATTRIBUTE)) if node is not None else None


# ---------------------------------------------------------------------------- results
def _copy(vertebra: Vertebra, keypoints: np.ndarray, centroid: np.ndarray) -> Vertebra:
    return vertebra.copy(centroid=centroid, keypoints=keypoints)


def _kept(result: SpineResult) -> dict:
    return {
        "input": dict(result.input),
        "patient": dict(result.patient),
        "timings_s": dict(result.timings_s),
        "models": dict(result.models),
        "warnings": list(result.warnings),
    }


def lps_result_of_pixels(result: SpineResult, pixel_to_ras: np.ndarray) -> SpineResult:
    """The points of a 2D result placed in the scene (frame LPS): the carrier of the markups nodes."""
    def placed(points: np.ndarray) -> np.ndarray:
        return ras_to_lps(pixels_to_ras(points, pixel_to_ras))

    vertebrae = [_copy(v, placed(v.keypoints), placed(v.centroid)[0]) for v in result.vertebrae]
    return SpineResult(vertebrae=vertebrae, frame="LPS", **_kept(result))


def pixel_result_from_lps(
    result: SpineResult, pixel_to_ras: np.ndarray, pixel_spacing: Optional[Sequence[float]] = None
) -> SpineResult:
    """A 2D result (frame pixel) from points in the scene; measures recomputed with ``pixel_spacing``.

    Args:
        result: LPS points on (or near) the radiograph plane.
        pixel_to_ras: the mapping the points were placed with.
        pixel_spacing: ``(column mm, row mm)`` for the heights (default: the mapping's spacing).

    """
    matrix = np.asarray(pixel_to_ras, float)
    if pixel_spacing is None:
        pixel_spacing = tuple(float(s) for s in np.linalg.norm(matrix[:3, :2], axis=0))
    vertebrae = [
        _copy(v, ras_to_pixels(lps_to_ras(v.keypoints), matrix), ras_to_pixels(lps_to_ras(v.centroid), matrix)[0])
        for v in result.vertebrae
    ]
    return SpineResult(
        vertebrae=vertebrae, frame="pixel", pixel_spacing=tuple(float(s) for s in pixel_spacing), **_kept(result)
    )
