import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from VertebralFractureLib.genant import (
    GRADE_THRESHOLDS,
    KEYPOINT_NAMES,
    SIZE_TOLERANCE,
    GenantError,
    as_segments,
    deformity_type,
    expected_heights,
    genant_index,
    grade_from_reduction,
    heights,
    measure,
    measure_column,
    neighbour_reductions,
    patient_grade,
)


def body(ha, hm, hp, top=0.0, depth=30.0):
    """Six LPS keypoints of a lateral-view body: anterior at y = 0, posterior at y = depth."""
    y = (0.0, depth / 2, depth)
    points = []
    for yy, h in zip(y, (ha, hm, hp)):
        points += [[0.0, yy, top], [0.0, yy, top - h]]
    return np.array(points)


def test_keypoint_order_is_the_segments_order():
    assert KEYPOINT_NAMES[0::2] == ("anterior superior", "middle superior", "posterior superior")
    segments = as_segments(body(10, 11, 12))
    assert segments.shape == (3, 2, 3)
    assert heights(segments).tolist() == [10, 11, 12]
    assert heights(body(10, 11, 12)[:, 1:]).tolist() == [10, 11, 12]  # 2D points


def test_hand_computed_posterior_reduction():
    # 10 / 10 / 8: G = 0.8, reduction 0.2 -> grade 1, posterior lowest -> "crush" by the module's rule
    m = measure(body(10, 10, 8))
    assert m.heights == (10.0, 10.0, 8.0)
    assert m.G == pytest.approx(0.8)
    assert (m.grade, m.type) == (1, "crush")
    assert m.reduction == pytest.approx(0.2)
    assert m.neighbour_reduction is None


@pytest.mark.parametrize(
    "h, G, grade, kind",
    [
        ((8, 10, 10), 0.8, 1, "wedge"),
        ((10, 7, 10), 0.7, 2, "biconcave"),
        ((10, 10, 10), 1.0, 0, "none"),
        ((4, 10, 10), 0.4, 3, "wedge"),
        ((25, 24, 26), 24 / 26, 0, "none"),
        ((10, 6, 10), 0.6, 2, "biconcave"),  # reduction exactly 0.40 is still grade 2
        ((10, 7.5, 10), 0.75, 2, "biconcave"),  # exactly 0.25 -> grade 2
        ((10, 10, 7.6), 0.76, 1, "crush"),
    ],
)
def test_hand_computed_cases(h, G, grade, kind):
    m = measure(body(*h))
    assert m.G == pytest.approx(G)
    assert (m.grade, m.type) == (grade, kind)


@pytest.mark.parametrize(
    "reduction, grade",
    [
        (0.0, 0),
        (0.1999999, 0),
        (0.2, 1),
        (1 - 0.8, 1),  # 0.19999999999999996 in floating point
        (0.2499999, 1),
        (0.25, 2),
        (1 - 0.75, 2),
        (0.4, 2),
        (1 - 0.6, 2),  # 0.4000000000000001
        (0.4000001, 3),
        (0.9, 3),
        (1.0, 3),
    ],
)
def test_grade_boundaries(reduction, grade):
    assert grade_from_reduction(reduction) == grade


def test_grade_thresholds_constant():
    assert GRADE_THRESHOLDS == (0.20, 0.25, 0.40)
    for value in (float("nan"), float("inf"), None):
        with pytest.raises(GenantError, match="finite"):
            grade_from_reduction(value)


@given(st.floats(0, 1))
def test_grade_is_monotonic(r):
    assert grade_from_reduction(r) <= grade_from_reduction(min(1.0, r + 0.01))
    expected = 0 if r < 0.2 - 1e-9 else 1 if r < 0.25 - 1e-9 else 2 if r <= 0.4 + 1e-9 else 3
    if min(abs(r - t) for t in GRADE_THRESHOLDS) > 1e-8:
        assert grade_from_reduction(r) == expected


