"""Does a result (results JSON, annotation file) belong to this volume? Frame, extent and series UID.

A result records the image it was made on in its ``input`` block (``size``, ``spacing``, ``origin``,
``direction`` in LPS, and ``series_uid`` for a DICOM series; a radiograph result: ``size``
``[columns, rows]``). :func:`check_geometry` compares that block with a volume node and refuses a
mismatch with one line naming what differs, so that one patient's result never lands on another
patient's CT. A block without geometry (a hand-made file, a keypoint CSV) has nothing to compare and
passes.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np

#: Tolerances: origin (mm), spacing (relative), direction (cosine components).
ORIGIN_MM = 0.1
SPACING_RELATIVE = 1e-3
DIRECTION = 1e-3
#: Node attribute and subject hierarchy UID name Slicer's DICOM import sets on a series.
SERIES_ATTRIBUTE = "DICOM.SeriesInstanceUID"


class GeometryMismatchError(ValueError):
    """A result made on another image than the selected volume (the message is one line)."""


def volume_series_uid(volume) -> Optional[str]:
    """The DICOM series instance UID of a volume node (Slicer's DICOM import), or None."""
    uid = volume.GetAttribute(SERIES_ATTRIBUTE) if volume is not None else None
    if uid:
        return uid
    scene = volume.GetScene() if volume is not None else None
    shn = scene.GetSubjectHierarchyNode() if scene is not None else None
    if shn is not None:
        item = shn.GetItemByDataNode(volume)
        uid = shn.GetItemUID(item, "DICOM") if item else ""
        if uid:
            return uid
    return None


def _fmt(values) -> str:
    return " x ".join(f"{v:g}" for v in values)


def _compare_ct(block: Dict[str, Any], volume) -> str:
    from .volumes import geometry_of_volume

    if not all(key in block for key in ("size", "spacing", "origin", "direction")):
        return ""
    geometry = geometry_of_volume(volume)
    size, spacing = list(block["size"]), np.asarray(block["spacing"], float)
    origin, direction = np.asarray(block["origin"], float), np.asarray(block["direction"], float)
    if [int(s) for s in size] != [int(s) for s in geometry.size]:
        return f"extent {_fmt(size)} voxels, the volume has {_fmt(geometry.size)}"
    if not np.allclose(spacing, geometry.spacing, rtol=SPACING_RELATIVE, atol=0):
        return f"spacing {_fmt(np.round(spacing, 4))} mm, the volume has {_fmt(np.round(geometry.spacing, 4))} mm"
    if not np.allclose(direction, np.asarray(geometry.direction, float).flatten(), atol=DIRECTION):
        return "another orientation (direction cosines differ)"
    if not np.allclose(origin, geometry.origin, atol=ORIGIN_MM):
        shift = float(np.linalg.norm(origin - np.asarray(geometry.origin, float)))
        return f"origin {shift:.1f} mm away from the volume's"
    return ""


def _compare_radiograph(block: Dict[str, Any], volume) -> str:
    size = block.get("size")
    if not isinstance(size, list) or len(size) != 2:
        return ""
    dimensions = list(volume.GetImageData().GetDimensions()[:2])
    if [int(s) for s in size] != dimensions:
        return f"image {_fmt(size)} pixels, the radiograph has {_fmt(dimensions)}"
    return ""


def geometry_mismatch(result, volume) -> str:
    """What differs between the image a result was made on and ``volume`` ("" when nothing does)."""
    from .radiographs import is_radiograph_volume

    if volume is None:
        return ""
    block = result.input or {}
    radiograph = is_radiograph_volume(volume)
    if result.frame == "pixel" and not radiograph:
        return "a radiograph result (pixel frame), the volume is a CT"
    if result.frame != "pixel" and radiograph and "size" in block and len(block["size"]) == 3:
        return "a CT result, the volume is a one-slice radiograph"
    uid, volume_uid = block.get("series_uid"), volume_series_uid(volume)
    if uid and volume_uid and uid != volume_uid:
        return f"DICOM series {uid}, the volume is series {volume_uid}"
    return _compare_radiograph(block, volume) if radiograph else _compare_ct(block, volume)


def check_geometry(result, volume, source: str = "the result") -> None:
    """Refuse a result made on another image than ``volume``.

    Raises:
        GeometryMismatchError: one line: ``"<source> was made on another image (<what differs>); not
            loaded onto <volume>"``.

    """
    problem = geometry_mismatch(result, volume)
    if problem:
        raise GeometryMismatchError(
            f"{source} was made on another image ({problem}); not loaded onto {volume.GetName()!r}"
        )


__all__ = ["GeometryMismatchError", "check_geometry", "geometry_mismatch", "volume_series_uid"]
