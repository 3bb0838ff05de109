"""Enhanced (multi-frame) CT: a whole series in one DICOM file.

Scanners and PACS of the last decade store a CT series as one file whose frames are the slices: Enhanced CT Image
Storage (1.2.840.10008.5.1.4.1.1.2.1) and Legacy Converted Enhanced CT Image Storage (1.2.840.10008.5.1.4.1.1.2.2).
Such a file has no top-level Image Position (Patient), Image Orientation (Patient) or Slice Thickness: each frame's
position and orientation lie in the Per-frame Functional Groups Sequence (5200,9230) or, where shared by every frame,
in the Shared Functional Groups Sequence (5200,9229); the Plane Position, Plane Orientation and Pixel Measures
macros (DICOM PS3.3 C.7.6.16.2.3-C.7.6.16.2.1). A study folder exported from such a scanner holds one file per
series; read as a series of single-frame slices it was refused ("the DICOM series has only 1 slice").

This module reads those macros with pydicom (header only, no pixel data) so that a multi-frame volume gets the same
checks as a folder of slices (frames missing, uneven gaps, a gantry tilt: :func:`.images.check_slice_positions`)
and the same record of its Slice Thickness. SimpleITK (GDCM) reads the pixels with the rescale applied; the
geometry is rebuilt here from the frames' own positions, sorted along the slice normal.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

PathLike = Union[str, Path]

#: Number of Frames (0028,0008), as SimpleITK names its metadata key.
NUMBER_OF_FRAMES_TAG = "0028|0008"


@dataclass
class FrameGeometry:
    """Where each frame of a multi-frame file lies.

    Attributes:
        positions: (frames, 3) Image Position (Patient) of each frame, in the file's frame order (LPS mm).
        row_direction: unit vector along each frame's rows (increasing column index), from Image Orientation (Patient).
        column_direction: unit vector down each frame's columns (increasing row index).
        thickness: Slice Thickness (mm) of the Pixel Measures macro, or None when absent.
    """

    positions: np.ndarray
    row_direction: np.ndarray
    column_direction: np.ndarray
    thickness: Optional[float]

    @property
    def normal(self) -> np.ndarray:
        """The unit slice normal (row direction x column direction, as for a series of single-frame slices)."""
        normal = np.cross(self.row_direction, self.column_direction)
        return normal / np.linalg.norm(normal)


def frame_count(header) -> int:
    """Number of Frames of a file whose header SimpleITK read (:func:`.images.read_header`); 1 when absent."""
    if header is None or not header.HasMetaDataKey(NUMBER_OF_FRAMES_TAG):
        return 1
    try:
        return max(1, int(float(header.GetMetaData(NUMBER_OF_FRAMES_TAG).strip("\0 "))))
    except ValueError:
        return 1


def _macro(groups: Sequence, shared: Sequence, sequence: str):
    """The first item of ``sequence`` in a frame's functional groups, else in the shared ones, else None."""
    for source in (groups, shared):
        if source is not None and sequence in source and len(source[sequence].value):
            return source[sequence].value[0]
    return None


def frame_geometry(path: PathLike) -> Optional[FrameGeometry]:
    """The frames' positions, orientation and thickness of a multi-frame DICOM file, or None.

    None when the file has no functional groups with a position for every frame and one orientation (a multi-frame
    picture, or a file this module cannot place): SimpleITK's own geometry then stands.
    """
    import pydicom

    try:
        ds = pydicom.dcmread(str(path), stop_before_pixels=True)
    except Exception:  # noqa: BLE001 - an unreadable header is reported by the reader that needs the pixels
        return None
    return frame_geometry_of(ds)


def frame_geometry_of(ds) -> Optional[FrameGeometry]:
    """:func:`frame_geometry` of a pydicom dataset already read (its header is enough)."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    shared_items = ds.get("SharedFunctionalGroupsSequence")
    shared = shared_items[0] if shared_items else None
    if not per_frame:
        return None
    positions, orientations, thickness = [], [], None
    for groups in per_frame:
        plane = _macro(groups, shared, "PlanePositionSequence")
        orientation = _macro(groups, shared, "PlaneOrientationSequence")
        if plane is None or orientation is None or "ImagePositionPatient" not in plane \
                or "ImageOrientationPatient" not in orientation:
            return None
        positions.append([float(v) for v in plane.ImagePositionPatient][:3])
        orientations.append([float(v) for v in orientation.ImageOrientationPatient][:6])
        measures = _macro(groups, shared, "PixelMeasuresSequence")
        if thickness is None and measures is not None and "SliceThickness" in measures:
            thickness = measures.SliceThickness
    cosines = np.asarray(orientations, dtype=float)
    if len(cosines[0]) < 6 or np.abs(cosines - cosines[0]).max() > 1e-3:
        return None  # frames in several orientations (a localizer's or a reformat's stack): not one volume
    row, column = cosines[0, :3], cosines[0, 3:6]
    if np.linalg.norm(np.cross(row, column)) < 0.5:
        return None
    from .images import plausible_thickness

    return FrameGeometry(np.asarray(positions, dtype=float), row / np.linalg.norm(row),
                         column / np.linalg.norm(column), plausible_thickness(thickness) if thickness else None)


def stacked_along_normal(image, geometry: FrameGeometry, order: np.ndarray):
    """The frames of ``image`` (as SimpleITK read the file) in ``order`` along the normal, with their true geometry.

    The in-plane spacing is SimpleITK's (Pixel Spacing); the spacing along the normal is the first to last frame's
    distance over the gaps between them (the caller has checked that they are even); origin and directions are the
    frames' own. A gantry tilt is left to :func:`.images._correct_gantry_tilt`, which reads the same positions.
    """
    import SimpleITK as sitk

    array = sitk.GetArrayFromImage(image)[order]
    positions = geometry.positions[order]
    normal = geometry.normal
    along = positions @ normal
    spacing_along = float((along[-1] - along[0]) / max(len(along) - 1, 1)) if len(along) > 1 else 1.0
    stacked = sitk.GetImageFromArray(array)
    stacked.SetSpacing((image.GetSpacing()[0], image.GetSpacing()[1], abs(spacing_along)))
    stacked.SetOrigin(tuple(float(v) for v in positions[0]))
    stacked.SetDirection(tuple(np.column_stack([geometry.row_direction, geometry.column_direction, normal]).ravel()))
    for key in image.GetMetaDataKeys():
        stacked.SetMetaData(key, image.GetMetaData(key))
    return stacked


__all__ = ["NUMBER_OF_FRAMES_TAG", "FrameGeometry", "frame_count", "frame_geometry", "frame_geometry_of",
           "stacked_along_normal"]