@given(st.tuples(*[st.floats(0.5, 60)] * 3))
def test_g_is_min_over_max_and_scale_invariant(h):
    m = measure(body(*h))
    assert m.G == pytest.approx(min(h) / max(h))
    assert 0 < m.G <= 1
    scaled = measure(body(*(3.7 * x for x in h)))
    assert scaled.G == pytest.approx(m.G)
    assert (
        scaled.grade == m.grade or abs(m.reduction - min(GRADE_THRESHOLDS, key=lambda t: abs(t - m.reduction))) < 1e-9
    )


def test_crush_found_only_by_neighbours():
    levels = ["T12", "L1", "L2"]
    points = [body(25, 25, 25, 60), body(17.5, 17.5, 17.5, 30), body(25, 25, 25, 0)]
    measures = measure_column(levels, points, exact=True)
    l1 = measures[1]
    assert l1.G == pytest.approx(1.0)
    # 30 % smaller than its neighbours, of which 5 % are within normal level-to-level variation
    assert l1.neighbour_reduction == pytest.approx(0.3 - SIZE_TOLERANCE)
    assert (l1.grade, l1.type) == (2, "crush")
    assert measures[0].grade == measures[2].grade == 0
    # alone, the same vertebra looks normal
    assert measure(points[1]).grade == 0


def test_neighbour_reduction_does_not_lower_a_grade():
    m = measure(body(6, 10, 10), neighbour_reduction=0.0)
    assert (m.grade, m.type) == (2, "wedge")
    # a raised grade keeps the type of the vertebra's own deformity; crush only for a normal shape
    m = measure(body(7.8, 10, 10), neighbour_reduction=0.3)
    assert (m.grade, m.type) == (2, "wedge")
    m = measure(body(9.5, 10, 10), neighbour_reduction=0.3)
    assert (m.grade, m.type) == (2, "crush")
    m = measure(body(10, 10, 10), neighbour_reduction=-0.5)
    assert m.grade == 0
    m = measure(body(10, 10, 10), neighbour_reduction=float("nan"))
    assert m.grade == 0


def test_neighbour_reductions_interpolate_by_level():
    # L1 20 mm, L3 30 mm -> L2 expected 25 mm; L2 (G 20/22) at 22 mm: deficit 0.12, 0.07 counted
    r = neighbour_reductions(["L1", "L2", "L3"], [(20, 20, 20), (20, 21, 22), (30, 30, 30)])
    assert r[1] == pytest.approx(1 - (20 / 22) * (1 - (1 - 22 / 25 - SIZE_TOLERANCE)))
    # L1 has only a caudal reference (L2, G 0.91, 22 mm): a 9 % deficit, 4 % counted
    assert r[0] == pytest.approx(1 - (20 / 22 + SIZE_TOLERANCE))
    assert r[2] == pytest.approx(0.0)  # bigger than its reference: nothing counted
    # a body within the tolerance of its neighbours' size is graded by its own shape alone
    r = neighbour_reductions(["L1", "L2"], [(25, 27, 29), (20, 21, 28)])
    assert r[1] == pytest.approx(1 - 20 / 28)
    assert expected_heights(["L1", "L2"], [(25, 27, 29), (20, 21, 28)]) == [None, pytest.approx(29)]


def test_a_deformed_neighbour_is_no_reference():
    # T10 (G 0.6) is skipped: T9 is measured against T11 alone; T9, normal in shape but a quarter smaller
    # than T11, is graded by that comparison and so is no reference either (T10 against T11, T11 against none)
    levels, triples = ["T9", "T10", "T11"], [(16, 15, 17), (12, 18, 20), (22, 22, 23)]
    assert expected_heights(levels, triples) == [pytest.approx(23), pytest.approx(23), None]
    r = neighbour_reductions(levels, triples)
    assert r[0] == pytest.approx(1 - (15 / 17) * (1 - (1 - 17 / 23 - SIZE_TOLERANCE)))
    # a G of exactly 0.8 is grade 1 (not normal), so it is no reference either
    assert expected_heights(["L1", "L2"], [(16, 18, 20), (20, 20, 20)]) == [pytest.approx(20), None]


