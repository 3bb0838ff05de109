"""Helpers of the MRML bridge tests (``from mrml.helpers import ...``): the small synthetic case, points."""

from __future__ import annotations

import functools

import numpy as np


@functools.cache
def small_case():
    """A 2 mm synthetic abdomen (T12 ... L5, about 80 x 70 x 120 voxels), generated once."""
    from VertebralFractureLib.synth import generate_case

    return generate_case(
        0,
        "abdomen",
        spacing=(2.0, 2.0, 2.0),
        fov_xy_mm=(160.0, 140.0),
        radiograph=False,
        ribs=False,
        lungs=False,
    )


def analysis_of(case):
    """A pipeline ``Analysis`` of the case as the models would give it: truth keypoints, body labels,
    and the CT's middle sagittal slice as the straightened image."""
    import SimpleITK as sitk

    from VertebralFractureLib.pipeline import Analysis
    from VertebralFractureLib.schema import SpineResult

    array = sitk.GetArrayFromImage(case.ct)
    mid = array[::-1, :, array.shape[2] // 2].astype(np.float32)
    result = SpineResult.from_dict(case.truth.to_dict())  # a copy the test may change
    return Analysis(result=result, image=case.ct, labels=case.body_mask, mid_sagittal=mid, mid_spacing=(2.0, 2.0))


def point_index(node, key: str) -> int:
    """Index of the control point whose description is ``key`` (``"L1:0"``)."""
    keys = [node.GetNthControlPointDescription(i) for i in range(node.GetNumberOfControlPoints())]
    return keys.index(key)


def move_point(node, key: str, delta_ras) -> np.ndarray:
    """Move a control point by ``delta_ras`` mm; returns its new RAS position."""
    index = point_index(node, key)
    ras = np.zeros(3)
    node.GetNthControlPointPosition(index, ras)
    ras = ras + np.asarray(delta_ras, dtype=float)
    node.SetNthControlPointPosition(index, *ras.tolist())
    return ras


def keypoints_lps(node, level: str) -> np.ndarray:
    """The six keypoints of a level read from the node, in LPS."""
    points = []
    for slot in range(6):
        ras = np.zeros(3)
        node.GetNthControlPointPosition(point_index(node, f"{level}:{slot}"), ras)
        points.append([-ras[0], -ras[1], ras[2]])
    return np.array(points)


class DicomDatabase:
    """What ``slicer.dicomDatabase`` answers here (ctkDICOMDatabase.fileForInstance: "" for an unknown UID)."""

    def __init__(self, files):
        self.files = files

    def fileForInstance(self, uid):  # noqa: N802 - ctkDICOMDatabase's name
        return self.files.get(uid, "")
