"""The facing choice: the mirror is kept only when the 2D gate and the detector both prefer it."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from VertebralFractureLib.radiograph.facing import (
    choose_facing,
    column_evidence,
    column_place,
    mirror_analysis,
    trunk_threshold,
)


def _result(bodies: int, weak: int = 0, anchored: bool = False, faint: bool = False):
    vertebrae = [SimpleNamespace(checks={"column": 1.0, "bone": 1.0}) for _ in range(bodies)]
    vertebrae += [SimpleNamespace(checks={"column": 1.0, "bone": 0.2}) for _ in range(weak)]
    return SimpleNamespace(vertebrae=vertebrae, patient={"levels": {"anchor": "sacrum" if anchored else None}},
                           input={"faint_column": faint})


def test_column_evidence_ranks_a_faint_column_last_then_counts_bone_confirmed_members_then_the_anchor():
    assert column_evidence(_result(4, weak=3)) == (1, 4, 0)
    assert column_evidence(_result(2, anchored=True)) == (1, 2, 1)
    assert column_evidence(_result(2, weak=6, faint=True)) == (0, 2, 0)
    assert column_evidence(_result(3)) > column_evidence(_result(2, weak=9, faint=True))


@pytest.mark.parametrize("left, right, confident, expected", [
    (_result(2), _result(8), {"left": 3, "right": 9}, "right"),  # both cues prefer the mirror
    (_result(2), _result(8), {"left": 9, "right": 3}, "left"),  # the detector disagrees: as given
    (_result(8), _result(8, anchored=True), {"left": 3, "right": 9}, "right"),  # the anchor breaks the tie
    (_result(8), _result(8), {"left": 3, "right": 9}, "left"),  # a tie keeps the picture as given
    (None, _result(4), {"left": 9, "right": 6}, "left"),  # as given found nothing, the mirror is doubted
    (None, _result(4), {"left": 2, "right": 6}, "right"),
    (_result(3), None, {"left": 2, "right": 9}, "left"),
    (_result(3), _result(2, weak=6, faint=True), {"left": 2, "right": 9}, "left"),  # a faint mirror never wins
    (_result(2, weak=4, faint=True), _result(3), {"left": 2, "right": 9}, "right"),
])
def test_the_mirror_needs_both_cues(left, right, confident, expected):
    results = {side: r for side, r in (("left", left), ("right", right)) if r is not None}
    assert choose_facing(results, confident) == expected


@pytest.mark.parametrize("place, expected", [(0.68, "left"), (0.32, "right"), (None, "right")])
def test_the_trunk_vetoes_a_mirror_whose_column_lies_in_the_back_half_as_given(place, expected):
    """Both cues prefer the mirror; where the mirrored column lies in the picture as given decides."""
    assert choose_facing({"left": _result(2), "right": _result(8)}, {"left": 3, "right": 9}, place) == expected


def _trunk(width: int = 120, fat: float = 20.0) -> np.ndarray:
    """An 8-bit export of a trunk: air clipped to 0, a band of fat at ``fat`` around muscle at 100, a bright column."""
    picture = np.zeros((60, width), dtype=np.float32)
    picture[:, 20:100] = fat  # subcutaneous fat in front (left) and behind (right)
    picture[:, 28:92] = 100.0  # muscle and organs
    picture[:, 70:80] = 240.0  # the vertebral bodies, in the posterior half
    return picture


def test_column_place_reads_the_trunk_with_its_fat_and_gives_none_where_the_trunk_leaves_the_picture():
    picture = _trunk()
    threshold = trunk_threshold(picture)
    assert 0.0 < threshold < 20.0  # just above the clipped air, below the fat (Otsu's lies between fat and muscle)
    assert column_place(picture, [(75.0, 30.0), (75.0, 40.0)], threshold) == pytest.approx(55 / 80, abs=0.02)
    assert column_place(picture, [(75.0, 30.0)], 60.0) == pytest.approx(47 / 64, abs=0.02)  # without the fat
    collimated = picture[:, 30:]  # the trunk's front cut by the picture's edge: no place
    assert column_place(collimated, [(45.0, 30.0)], trunk_threshold(collimated)) is None


def test_a_soft_tissue_window_export_keeps_its_facing():
    """A real lumbar slice exported with a soft-tissue window (-160 ... 240 HU): Otsu's threshold between fat and
    muscle, and the gate's and the detector's cues both preferred the mirror (7 boxes against 6): the picture was
    analysed as facing right, anterior and posterior keypoints swapped. Its column lies at 0.68 of the trunk as
    given, so it is read facing left."""
    import SimpleITK as sitk

    from VertebralFractureLib.radiograph.analyze import analyze_radiograph

    path = Path(__file__).resolve().parents[2] / "Data" / "real" / "covid_sagittal" / "A058062_19001231-073.nii.gz"
    hu = sitk.GetArrayFromImage(sitk.ReadImage(str(path))).astype(np.float32).squeeze()
    export = np.clip((hu + 160.0) / 400.0 * 255.0, 0, 255).astype(np.uint8).astype(np.float32)
    result = analyze_radiograph(export).result
    assert result.input["facing"] == "left"
    for vertebra in result.vertebrae:  # anterior points (0, 1) on the left of the posterior ones (4, 5)
        assert vertebra.keypoints[[0, 1], 0].mean() < vertebra.keypoints[[4, 5], 0].mean()


def test_mirroring_back_keeps_names_heights_and_the_reason_s_position():
    image = np.zeros((50, 100), dtype=np.float32)
    points = np.array([[10.0, 5], [10, 25], [20, 5], [20, 25], [30, 5], [30, 25]])
    vertebra = SimpleNamespace(keypoints=points.copy(), centroid=points.mean(axis=0))
    result = SimpleNamespace(vertebrae=[vertebra], input={"rejected_detections": [{"centre": [5.0, 40.0]}],
                                                          "level_centroids": {"L5": [12.0, 30.0, 0.9]}},
                             patient={"levels": {"l5": [20.0, 15.0], "reason": "sacrum below the body at (20, 15) px"}})
    analysis = SimpleNamespace(result=result, mid_points={"L5": points.copy()}, image=None, mid_sagittal=None)
    mirror_analysis(analysis, image)
    np.testing.assert_allclose(vertebra.keypoints[:, 0], [89, 89, 79, 79, 69, 69])  # anterior points now right
    np.testing.assert_allclose(vertebra.keypoints[:, 1], points[:, 1])
    np.testing.assert_allclose(analysis.mid_points["L5"], vertebra.keypoints)
    assert result.input["rejected_detections"][0]["centre"] == [94.0, 40.0]
    assert result.input["level_centroids"]["L5"][0] == 87.0
    assert result.patient["levels"]["l5"] == [79.0, 15.0]
    assert result.patient["levels"]["reason"] == "sacrum below the body at (79, 15) px"
    assert analysis.image is image and analysis.mid_sagittal.shape == image.shape
