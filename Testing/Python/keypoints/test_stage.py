"""The keypoint stage on real scans: coverage of thin scans, and vertebrae cut by the field of view."""

import SimpleITK as sitk
from testdata import real

from VertebralFractureLib.keypoints.stage import MIN_COVERAGE_MM, coverage_message
from VertebralFractureLib.pipeline import AnalysisOptions, analyze


def test_coverage_message_only_below_one_vertebra():
    assert coverage_message(MIN_COVERAGE_MM) is None
    assert coverage_message(120.0) is None
    text = coverage_message(39.4)
    assert text.startswith("the scan covers 39 mm along the spine; about 45 mm are needed")


def test_a_thin_real_slab_says_how_much_it_covers(tmp_path):
    """13 slices (39 mm) of the real sample CT: one vertebra is in view but not whole with its discs."""
    ct = sitk.ReadImage(str(real("totalsegmentator", "example_ct.nii.gz")))
    middle = ct.GetSize()[2] // 2
    path = tmp_path / "slab.nii.gz"
    sitk.WriteImage(ct[:, :, middle - 7: middle + 6], str(path))
    result = analyze(path, AnalysisOptions(extra_stages=())).result
    assert result.vertebrae == [] or all(not v.assessed for v in result.vertebrae)
    assert any("the scan covers 39 mm along the spine" in w for w in result.warnings), result.warnings


def test_the_keypoint_stage_alone_marks_the_cut_t12_of_the_sample_ct():
    """Without the quality gate: the field-of-view check of the keypoint stage itself (issue 25 mutation)."""
    from VertebralFractureLib.keypoints.stage import KeypointStage
    from VertebralFractureLib.spine.stage import CentrelineStage, StraighteningStage

    stages = [CentrelineStage(), StraighteningStage(), KeypointStage()]
    result = analyze(real("totalsegmentator", "example_ct.nii.gz"), stages=stages).result
    t12 = result.vertebra("T12")
    assert t12.status == "not_assessed" and t12.status_reason.startswith("cut by the edge of the field of view")
    assert t12.measure is None
    assert all(v.assessed for v in result.vertebrae if v.label != "T12")
