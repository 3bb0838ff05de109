"""A CT series acquired with a tilted gantry is read with its true geometry.

The series is the bundled real sample CT (TotalSegmentator example, 3 mm) sampled on slices tilted by 15 degrees
(each slice 3 mm further along the normal and 0.80 mm further along the column direction, as a tilted gantry gives
them) and written with pydicom, in the CT's own orientation and in one whose slices run feet-wards; read back, it must
hold the same anatomy at the same places as the CT it was sampled from. SimpleITK alone stacks the slices along the
normal 3.11 mm apart and ignores their offset.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from pydicom.uid import generate_uid
from testdata import real, write_ct_series, write_enhanced_ct

from VertebralFractureLib.io.images import GANTRY_TILT_KEY, read_image

TILT_DEG = 15.0
SAMPLE = sitk.ReadImage(str(real("totalsegmentator", "example_ct.nii.gz")))
#: The sample CT's own directions (RAS-like rows), and rows to the patient's left, columns anterior, slices feet-wards.
DIRECTIONS = {"sample": np.asarray(SAMPLE.GetDirection()).reshape(3, 3),
              "feet-wards": np.array([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])}


def _tilted_series(folder, direction, tilt_deg=TILT_DEG):
    """The sample CT's slices 40-79 resampled on a tilted stack of 40 slices; returns the per-slice shift (LPS mm)."""
    spacing = SAMPLE.GetSpacing()
    shift = spacing[2] * np.tan(np.radians(tilt_deg)) * direction[:, 1]  # along the column direction, per slice
    corners = np.array([SAMPLE.TransformIndexToPhysicalPoint((i, j, k)) for i in (0, 121) for j in (0, 100)
                        for k in (40, 79)])
    local = corners @ direction  # the stack starts at the corner that is first along each of its axes
    origin = direction @ np.array([local[:, 0].min(), local[:, 1].min(), local[:, 2].min()])
    slices = []
    for n in range(40):
        plane = sitk.Image([122, 101, 1], sitk.sitkInt16)
        plane.SetSpacing(spacing)
        plane.SetDirection(tuple(direction.ravel()))
        plane.SetOrigin(tuple(origin + n * spacing[2] * direction[:, 2] + n * shift))
        slices.append(sitk.GetArrayFromImage(sitk.Resample(SAMPLE, plane, sitk.Transform(), sitk.sitkLinear,
                                                           -1024.0, sitk.sitkInt16))[0])
    stack = sitk.GetImageFromArray(np.stack(slices))
    stack.SetSpacing(spacing)
    stack.SetDirection(tuple(direction.ravel()))
    stack.SetOrigin(tuple(origin))
    write_ct_series(stack, folder, study_uid=generate_uid(), series_uid=generate_uid(), slice_shift=tuple(shift))
    return shift


def _mean_bone_difference(image):
    """Mean |HU difference| over the sample's bone (> 250 HU) where ``image`` covers it, on the sample's grid."""
    back = sitk.GetArrayFromImage(sitk.Resample(image, SAMPLE, sitk.Transform(), sitk.sitkLinear, np.nan,
                                                sitk.sitkFloat32))
    truth = sitk.GetArrayFromImage(SAMPLE).astype(float)
    inside = np.isfinite(back) & (truth > 250)
    inside[:42] = inside[78:] = False  # the slices the series holds, its first and last left out
    assert inside.sum() > 2000
    return float(np.abs(back - truth)[inside].mean())


def _round_trip_difference():
    """The same measure for the sample moved 0.4 mm and back: what two linear interpolations cost by themselves."""
    moved = sitk.Resample(SAMPLE, SAMPLE, sitk.TranslationTransform(3, (0.0, 0.4, 0.0)), sitk.sitkLinear, -1024.0,
                          sitk.sitkFloat32)
    return _mean_bone_difference(sitk.Resample(moved, SAMPLE, sitk.TranslationTransform(3, (0.0, -0.4, 0.0)),
                                               sitk.sitkLinear, -1024.0, sitk.sitkFloat32))


@pytest.mark.parametrize("stored", ["slices", "one multi-frame file"])
@pytest.mark.parametrize("name", list(DIRECTIONS))
def test_a_tilted_series_is_read_where_its_anatomy_was(tmp_path, name, stored):
    shift = _tilted_series(tmp_path / "tilted", DIRECTIONS[name])
    given = tmp_path / "tilted"
    if stored != "slices":  # an enhanced CT: the frames' positions, tilt included, in its functional groups
        given = write_enhanced_ct(given, tmp_path / "enhanced" / "ct.dcm").parent
    image = read_image(given)
    assert float(image.GetMetaData(GANTRY_TILT_KEY)) == pytest.approx(TILT_DEG, abs=0.01)
    assert image.GetSpacing() == pytest.approx(SAMPLE.GetSpacing())  # 3 mm along the normal, not 3.11
    assert image.GetSize()[1] >= 101 + 39 * np.linalg.norm(shift) / 3.0  # every slice in view
    corrected = _mean_bone_difference(image)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(tmp_path / "tilted")))
    stacked = _mean_bone_difference(reader.Execute())  # what SimpleITK alone gives
    assert corrected < 2.0 * _round_trip_difference() and stacked > 4 * corrected, (corrected, stacked)


def test_an_untilted_series_is_returned_as_simpleitk_reads_it(tmp_path):
    _tilted_series(tmp_path / "straight", DIRECTIONS["sample"], tilt_deg=0.0)
    image = read_image(tmp_path / "straight")
    assert not image.HasMetaDataKey(GANTRY_TILT_KEY)
    assert image.GetSize() == (122, 101, 40)
    assert _mean_bone_difference(image) < 1.0