def test_a_borderline_normal_shape_beside_a_fracture_is_no_reference_when_it_is_small():
    # the sub-verse004 mask upsampled to 0.7 mm: T10's own G reaches 0.81 (normal shape), but T10 is
    # graded against T11 (it is 13 % smaller), so T9 is still measured against T11, not against T10
    levels = ["T9", "T10", "T11", "T12"]
    triples = [(16.9, 16.0, 20.7), (18.3, 17.6, 21.8), (22.0, 21.9, 25.2), (23.7, 23.3, 26.3)]
    measures = measure_column(levels, [body(*h) for h in triples], exact=True)
    assert [m.grade for m in measures] == [2, 2, 0, 0]
    assert expected_heights(levels, triples)[0] == pytest.approx(25.2)


def test_two_adjacent_moderate_fractures_graded_against_the_normal_vertebrae():
    # heights of VerSe sub-verse004 (real mask, radiologists: T9 = T10 = grade 2): each is the other's
    # only close neighbour; both are graded against T11, the nearest normal vertebra
    levels = ["T9", "T10", "T11", "T12"]
    triples = [(17.1, 15.8, 20.5), (18.1, 17.1, 21.7), (22.3, 22.2, 25.0), (23.7, 23.3, 26.3)]
    measures = measure_column(levels, [body(*h) for h in triples], exact=True)
    assert [m.grade for m in measures] == [2, 2, 0, 0]
    assert [m.type for m in measures[:2]] == ["biconcave", "biconcave"]
    assert measures[0].neighbour_reduction == pytest.approx(1 - (15.8 / 20.5) * (20.5 / 25.0 + SIZE_TOLERANCE))
    # the same T9 and T10 against normal neighbours of their own size stay grade 1 (G alone)
    own_size = [(19, 19, 20.5)] + triples[:2] + [(20, 20, 21.7)]
    same_size = measure_column(["T8", "T9", "T10", "T11"], [body(*h) for h in own_size], exact=True)
    assert [m.grade for m in same_size] == [0, 1, 1, 0]


def test_detector_keypoints_a_short_body_is_a_crush_against_its_neighbours_intact_heights():
    # keypoints from a detector (the default) are compared by maximal height only (crush_reductions): L2 is
    # uniformly 27 % shorter than the intact heights beside it, where the wedge L1 counts at its posterior 29 mm
    levels = ["L1", "L2", "L3"]
    triples = [(20, 25, 29), (21, 21, 21.5), (29, 29, 30)]
    measures = measure_column(levels, [body(*h) for h in triples])
    assert [m.grade for m in measures] == [2, 2, 0]
    assert [m.type for m in measures] == ["wedge", "crush", "none"]
    assert measures[1].neighbour_reduction == pytest.approx(1 - 21.5 / ((29 + 30) / 2))
    assert measures[1].G == pytest.approx(21 / 21.5)


def test_detector_keypoints_do_not_add_a_size_loss_to_a_shape_loss():
    # a mild wedge (G 0.78, grade 1) that is also 25 % shorter than its neighbours: from a detector the size is
    # not compounded with the shape (two noisy measures), so it stays grade 1; from exact keypoints it is grade 2
    levels = ["L1", "L2", "L3"]
    points = [body(*h) for h in [(28, 28, 29), (17.2, 20, 22), (29, 29, 30)]]
    detected = measure_column(levels, points)
    assert [m.grade for m in detected] == [0, 1, 0]
    assert detected[1].type == "wedge"
    assert detected[1].neighbour_reduction == pytest.approx(1 - 22 / 29.5)
    assert [m.grade for m in measure_column(levels, points, exact=True)] == [0, 2, 0]


def test_neighbours_more_than_two_levels_away_are_ignored():
    assert neighbour_reductions(["T5", "T8"], [(20, 20, 20), (10, 10, 10)]) == [None, None]
    r = neighbour_reductions(["T5", "T7"], [(20, 20, 20), (10, 10, 10)])
    # T7 is graded against T5 and so stops being T5's reference
    assert r == [None, pytest.approx(1 - (0.5 + SIZE_TOLERANCE))]
    assert neighbour_reductions(["L1"], [(20, 20, 20)]) == [None]


