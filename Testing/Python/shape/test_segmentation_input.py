"""Segmentations in every form (VerSe, TotalSegmentator v1/v2, folder, one file per level) and their refusals."""

import numpy as np
import pytest
import SimpleITK as sitk
from testdata import real

from VertebralFractureLib.cli import main
from VertebralFractureLib.cli.measure import read_segmentation
from VertebralFractureLib.io.label_schemes import (
    SCHEMES,
    LabelSchemeError,
    SegmentationError,
    choose_scheme,
    level_of_name,
)
from VertebralFractureLib.levels import label_from_level
from VertebralFractureLib.shape.measure import REASON_CUT, measure_from_mask

VERSE004 = real("verse", "sub-verse004_seg-vert_msk.nii.gz")
LEVELS = ["T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5"]


def _write(array, like, path):
    image = sitk.GetImageFromArray(array.astype(np.uint8))
    image.CopyInformation(like)
    sitk.WriteImage(image, str(path))
    return path


@pytest.fixture(scope="module")
def verse004():
    image = sitk.ReadImage(str(VERSE004))
    return image, sitk.GetArrayFromImage(image).astype(np.int64)


def _relabelled(array, scheme):
    lookup = np.zeros(256, np.int64)
    for value, level in SCHEMES[scheme].vertebrae.items():
        lookup[label_from_level(level)] = value
    out = lookup[array]
    out[:4, :4, :4] = 5  # a far-away non-vertebral structure (v2: liver, v1: liver)
    return out


@pytest.fixture(scope="module")
def forms(verse004, tmp_path_factory):
    image, array = verse004
    folder = tmp_path_factory.mktemp("forms")
    paths = {"verse": (VERSE004, None)}
    for scheme in ("totalsegmentator", "totalsegmentator-v1"):
        paths[scheme] = (_write(_relabelled(array, scheme), image, folder / f"{scheme}.nii.gz"), scheme)
    ts_folder = folder / "segmentations"
    ts_folder.mkdir()
    for level in LEVELS:
        _write(array == label_from_level(level), image, ts_folder / f"vertebrae_{level}.nii.gz")
    liver = np.zeros_like(array)
    liver[:20, :20, :20] = 1
    _write(liver, image, ts_folder / "liver.nii.gz")
    paths["folder"] = (ts_folder, None)
    return paths


def _grades(result):
    return {v.label: v.measure.grade for v in result.vertebrae if v.measure is not None}


def test_every_form_gives_the_same_levels_and_grades(forms):
    grades = {}
    for name, (path, scheme) in forms.items():
        image, _ = read_segmentation(path, scheme)
        result = measure_from_mask(image)
        assert result.labels == LEVELS, name
        grades[name] = _grades(result)
    assert grades["verse"]["L1"] == 3
    for name in forms:
        assert grades[name] == grades["verse"], name


def test_one_file_per_level_gives_the_same_levels_and_grades(forms, verse004):
    image, array = verse004
    folder = forms["folder"][0]
    files = [folder / f"vertebrae_{level}.nii.gz" for level in LEVELS[::-1]]
    combined, description = read_segmentation(files)
    assert description == "9 single-structure files named by level"
    assert _grades(measure_from_mask(combined)) == _grades(measure_from_mask(image))
    alone, description = read_segmentation([folder / "vertebrae_L1.nii.gz"])
    assert description == "single structure L1 (from the file name)"
    assert measure_from_mask(alone).labels == ["L1"]


def test_level_of_name():
    assert level_of_name("vertebrae_L1.nii.gz") == "L1"
    assert level_of_name("vertebrae_T12.nii") == "T12"
    assert level_of_name("C7.seg.nrrd") == "C7"
    assert level_of_name("sub-verse004_seg-vert_msk.nii.gz") is None
    assert level_of_name("L1_L2.nii.gz") is None  # two levels: no guess


def test_totalsegmentator_v2_without_scheme_is_refused_with_the_fitting_schemes(forms):
    path, _ = forms["totalsegmentator"]
    with pytest.raises(LabelSchemeError, match=r"^totalsegmentator\.nii\.gz: labels 5, 27-35 are ambiguous: "
                       r"totalsegmentator, totalsegmentator-v1 all fit \(pass --label-scheme totalsegmentator "
                       r"or --label-scheme totalsegmentator-v1\)$"):
        read_segmentation(path)
    with pytest.raises(LabelSchemeError, match=r"labels 5, 27-35 do not fit the verse numbering; "
                       r"totalsegmentator, totalsegmentator-v1 fit"):
        read_segmentation(path, "verse")


