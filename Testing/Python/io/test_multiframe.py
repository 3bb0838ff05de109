"""An enhanced (multi-frame) CT: the whole series in one DICOM file, as recent scanners and PACS export it.

The series is the bundled real sample CT (TotalSegmentator example, 3 mm), written as single-frame slices with pydicom
(``testdata.write_ct_series``) and converted to one Legacy Converted Enhanced CT file with highdicom
(``testdata.write_enhanced_ct``): the frames' positions live in its functional groups, not in top-level tags. Read
from its folder or as a file, it must be the same volume as the single-frame series, with the same checks.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from pydicom.uid import generate_uid
from testdata import real, write_ct_series, write_enhanced_ct

from VertebralFractureLib.io.images import SERIES_CHOICE_KEY, ImageReadError, dicom_series_in, geometry_of, read_image
from VertebralFractureLib.io.series_choice import choose_series

SAMPLE = sitk.ReadImage(str(real("totalsegmentator", "example_ct.nii.gz")))
STUDY = generate_uid()


def _series(folder, skip=None, series_number=3):
    """Slices 30-69 of the sample CT as a single-frame series (``skip``: one slice left out, a lost file)."""
    write_ct_series(SAMPLE[:, :, 30:70], folder, study_uid=STUDY, series_uid=generate_uid(),
                    series_number=series_number, description="Abdomen 3.0 B30f")
    if skip is not None:
        sorted(folder.glob("*.dcm"))[skip].unlink()
    return folder


def _same_volume(image, reference):
    assert image.GetSize() == reference.GetSize()
    assert image.GetSpacing() == pytest.approx(reference.GetSpacing())
    assert image.GetOrigin() == pytest.approx(reference.GetOrigin())
    assert image.GetDirection() == pytest.approx(reference.GetDirection())
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(reference))


@pytest.mark.parametrize("head_first", [False, True])
def test_an_enhanced_ct_folder_and_file_read_as_the_series_it_was_made_from(tmp_path, head_first):
    series = _series(tmp_path / "series")
    enhanced = write_enhanced_ct(series, tmp_path / "export" / "CT_enhanced.dcm", head_first=head_first)
    reference = read_image(series)
    for given in (enhanced.parent, enhanced):  # the study folder a PACS exports, and the file itself
        image = read_image(given)
        _same_volume(image, reference)  # frames stored head first are sorted along the normal as the slices are
        assert image.GetMetaData("0020|000e") == reference.GetMetaData("0020|000e")


def test_the_pixel_measures_slice_thickness_is_what_the_volume_resolves(tmp_path):
    enhanced = write_enhanced_ct(_series(tmp_path / "series"), tmp_path / "export" / "ct.dcm", slice_thickness=5.0)
    image = read_image(enhanced.parent)
    assert image.GetSpacing()[2] == pytest.approx(3.0)
    assert geometry_of(image).resolution[2] == pytest.approx(5.0)  # 5 mm slices every 3 mm


def test_a_missing_frame_is_refused_as_a_missing_slice_is(tmp_path):
    enhanced = write_enhanced_ct(_series(tmp_path / "series", skip=20), tmp_path / "export" / "ct.dcm")
    for given in (enhanced.parent, enhanced):
        with pytest.raises(ImageReadError, match=r"uneven slice gaps in the DICOM series: 6\.00 mm between slices "
                                                 r"20 and 21 where 3\.00 mm is usual \(1 slice missing\?\)") as error:
            read_image(given)
        assert str(error.value).startswith(str(given))


def test_a_multi_frame_mr_is_not_read_as_ct(tmp_path):
    enhanced = write_enhanced_ct(_series(tmp_path / "series"), tmp_path / "export" / "mr.dcm", modality="MR")
    with pytest.raises(ImageReadError, match="modality MR, not CT"):
        read_image(enhanced)


def test_a_study_folder_with_a_localizer_chooses_the_enhanced_ct_and_says_so(tmp_path):
    study = tmp_path / "study"
    write_ct_series(SAMPLE[:, :, 50:52], study / "1", study_uid=STUDY, series_uid=generate_uid(), series_number=1,
                    description="Topogram", image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"))
    write_enhanced_ct(_series(tmp_path / "series"), study / "3" / "ct.dcm")
    uid, line = choose_series(study, dicom_series_in(study))
    assert line == ("analysed series #3 'Abdomen 3.0 B30f (enhanced conversion)' (40 axial slices in one multi-frame "
                    "file, 3 mm thick) of the folder's 2 series; set aside: series #1 'Topogram' (a localizer)")
    image = read_image(study)
    assert image.GetSize()[2] == 40 and image.GetMetaData(SERIES_CHOICE_KEY) == line
