"""The facing choice: the mirror is kept only when the 2D gate and the detector both prefer it."""

from types import SimpleNamespace

import numpy as np
import pytest

from VertebralFractureLib.radiograph.facing import choose_facing, column_evidence, mirror_analysis


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