def test_totalsegmentator_v1_read_as_verse_is_out_of_order(forms):
    path, _ = forms["totalsegmentator-v1"]
    with pytest.raises(LabelSchemeError, match=r"read as verse, the levels are out of order along the column: "
                       r"T11 \(label 18\) is not above T12 \(label 19\)"):
        read_segmentation(path, "verse")


def test_labels_above_every_scheme_are_refused():
    with pytest.raises(LabelSchemeError, match=r"^m: labels 120-121 fit no known vertebra numbering "
                       r"\(verse, totalsegmentator, totalsegmentator-v1\); pass a vertebra label mask$"):
        choose_scheme([120, 121], source="m")


def test_a_ct_given_as_the_mask_is_refused():
    with pytest.raises(SegmentationError, match=r"^example_ct\.nii\.gz: values -\d+ to \d+ \(\d+ distinct\) look like "
                       r"image intensities \(HU\), not labels"):
        read_segmentation(real("totalsegmentator", "example_ct.nii.gz"))


def test_one_voxel_per_label_is_refused(verse004, tmp_path):
    image, array = verse004
    specks = np.zeros_like(array)
    for n, level in enumerate(LEVELS):
        specks[30, 60 + 30 * n, 100] = label_from_level(level)  # 30 voxels apart; one voxel is 1 x 1 x 1.8 mm
    path = _write(specks, image, tmp_path / "specks.nii.gz")
    with pytest.raises(SegmentationError, match=r"^specks\.nii\.gz: T9 is 2 mm\^3, too small for a vertebra "
                       r"\(at least 1000 mm\^3 expected\)$"):
        read_segmentation(path)
    out = tmp_path / "out"
    assert main(["measure", str(path), "--out", str(out), "--no-abnormality"]) == 2
    assert not out.exists()


def test_a_mask_800_mm_away_from_its_ct_is_refused(verse004, tmp_path):
    image, array = verse004
    moved = sitk.Image(image)
    moved.SetOrigin(tuple(np.add(image.GetOrigin(), (0.0, 0.0, 800.0))))
    ct = sitk.Cast(image, sitk.sitkInt16)
    path = tmp_path / "moved.nii.gz"
    sitk.WriteImage(moved, str(path))
    with pytest.raises(SegmentationError, match=r"^moved\.nii\.gz: only 0 % of the labelled voxels lie inside "
                       r"the CT \(mask centre .* mm, CT centre .* mm, LPS\); the mask must be in the CT's patient "
                       r"coordinates; same array size as the CT"):
        read_segmentation(path, reference_ct=ct)
    image_back, _ = read_segmentation(VERSE004, reference_ct=ct)  # the same mask in place passes
    assert image_back.GetSize() == image.GetSize()