def test_typical_spine_t12_and_l1_are_adjacent():
    # without a T13 in the column, T11 - T12 - L1 are consecutive: T12 expected = mean(24, 27)
    r = expected_heights(["T11", "T12", "L1"], [(24,) * 3, (20,) * 3, (27,) * 3])
    assert r[1] == pytest.approx(25.5)
    # and T11 / L1 are two levels apart, close enough to be neighbours
    r = expected_heights(["T11", "L1"], [(24,) * 3, (20,) * 3])
    assert r[1] == pytest.approx(24)
    # with a T13, it takes its own slot
    r = expected_heights(["T12", "T13", "L1"], [(24,) * 3, (20,) * 3, (27,) * 3])
    assert r[1] == pytest.approx(25.5)
    r = neighbour_reductions(["L4", "L5", "S1"], [(30,) * 3, (24,) * 3, (30,) * 3])
    assert r[1] == pytest.approx(1 - (0.8 + SIZE_TOLERANCE))


def test_duplicate_levels_and_mismatched_lengths():
    with pytest.raises(GenantError, match="duplicate vertebra levels: L1$"):  # only the repeated level named
        neighbour_reductions(["L1", "L2", "L1"], [(1, 1, 1)] * 3)
    with pytest.raises(GenantError, match="duplicate"):
        neighbour_reductions(["Th7", "T7"], [(1, 1, 1)] * 2)
    with pytest.raises(GenantError, match="2 levels but 1"):
        neighbour_reductions(["L1", "L2"], [(1, 1, 1)])


def test_degenerate_heights():
    with pytest.raises(GenantError, match="degenerate keypoints: posterior height is 0"):
        measure(body(10, 10, 0))
    with pytest.raises(GenantError, match="anterior, middle, posterior"):
        genant_index([0, 0, 0])
    with pytest.raises(GenantError, match="three finite heights"):
        genant_index([1, 2])
    with pytest.raises(GenantError, match="L2: degenerate"):
        measure_column(["L1", "L2"], [body(10, 10, 10), np.zeros((6, 3))])


def test_nan_points_name_the_keypoint():
    points = body(10, 10, 10)
    points[3, 2] = math.nan
    points[4, 0] = math.inf
    with pytest.raises(GenantError, match="middle inferior, posterior superior"):
        heights(points)
    with pytest.raises(GenantError, match="T4: keypoints contain non-finite"):
        measure_column(["T4"], [points])


@pytest.mark.parametrize("shape", [(5, 3), (7, 3), (6, 4), (6, 1), (3, 3, 3), (2, 3, 3), (18,), ()])
def test_wrong_shapes(shape):
    with pytest.raises(GenantError, match="expected 6 keypoints"):
        as_segments(np.zeros(shape))


def test_non_numeric_points():
    with pytest.raises(GenantError, match="not numeric"):
        as_segments([["a", "b", "c"]] * 6)


def test_deformity_type_and_patient_grade():
    assert deformity_type((5, 10, 10), 0) == "none"
    assert deformity_type((10, 10, 5), 2) == "crush"
    assert patient_grade([0, 2, 1]) == 2
    assert patient_grade([]) == 0


def test_detected_keypoints_are_only_compared_for_crush():
    # the sub-verse004 heights again, as if a detector had placed the points: T9 / T10 keep the grade of
    # their own shape (a size comparison would compound two noisy detections), a crush is still found
    levels = ["T9", "T10", "T11", "T12"]
    triples = [(17.1, 15.8, 20.5), (18.1, 17.1, 21.7), (22.3, 22.2, 25.0), (23.7, 23.3, 26.3)]
    detected = measure_column(levels, [body(*h) for h in triples], exact=False)
    assert [m.grade for m in detected] == [1, 1, 0, 0]
    mixed = measure_column(levels, [body(*h) for h in triples], exact=[True, False, False, False])
    assert [m.grade for m in mixed] == [2, 1, 0, 0]
    column = [body(25, 25, 25, 60), body(17.5, 17.5, 17.5, 30), body(25, 25, 25, 0)]
    crushed = measure_column(["T12", "L1", "L2"], column, exact=False)
    assert (crushed[1].grade, crushed[1].type) == (2, "crush")
    assert crushed[1].neighbour_reduction == pytest.approx(0.3)
    with pytest.raises(GenantError, match="2 levels but 1 exact flags"):
        measure_column(["L1", "L2"], [body(25, 25, 25), body(25, 25, 25)], exact=[True])
