"""Neighbouring bodies whose facing endplates cross on thick slices (keypoints/facing_endplates.py)."""

import numpy as np
import pytest

from VertebralFractureLib.genant import KEYPOINT_NAMES
from VertebralFractureLib.geometry import ImageGeometry
from VertebralFractureLib.keypoints import stage as keypoint_stage
from VertebralFractureLib.keypoints.facing_endplates import separate_crossing_endplates
from VertebralFractureLib.keypoints.stage import CROSSED_KEY
from VertebralFractureLib.pipeline import analyze
from VertebralFractureLib.training.real.reference import load_case, score_case

# LPS: x = left, y = posterior, z = superior; a body 30 mm deep, 20 mm tall
_BOX = np.array([[0.0, -15.0, 10.0], [0.0, -15.0, -10.0], [0.0, 0.0, 10.0], [0.0, 0.0, -10.0],
                 [0.0, 15.0, 10.0], [0.0, 15.0, -10.0]])


def _geometry(slice_mm: float) -> ImageGeometry:
    """An axial grid of 0.7 mm pixels and ``slice_mm`` slices (the points' tilt of a few degrees keeps it)."""
    return ImageGeometry(origin=(0.0, 0.0, 0.0), spacing=(0.7, 0.7, slice_mm), direction=np.eye(3),
                         size=(100, 100, 100))


def _column(step: float = 23.0, count: int = 3):
    """Upright boxes, top first, ``step`` mm apart: a 3 mm disc between 20 mm bodies at 23 mm."""
    return [_BOX + np.array([0.0, 0.0, -step * k]) for k in range(count)]


def test_crossing_points_on_thick_slices_meet_half_way_and_the_rest_stay():
    bodies = _column()
    bodies[0][1, 2] -= 5.0  # the upper body's anterior inferior point (-10 -> -15) 2 mm across the lower one's (-13)
    bodies[1][4, 2] += 4.0  # the lower body's posterior superior point (-13 -> -9) 1 mm across the upper one's (-10)
    crossed: list = []
    out = separate_crossing_endplates(bodies, _geometry(3.0), crossed=crossed)
    assert out[0][1, 2] == pytest.approx(-14.0, abs=0.02) and out[1][0, 2] == pytest.approx(-14.0, abs=0.02)
    assert [sorted(c) for c in crossed] == [[1, 5], [0, 4], []]  # which points met a neighbour's, and by how much
    assert crossed[0][1] == pytest.approx(2.0, abs=0.02) and crossed[1][4] == pytest.approx(1.0, abs=0.02)
    assert out[0][5, 2] == pytest.approx(-9.5, abs=0.02) and out[1][4, 2] == pytest.approx(-9.5, abs=0.02)
    # the middle points are 3 mm apart (a disc): not moved, and no other point either
    moved = {0: [1, 5], 1: [0, 4], 2: []}
    for k, (before, after) in enumerate(zip(bodies, out)):
        still = [i for i in range(6) if i not in moved[k]]
        assert np.array_equal(after[still], before[still])
        np.testing.assert_allclose(after[:, :2], before[:, :2], atol=0.1)  # along the body's own axis
    assert out[0] is not bodies[0] and bodies[0][1, 2] == -15.0  # the caller's arrays are not changed


def test_bodies_given_bottom_first_are_split_the_same_way():
    bodies = _column()
    bodies[0][3, 2] -= 4.0
    top_first = separate_crossing_endplates(bodies, _geometry(3.0))
    bottom_first = separate_crossing_endplates(bodies[::-1], _geometry(3.0))[::-1]
    for a, b in zip(top_first, bottom_first):
        np.testing.assert_allclose(a, b)
    assert top_first[0][3, 2] == pytest.approx(-13.5, abs=0.02) and top_first[1][2, 2] == pytest.approx(-13.5, abs=0.02)


def test_tilted_bodies_move_along_their_own_superior_axis():
    angle = np.radians(20.0)  # the column leaning forwards in the sagittal plane
    turn = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(angle), -np.sin(angle)], [0.0, np.sin(angle), np.cos(angle)]])
    bodies = [body @ turn.T for body in _column()]
    axis = turn @ np.array([0.0, 0.0, 1.0])
    bodies[0][3] -= 5.0 * axis  # 2 mm across
    out = separate_crossing_endplates(bodies, _geometry(3.0))
    np.testing.assert_allclose(out[0][3] - bodies[0][3], 1.0 * axis, atol=1e-9)
    np.testing.assert_allclose(out[1][2] - bodies[1][2], -1.0 * axis, atol=1e-9)


