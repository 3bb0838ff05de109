"""Scalar volume nodes <-> SimpleITK images / NumPy arrays, with the full geometry.

The library keeps geometry in LPS (:class:`VertebralFractureLib.geometry.ImageGeometry`); a
volume node keeps an IJK -> RAS matrix. The conversion flips the first two rows:
``IJKToRAS = diag(-1, -1, 1, 1) @ affine_LPS``, so voxel (i, j, k) lands at the same patient
point, whatever the direction (oblique ones included). Arrays are ``array[k, j, i]`` on both sides.
A 2D geometry (a radiograph) becomes a one-slice volume in the z = 0 plane.

A node does not keep what its slices resolve: a volume that Slicer's DICOM module loaded from an overlapping
reconstruction (3 mm slices every 1.5 mm) has only the 1.5 mm spacing. :func:`image_from_volume` therefore reads the
series' Slice Thickness (0018,0050) from the DICOM database the node came from (:func:`dicom_slice_thickness`) and
records it on the image (:func:`VertebralFractureLib.io.images.record_slice_thickness`), as the command line does for
a DICOM folder, so the refinement and the quality gate know the slices are thicker than their spacing.
"""

from __future__ import annotations

from typing import Optional, Protocol

import numpy as np

from ..geometry import ImageGeometry
from .scene import import_slicer, resolve_scene

_FLIP = np.diag([-1.0, -1.0, 1.0, 1.0])
#: Node attribute in which Slicer's DICOM module (DICOMScalarVolumePlugin) lists the SOP Instance UIDs a volume was
#: loaded from, space-separated.
DICOM_INSTANCES_ATTRIBUTE = "DICOM.instanceUIDs"


class DicomDatabase(Protocol):
    """What the analysis asks of Slicer's DICOM database (``slicer.dicomDatabase``, a ctkDICOMDatabase)."""

    def fileForInstance(self, uid: str) -> str:  # noqa: N802 - ctkDICOMDatabase's name
        """The file of a SOP Instance UID, "" when unknown."""


def _as_3d(array: np.ndarray, geometry: ImageGeometry):
    if geometry.dimension == 3:
        return array, geometry
    if geometry.dimension != 2:
        raise ValueError(f"expected a 2D or 3D geometry, got {geometry.dimension}D")
    direction = np.eye(3)
    direction[:2, :2] = geometry.direction
    geometry = ImageGeometry((*geometry.size, 1), (*geometry.spacing, 1.0), (*geometry.origin, 0.0), direction)
    return array[None], geometry


def _vtk_compatible(array: np.ndarray) -> np.ndarray:
    """Bool -> uint8; 64-bit integers -> int32 when the values fit (slicer.util refuses them), else float64."""
    if array.dtype == bool:
        return array.astype(np.uint8)
    if array.dtype.kind in "iu" and array.dtype.itemsize == 8:
        info = np.iinfo(np.int32)
        fits = array.size == 0 or (array.min() >= info.min and array.max() <= info.max)
        return array.astype(np.int32 if fits else np.float64)
    return array


def ijk_to_ras_matrix(geometry: ImageGeometry) -> np.ndarray:
    """4 x 4 IJK -> RAS matrix of a 3D geometry (LPS affine with x and y negated)."""
    if geometry.dimension != 3:
        raise ValueError(f"IJK -> RAS needs a 3D geometry, got {geometry.dimension}D")
    return _FLIP @ geometry.affine


def volume_from_array(
    array: np.ndarray,
    geometry: ImageGeometry,
    *,
    scene=None,
    name: str = "Volume",
    labelmap: bool = False,
    node=None,
):
    """A scalar (or label map) volume node holding ``array[k, j, i]`` on ``geometry``.

    Args:
        array: voxel values, shape ``reversed(geometry.size)``; bool becomes uint8.
        geometry: LPS geometry of the voxels.
        scene: the MRML scene (``slicer.mrmlScene`` inside Slicer when None).
        name: node name (made unique in the scene).
        labelmap: create a ``vtkMRMLLabelMapVolumeNode`` instead of a scalar volume.
        node: an existing volume node to update instead of creating one.

    Returns:
        The volume node, with a default display node.

    Raises:
        ValueError: if the array shape does not match the geometry.

    """
    slicer = import_slicer()
    array = np.asarray(array)
    if array.shape != tuple(reversed(geometry.size)):
        raise ValueError(
            f"array shape {array.shape} does not match geometry size {geometry.size} "
            f"(expected {tuple(reversed(geometry.size))})"
        )
    array = _vtk_compatible(array)
    array, geometry = _as_3d(array, geometry)
    if node is None:
        scene = resolve_scene(scene)
        node_class = "vtkMRMLLabelMapVolumeNode" if labelmap else "vtkMRMLScalarVolumeNode"
        node = scene.AddNewNodeByClass(node_class, scene.GenerateUniqueName(name))
    slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(array))
    node.SetIJKToRASMatrix(slicer.util.vtkMatrixFromArray(ijk_to_ras_matrix(geometry)))
    if node.GetDisplayNode() is None:
        node.CreateDefaultDisplayNodes()
    node.Modified()
    return node


