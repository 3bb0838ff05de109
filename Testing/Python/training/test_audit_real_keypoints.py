"""The reference-keypoint audit (``benchmarks/audit_real_keypoints.py``) on a drawn vertebral body.

The audit decides where the real references' anterior and posterior points belong; these tests pin that a
point placed inside its wall is reported and moved back onto the project's convention (the larger of
1.5 mm and 8 % of the depth inside the outer border), that a point already there is left alone, and that
a wall without contrast against what lies outside it is not measured.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import SimpleITK as sitk
from testdata import benchmark

from VertebralFractureLib.keypoints.refine import CT_INSET_FRACTION, CT_INSET_MM


def _body(outside_behind: float = 20.0) -> sitk.Image:
    """A 40 mm deep, 30 mm high body (150 HU, 1 mm cortex of 600 HU) in 40 HU tissue, 0.5 mm voxels, LPS."""
    step = 0.5
    axis = np.arange(-40.0, 40.0 + 1e-6, step)
    z, y, x = np.meshgrid(axis, axis, axis, indexing="ij")
    volume = np.full(z.shape, 40.0, dtype=np.float32)
    volume[y > 20.0] = outside_behind
    inside = (np.abs(y) <= 20.0) & (np.abs(z) <= 15.0) & (np.abs(x) <= 20.0)
    core = (np.abs(y) <= 19.0) & (np.abs(z) <= 14.0) & (np.abs(x) <= 19.0)
    volume[inside] = 600.0
    volume[core] = 150.0
    image = sitk.GetImageFromArray(volume)
    image.SetSpacing((step, step, step))
    image.SetOrigin((-40.0, -40.0, -40.0))
    return image


def _rows(image: sitk.Image, anterior_y: float, posterior_y: float) -> dict:
    points = np.array([[0.0, anterior_y, 14.5], [0.0, anterior_y, -14.5], [0.0, 0.0, 14.5], [0.0, 0.0, -14.5],
                       [0.0, posterior_y, 14.5], [0.0, posterior_y, -14.5]])
    audit = benchmark("audit_real_keypoints")
    rows = audit.audit_points(image, "drawn", [SimpleNamespace(label="L3", keypoints=points)])
    return {(row["index"], row.get("wall")): row for row in rows}


def test_a_point_inside_its_wall_is_reported_and_moved_back_to_the_convention() -> None:
    inset = max(CT_INSET_MM, CT_INSET_FRACTION * 33.0)  # the reference columns below are 33 mm apart
    rows = _rows(_body(), anterior_y=-20.0 + inset + 5.0, posterior_y=20.0 - inset)
    front = rows[(0, "anterior")]
    assert front["offset"] < -4.0  # 5 mm inside where it belongs
    assert abs(front["corrected_lps"][1] - (-20.0 + inset)) < 0.6
    back = rows[(4, "posterior")]
    assert abs(back["offset"]) < 0.6
    assert abs(back["corrected_lps"][1] - (20.0 - inset)) < 0.6


def test_a_wall_without_contrast_outside_is_not_measured() -> None:
    inset = max(CT_INSET_MM, CT_INSET_FRACTION * 35.0)
    rows = _rows(_body(outside_behind=560.0), anterior_y=-20.0 + inset, posterior_y=20.0 - inset)
    assert "corrected_lps" in rows[(0, "anterior")]
    assert "corrected_lps" not in rows[(4, "posterior")]  # cortex 600 HU against 560 HU behind it


def test_endplate_rows_still_find_the_half_maximum_border() -> None:
    rows = _rows(_body(), anterior_y=-16.0, posterior_y=16.0)
    superior = rows[(2, None)]
    assert abs(superior["border"] - 0.5) < 0.6  # the outer face of the 1 mm endplate at z = 15 mm, point at 14.5