def test_a_crossing_wider_than_one_merged_band_is_recorded_but_not_moved():
    """Within one band (a disc thinner than a slice between two endplates: at most a voxel and two plates across)
    both borders can lie anywhere; a crossing wider than that puts one body's border outside the band, and which
    one is unknown: the points stay, and both are recorded (a loss measured with them is withheld)."""
    bodies = _column()
    bodies[0][1, 2] -= 8.9  # 5.9 mm across: more than 3 mm + 2 x 1 mm
    bodies[0][3, 2] -= 7.9  # 4.9 mm across: within one band, moved
    crossed: list = []
    out = separate_crossing_endplates(bodies, _geometry(3.0), crossed=crossed)
    assert np.array_equal(out[0][1], bodies[0][1]) and np.array_equal(out[1][0], bodies[1][0])
    assert crossed[0][1] == pytest.approx(5.9, abs=0.02) and crossed[1][0] == pytest.approx(5.9, abs=0.02)
    assert out[0][3, 2] == pytest.approx(-15.45, abs=0.05) and out[1][2, 2] == pytest.approx(-15.45, abs=0.05)


def test_resolved_endplates_are_not_moved():
    """1.5 mm slices: the border is the bone/disc step itself, and a crossing is one body's error (the gate's)."""
    bodies = _column()
    bodies[0][1, 2] -= 5.0
    out = separate_crossing_endplates(bodies, _geometry(1.5))
    assert all(np.array_equal(a, b) for a, b in zip(out, bodies))


def test_bodies_with_a_level_missing_between_them_are_not_moved():
    bodies = _column(count=4)
    bodies[3] = bodies[3] - np.array([0.0, 0.0, 46.0])  # two levels missing above the last body: 69 mm below
    bodies[3][[0, 2, 4], 2] += 50.0  # its superior points (-105 -> -55) 1 mm across the body above, not a neighbour
    bodies[0][1, 2] -= 5.0
    out = separate_crossing_endplates(bodies, _geometry(3.0))
    assert out[0][1, 2] == pytest.approx(-14.0, abs=0.02)
    assert np.array_equal(out[3], bodies[3]) and np.array_equal(out[2][[1, 3, 5]], bodies[2][[1, 3, 5]])


@pytest.mark.slow
def test_on_the_real_3_mm_chest_ct_no_neighbours_cross_and_the_heights_come_closer_to_the_readers(monkeypatch):
    """The real chest CT (3 mm slices, thin elderly discs): facing points of neighbouring bodies crossed by up to
    5.3 mm (T1/T2, T2/T3) and the assessed heights ran long against the three blind readings; with the split only a
    crossing wider than one band is left (recorded), and the height error of the assessed bodies falls (1.7 -> 1.5
    mm on 2026-12-06)."""
    reference = load_case("cptac_chest")
    image = reference.path.parent.parent / reference.image

    def measured():
        result = analyze(image).result
        score = score_case(result, reference)
        return result, [e for e in (m.height_error_mm for m in score.matches) if e is not None]

    result, errors = measured()
    monkeypatch.setattr(keypoint_stage, "SEPARATE_CROSSING", False)
    _, errors_without = measured()
    for upper, lower in zip(result.vertebrae[:-1], result.vertebrae[1:]):
        up, low = np.asarray(upper.keypoints, dtype=float), np.asarray(lower.keypoints, dtype=float)
        axis = up.mean(0) - low.mean(0)
        axis /= np.linalg.norm(axis)
        for i, j in ((1, 0), (3, 2), (5, 4)):
            gap = (up[i] - low[j]) @ axis
            if gap < -0.5:  # left crossed only when wider than one band (3 mm slices: 3 + 2 x 1 mm), and recorded
                assert upper.extra[CROSSED_KEY][KEYPOINT_NAMES[i]] > 5.0 and -gap > 4.5, (upper.label, gap)
                assert lower.extra[CROSSED_KEY][KEYPOINT_NAMES[j]] > 5.0
    assert len(errors) >= len(errors_without) >= 9
    assert np.mean(errors) < np.mean(errors_without) - 0.1