def volume_from_image(image, *, scene=None, name: Optional[str] = None, labelmap: bool = False, node=None):
    """A volume node from a SimpleITK image (geometry included); see :func:`volume_from_array`."""
    import SimpleITK as sitk

    from ..io.images import geometry_of

    if image.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError(f"only scalar images are supported, got {image.GetNumberOfComponentsPerPixel()} components")
    return volume_from_array(
        sitk.GetArrayFromImage(image),
        geometry_of(image),
        scene=scene,
        name=name or "Volume",
        labelmap=labelmap,
        node=node,
    )


def geometry_of_volume(node) -> ImageGeometry:
    """The LPS :class:`ImageGeometry` of a volume node (3D).

    Raises:
        ValueError: if the node has no image data.

    """
    slicer = import_slicer()
    image = node.GetImageData()
    if image is None:
        raise ValueError(f"volume node {node.GetName()!r} has no image data")
    from vtkmodules.vtkCommonMath import vtkMatrix4x4

    matrix = vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    lps = _FLIP @ slicer.util.arrayFromVTKMatrix(matrix)
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    return ImageGeometry(image.GetDimensions(), spacing, lps[:3, 3], lps[:3, :3] / spacing[None, :])


def array_from_volume(node) -> np.ndarray:
    """A copy of the node's voxels as ``array[k, j, i]``."""
    slicer = import_slicer()
    return np.array(slicer.util.arrayFromVolume(node), copy=True)


def dicom_slice_thickness(node, database: Optional[DicomDatabase] = None) -> Optional[float]:
    """Slice Thickness (mm) of the DICOM series a volume node was loaded from, or None.

    Args:
        node: a scalar volume node; one loaded by Slicer's DICOM module lists its instances in
            :data:`DICOM_INSTANCES_ATTRIBUTE`.
        database: the DICOM database (``fileForInstance(uid) -> path``); default ``slicer.dicomDatabase``.

    Returns:
        the tag of the first instance's file (:func:`~VertebralFractureLib.io.images.dicom_file_slice_thickness`),
        or None when the node did not come from DICOM, no database is open, the file is gone, or the value is absent
        or implausible.
    """
    from ..io.images import dicom_file_slice_thickness

    path = dicom_file_of(node, database)
    return dicom_file_slice_thickness(path) if path else None


def dicom_file_of(node, database: Optional[DicomDatabase] = None) -> Optional[str]:
    """The file of the first DICOM instance a volume node was loaded from, or None.

    Args:
        node: a volume node; one loaded by Slicer's DICOM module lists its instances in
            :data:`DICOM_INSTANCES_ATTRIBUTE`.
        database: the DICOM database (``fileForInstance(uid) -> path``, "" for an unknown UID); default
            ``slicer.dicomDatabase``.

    Returns:
        the file's path, or None when the node did not come from DICOM, no database is open or the file is unknown.
    """
    uids = (node.GetAttribute(DICOM_INSTANCES_ATTRIBUTE) or "").split()
    if not uids:
        return None
    if database is None:
        database = getattr(import_slicer(), "dicomDatabase", None)
    if database is None:
        return None
    return database.fileForInstance(uids[0]) or None


def image_from_volume(node, database: Optional[DicomDatabase] = None):
    """A SimpleITK image with the node's voxels and LPS geometry, and its DICOM slice thickness recorded.

    ``database``: as :func:`dicom_slice_thickness` (default ``slicer.dicomDatabase``).
    """
    from ..io.images import image_from_array, record_slice_thickness

    image = image_from_array(array_from_volume(node), geometry_of_volume(node))
    record_slice_thickness(image, dicom_slice_thickness(node, database))
    return image