def test_two_labels_on_one_vertebra_are_refused(verse004, tmp_path):
    image, array = verse004
    doubled = array.copy()
    doubled[array == label_from_level("L3")] = label_from_level("L2")
    l2 = np.argwhere(array == label_from_level("L2"))
    doubled[tuple(l2[: len(l2) // 2].T)] = label_from_level("L3")  # L3 now sits inside L2's place
    doubled[array == label_from_level("L2")] = 0
    path = _write(doubled, image, tmp_path / "doubled.nii.gz")
    with pytest.raises(SegmentationError, match=r"doubled\.nii\.gz"):
        read_segmentation(path)


def test_folder_without_vertebrae_is_refused(tmp_path):
    (tmp_path / "liver.nii.gz").write_bytes(b"")
    with pytest.raises(SegmentationError, match=r"no vertebrae_<level>\.nii\.gz file \(TotalSegmentator's folder "
                       r"output\) in this folder$"):
        read_segmentation(tmp_path)


def test_cervical_and_sacral_levels_are_not_assessed(verse004, tmp_path):
    image, array = verse004
    shifted = np.zeros_like(array)
    for level in LEVELS:  # T9 ... L5 renamed C3 ... T4 (L1 -> C7): same shapes, cervical names
        shifted[array == label_from_level(level)] = label_from_level(level) - 13
    result = measure_from_mask(_write(shifted, image, tmp_path / "cervical.nii.gz"))
    assert result.labels == ["C3", "C4", "C5", "C6", "C7", "T1", "T2", "T3", "T4"]
    for v in result.vertebrae[:5]:  # C3 ... C7
        assert not v.assessed and v.measure is None
        assert v.status_reason == "cervical level: Genant grading applies to thoracic and lumbar vertebrae"
    assert result.vertebra("C7").status_reason.startswith("cervical level")  # the grade-3 L1 shape: not graded
    assert result.vertebra("T4").assessed and result.vertebra("T4").measure.grade == 0  # the L5 shape


def test_real_thick_slice_mask_marks_the_cut_body_not_assessed():
    # malekosh sample001 (MIT, LICENSE beside it): T1-L5, 0.46 x 0.46 x 3 mm, L5 cut by the bottom edge
    result = measure_from_mask(str(real("verse_sample001", "sub-sample001_seg-vert_msk.nii.gz")))
    l5 = result.vertebra("L5")
    assert not l5.assessed and l5.status_reason == REASON_CUT
    assert result.patient_summary()["not_assessed"] == {"L5": REASON_CUT}
    grades = {v.label: v.measure.grade for v in result.vertebrae if v.assessed}
    # no grade >= 2 that the mask does not show (docs/real_masks.png): T3 is an anterior wedge in every
    # mid-sagittal slice (h_a 11 mm against h_p 19 mm), L1 has a depressed superior endplate (h_m 17 mm
    # against 25-27 mm); L2 is a quarter lower than L3 in all three heights (grade 1, review)
    assert {level: g for level, g in grades.items() if g >= 2} == {"T3": 3, "L1": 2}
    assert grades["L2"] == 1 and result.vertebra("L2").measure.type == "crush"
    assert all(grades[f"T{i}"] == 0 for i in (1, 2, 4, 5, 6, 7, 8, 9, 10, 11))
    assert grades["L3"] == grades["L4"] == 0


def test_a_mask_in_thick_axial_slices_reports_no_height_loss_it_cannot_resolve():
    """The real sub-verse004 mask resampled to 5 mm axial slices (as TotalSegmentator run on a 5 mm CT gives):
    the staircase alone made normal L4 and L5 grade 2; a height loss is now withheld, a normal body still measured."""
    import SimpleITK as sitk

    original = sitk.DICOMOrient(sitk.ReadImage(str(real("verse", "sub-verse004_seg-vert_msk.nii.gz"))), "LPS")
    size, spacing = original.GetSize(), original.GetSpacing()
    thick = sitk.Resample(original, [size[0], size[1], int(size[2] * spacing[2] / 5.0)], sitk.Transform(),
                          sitk.sitkNearestNeighbor, original.GetOrigin(), [spacing[0], spacing[1], 5.0],
                          original.GetDirection(), 0, original.GetPixelID())
    result = measure_from_mask(thick)
    assert result.labels == ["T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5"]
    for v in result.vertebrae:
        assert v.extra["mask"]["voxel_along_axis_mm"] > 3.0  # 5 mm, less on bodies tilted against the slices
        if v.assessed:
            assert v.measure.grade == 0
        else:
            assert "along the body's height (more than 2 mm)" in v.status_reason
            assert "cannot be confirmed" in v.status_reason
    assert result.vertebra("L3").assessed  # G 1.0 on the staircase: nothing to withhold
    assert result.patient_summary()["fractured_levels"] == []
    # the radiologists' grade-3 L1 is withheld with the rest, but its loss and the validated shape score agree: the
    # verdict asks for a look (the patient was "normal" before); the withheld normal L4 and L5 stay "not assessed"
    from VertebralFractureLib.shape.score import AbnormalityModel, abnormality_scores

    abnormality_scores(thick, result, AbnormalityModel.load("abnormality_shape.pt", device="cpu"))
    verdicts = {v.label: v.verdict()[0] for v in result.vertebrae}
    assert verdicts["L1"] == "review" and "shape abnormality" in result.vertebra("L1").verdict()[1]
    assert verdicts["L4"] == verdicts["L5"] == "not assessed"
    assert result.patient_summary()["verdict"] == "review"
    # the native mask (1 mm along the bodies) keeps every grade
    native = measure_from_mask(original)
    assert all(v.assessed for v in native.vertebrae)
    assert max(v.extra["mask"]["voxel_along_axis_mm"] for v in native.vertebrae) < 1.5
