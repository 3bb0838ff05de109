"""Level anchors on the real CTs: the 12th rib, the iliac crests, and "levels uncertain" without them."""

from __future__ import annotations

import numpy as np
import pytest

from VertebralFractureLib.keypoints.level_anchors import (
    UNCERTAIN_WARNING,
    Landmarks,
    LevelAnchor,
    anchored_confidence,
    anchored_scores,
    find_anchor,
)
from VertebralFractureLib.levels import LABEL_LEVELS
from VertebralFractureLib.training.real.reference import load_case

CASES = ("cptac_chest", "sample_ct", "cptac_cardiac_b")


def _analyse(case: str):
    from VertebralFractureLib.keypoints.stage import KeypointStage
    from VertebralFractureLib.pipeline import analyze
    from VertebralFractureLib.spine.stage import CentrelineStage, StraighteningStage

    reference = load_case(case)
    analysis = analyze(reference.image_path, stages=[CentrelineStage(), StraighteningStage(), KeypointStage()])
    return reference, analysis.result


def _nearest_reference_labels(reference, result):
    """(reported, reference) label pairs of reported vertebrae within 15 mm of a reference centroid."""
    points = np.array([v.centroid for v in reference.vertebrae])
    pairs = []
    for vertebra in result.vertebrae:
        distance = np.linalg.norm(points - np.asarray(vertebra.centroid), axis=1)
        if distance.min() <= 15.0:
            pairs.append((vertebra.label, reference.vertebrae[int(distance.argmin())].label))
    return pairs


@pytest.fixture(scope="module")
def analysed():
    return {case: _analyse(case) for case in CASES}


def test_chest_ct_counted_from_the_12th_rib(analysed):
    reference, result = analysed["cptac_chest"]
    pairs = _nearest_reference_labels(reference, result)
    assert len(pairs) >= 5
    right = sum(reported == truth for reported, truth in pairs)
    assert right / len(pairs) >= 0.9, pairs
    levels = result.patient["levels"]
    assert levels["anchor"] == "12th rib" and levels["certain"] is True
    assert levels["method"].startswith("counted from the 12th rib")
    assert UNCERTAIN_WARNING not in result.warnings
    assert all(v.confidence is not None and v.confidence <= 0.95 for v in result.vertebrae)


def test_sample_ct_anchored_on_the_sacrum(analysed):
    reference, result = analysed["sample_ct"]
    pairs = _nearest_reference_labels(reference, result)
    assert [reported for reported, _ in pairs] == [truth for _, truth in pairs]
    assert [reported for reported, _ in pairs][-1] == "L5"
    levels = result.patient["levels"]
    assert levels["certain"] is True and "iliac crests" in levels["anchor"]


def test_cardiac_crop_without_anchor_says_levels_uncertain(analysed):
    _, result = analysed["cptac_cardiac_b"]
    assert result.vertebrae, "the crop still shows T10-T11"
    levels = result.patient["levels"]
    assert levels == {"anchor": None, "certain": False, "method": UNCERTAIN_WARNING, "confidence": 0.0}
    assert UNCERTAIN_WARNING in result.warnings
    assert all(v.confidence <= 0.5 for v in result.vertebrae)


def test_no_anchor_looked_for_is_reported_as_levels_uncertain():
    # the report of a scan where no anchor could be looked for (the detector's fallback) never says "certain"
    from VertebralFractureLib.keypoints.level_anchors import uncertain_report

    assert uncertain_report() == {"anchor": None, "certain": False, "method": UNCERTAIN_WARNING, "confidence": 0.0}
    assert UNCERTAIN_WARNING.startswith("levels uncertain")


def _landmarks(ribs_rows, pelvis=(), rows_mm=400.0):
    from VertebralFractureLib.keypoints.level_anchors import Rib

    ribs = [Rib(side, row, 100.0) for row in ribs_rows for side in ("right", "left")]
    view = np.ones((int(rows_mm / 2), 2))
    return Landmarks(ribs, list(pelvis), rows_mm, view)


def test_last_rib_bearing_body_above_a_rib_free_one_is_t12():
    tops = np.arange(0, 200, 25.0)
    anchor = find_anchor(_landmarks([12.0, 37.0, 62.0]), tops, tops + 20)
    assert (anchor.anchor, anchor.index, anchor.level) == ("12th rib", 2, "T12")
    assert anchor.rib_bearing[3] == (False, False)


def test_12th_rib_and_crest_that_disagree_leave_the_levels_uncertain():
    tops = np.arange(0, 200, 25.0)
    # T12 at index 0 puts L4 at index 4; a crest at index 5 means 13 rib pairs or an L6
    anchor = find_anchor(_landmarks([12.0], pelvis=[135.0]), tops, tops + 20)
    assert anchor.anchor is None and anchor.certain is False
    assert "disagree by 1 level" in anchor.method


def test_rib_missing_beside_a_body_out_of_view_is_not_evidence():
    tops = np.arange(0, 100, 25.0)
    landmarks = _landmarks([12.0, 37.0])
    landmarks.band_in_view[:] = 0.0
    anchor = find_anchor(landmarks, tops, tops + 20)
    assert anchor.anchor is None and anchor.method == UNCERTAIN_WARNING


def test_anchor_pins_its_level_and_flattens_the_classifier():
    channels = list(LABEL_LEVELS)
    scores = np.random.default_rng(0).uniform(size=(3, len(channels)))
    anchor = LevelAnchor("12th rib", 1, "T12", True, 0.9, "counted from the 12th rib")
    pinned = anchored_scores(scores, anchor, channels, order=np.array([2, 0, 1]))
    assert pinned[0, channels.index("T12")] == 5.0 and pinned[0].min() == -5.0
    transitional = [channels.index("T13"), channels.index("L6")]
    assert np.all(pinned[:, transitional] == -5.0)  # the anatomy shows no transitional vertebra: never decoded
    assert np.all(np.delete(pinned[[1, 2]], transitional, axis=1) == 0.0)
    confidence = anchored_confidence(["T11", "T12", "L2"], np.ones(3), anchor)
    np.testing.assert_allclose(confidence, [0.88, 0.9, 0.86])
    unanchored = LevelAnchor(None, None, None, False, 0.0, UNCERTAIN_WARNING)
    np.testing.assert_allclose(anchored_confidence(["T1"], np.array([0.9]), unanchored), [0.5])


def _rib_volume(rib_bodies, tops, height=20.0, slope=1.0, fov_end_mm=None, sides=("right", "left")):
    """A wide straightening ``[row, col, lat]`` (2 mm): a bone column, thin ribs descending laterally.

    Ribs start at their body's top + 5 mm beside the column (28 mm lateral) and descend ``slope`` mm per mm
    outward to 130 mm; rows from ``fov_end_mm`` on lie outside the CT (:data:`OUTSIDE`).
    """
    from VertebralFractureLib.keypoints.level_anchors import GRID_MM, OUTSIDE

    rows, cols, lats = 180, 71, 141
    lateral = (np.arange(lats) - (lats - 1) / 2.0) * GRID_MM
    ap = (np.arange(cols) - (cols - 1) / 2.0) * GRID_MM
    volume = np.zeros((rows, cols, lats), np.float32)
    column = (np.abs(ap) <= 20)[:, None] & (np.abs(lateral) <= 20)[None, :]
    volume[:, column] = 400.0
    for k in rib_bodies:
        for side in sides:
            sign = -1.0 if side == "right" else 1.0
            for d in np.arange(28.0, 130.0, 1.0):
                row = (tops[k] + 5.0 + slope * (d - 28.0)) / GRID_MM
                lat = int(round(sign * d / GRID_MM + (lats - 1) / 2.0))
                r0 = int(round(row))
                if 0 <= r0 < rows - 2:
                    volume[r0 : r0 + 3, (ap >= 8) & (ap <= 14), lat] = 700.0
    if fov_end_mm is not None:
        volume[int(fov_end_mm / GRID_MM):] = OUTSIDE
    return volume


def test_last_body_whose_rib_region_is_cut_is_no_rib_free_body():
    """Seed 900000's failure: a rib-bearing last body near the inferior edge must not look rib-free."""
    from VertebralFractureLib.keypoints.level_anchors import find_landmarks

    tops = 10.0 + 25.0 * np.arange(7)
    bottoms = tops + 20.0
    # every body bears ribs (T6-T12); the scan ends 2 mm below the last body's centre, before its rib
    # (descending 1 mm per mm) reaches the band
    landmarks = find_landmarks(_rib_volume(range(7), tops, fov_end_mm=0.5 * (tops[-1] + bottoms[-1]) + 2.0))
    anchor = find_anchor(landmarks, tops, bottoms)
    assert anchor.rib_bearing[-1] == (None, None)
    assert anchor.anchor is None and anchor.index is None and anchor.certain is False
    # a rib that leaves the scan after crossing half the band touches the edge of the field of view: a rib
    landmarks = find_landmarks(_rib_volume(range(7), tops, fov_end_mm=bottoms[-1] + 12.0))
    anchor = find_anchor(landmarks, tops, bottoms)
    assert anchor.rib_bearing[-1] == (True, True) and anchor.anchor is None


def test_rib_free_body_with_its_search_region_in_view_anchors_t12():
    from VertebralFractureLib.keypoints.level_anchors import find_landmarks

    tops = 10.0 + 25.0 * np.arange(7)
    bottoms = tops + 20.0
    landmarks = find_landmarks(_rib_volume(range(5), tops))  # ribs on bodies 0-4, 5 and 6 rib-free, all in view
    anchor = find_anchor(landmarks, tops, bottoms)
    assert anchor.rib_bearing[5] == (False, False) and anchor.rib_bearing[4] == (True, True)
    assert (anchor.anchor, anchor.index, anchor.level) == ("12th rib", 4, "T12")
    # the scan ending 10 mm below body 5: its rib search region is in view, the transition still anchors T12
    below = find_landmarks(_rib_volume(range(5), tops, fov_end_mm=bottoms[5] + 10.0))
    assert find_anchor(below, tops[:6], bottoms[:6]).index == 4
    # the scan ending at body 5's centre: its rib region is cut, no transition is seen
    cut = find_landmarks(_rib_volume(range(5), tops, fov_end_mm=0.5 * (tops[5] + bottoms[5])))
    anchor = find_anchor(cut, tops[:6], bottoms[:6])
    assert anchor.rib_bearing[5] == (None, None)
    assert anchor.anchor is None and anchor.certain is False


def test_lateral_field_of_view_cut_leaves_the_side_unobserved():
    from VertebralFractureLib.keypoints.level_anchors import GRID_MM, OUTSIDE, find_landmarks

    tops = 10.0 + 25.0 * np.arange(7)
    bottoms = tops + 20.0
    volume = _rib_volume(range(5), tops)
    volume[:, :, :60] = OUTSIDE  # the patient's right beyond 20 mm is out of the field of view
    anchor = find_anchor(find_landmarks(volume), tops, bottoms)
    assert all(sides[0] is None for sides in anchor.rib_bearing)
    # the left side alone shows the transition at body 4: a missed short 12th rib on that side cannot be ruled out
    assert anchor.anchor is None and anchor.certain is False and "one side only" in anchor.method
    # with the right side's ribs in view beside T12 (here: its band cut below body 4 only), T12 is anchored
    volume = _rib_volume(range(5), tops)
    volume[int(bottoms[4] / GRID_MM) + 6:, :, :60] = OUTSIDE
    anchor = find_anchor(find_landmarks(volume), tops, bottoms)
    assert anchor.rib_bearing[4] == (True, True) and anchor.rib_bearing[5][0] is None
    assert (anchor.anchor, anchor.index) == ("12th rib", 4) and "one side in view" in anchor.method


def test_a_12th_rib_missed_on_the_one_side_in_view_leaves_the_levels_uncertain():
    """The real chest CT cut 27 mm beside its spine: only the right ribs in view, the right 12th rib not found, so
    T11 looked like the last rib-bearing body and every level was named one off with certainty."""
    tops = np.arange(0, 200, 25.0)
    landmarks = _landmarks([12.0, 37.0, 62.0])  # ribs beside bodies 0-2 on both sides
    landmarks.ribs = [rib for rib in landmarks.ribs if rib.side == "right" and rib.row_mm < 60.0]  # the last missed
    landmarks.band_in_view[:, 1] = 0.0  # the left side out of view
    anchor = find_anchor(landmarks, tops, tops + 20)
    assert anchor.rib_bearing[1] == (True, None) and anchor.rib_bearing[2] == (False, None)
    assert anchor.anchor is None and anchor.certain is False and "one side only" in anchor.method


def test_rows_beyond_the_straightening_are_not_in_view():
    landmarks = _landmarks([12.0], rows_mm=100.0)
    assert landmarks.in_view(0, 10.0, 90.0)
    assert not landmarks.in_view(0, 60.0, 120.0)
    assert not landmarks.in_view(0, -4.0, 30.0)


def test_a_rib_below_the_transition_on_the_other_side_leaves_the_levels_uncertain():
    from VertebralFractureLib.keypoints.level_anchors import Rib

    tops = np.arange(0, 200, 25.0)
    landmarks = _landmarks([12.0, 37.0, 62.0])
    landmarks.ribs.append(Rib("left", 87.0, 100.0))  # a left rib at the body the right side calls L1
    landmarks.band_in_view[int(100 / 2):, 1] = 0.0  # ... and the left band cut below it
    anchor = find_anchor(landmarks, tops, tops + 20)
    assert anchor.rib_bearing[3] == (False, True)
    assert anchor.anchor is None and anchor.certain is False


def _with_kidneys(volume: np.ndarray, centre_mm: float, seed: int = 0) -> np.ndarray:
    """Contrast-enhanced kidneys beside the column: speckles of 195 +- 40 HU around ``centre_mm`` (rows).

    Half their voxels exceed :data:`BONE_HU` in noise, which connect into components crossing the rib band;
    anterior to the ribs (which lie 8-14 mm posterior), as a kidney's upper pole under the 12th rib.
    """
    from VertebralFractureLib.keypoints.level_anchors import GRID_MM

    rows, cols, lats = volume.shape
    row = np.arange(rows)[:, None, None] * GRID_MM
    ap = ((np.arange(cols) - (cols - 1) / 2.0) * GRID_MM)[None, :, None]
    lateral = ((np.arange(lats) - (lats - 1) / 2.0) * GRID_MM)[None, None, :]
    rng = np.random.default_rng(seed)
    out = volume.copy()
    for sign in (-1.0, 1.0):
        radius = ((row - centre_mm) / 16.0) ** 2 + ((ap + 22.0) / 10.0) ** 2 + ((lateral - sign * 62.0) / 26.0) ** 2
        kidney = radius <= 1.0
        out[kidney] = 195.0 + 40.0 * rng.standard_normal(int(kidney.sum()))
    return out


def test_enhanced_kidney_crossing_the_rib_band_is_no_rib():
    """The 1 mm resampled chest CT's failure: kidney cortex speckles crossing the band beside L1 made it rib-bearing.

    Here the kidneys lie beside body 5 (the first rib-free one): taken for ribs they named body 5 T12 (certain,
    one level off); as enhanced soft tissue they hide whether body 5 bears a rib, and the levels stay uncertain.
    """
    from VertebralFractureLib.keypoints.level_anchors import BONE_HU, find_landmarks

    tops = 10.0 + 25.0 * np.arange(7)
    bottoms = tops + 20.0
    volume = _with_kidneys(_rib_volume(range(5), tops), 0.5 * (tops[5] + bottoms[5]) + 4.0)
    assert np.mean(volume[(volume > 0) & (volume < 400)] > BONE_HU) > 0.3  # speckles above the bone threshold
    landmarks = find_landmarks(volume)
    assert not [rib for rib in landmarks.ribs if rib.row_mm > tops[5] - 4.0]
    assert {side for side, _, _ in landmarks.soft} == {"right", "left"}
    anchor = find_anchor(landmarks, tops, bottoms)
    assert anchor.rib_bearing[4] == (True, True) and anchor.rib_bearing[5] == (None, None)
    assert anchor.anchor is None and anchor.certain is False
    # the kidneys beside a rib-bearing body (T12) leave the transition below it in view
    volume = _with_kidneys(_rib_volume(range(6), tops), 0.5 * (tops[5] + bottoms[5]) - 4.0)
    anchor = find_anchor(find_landmarks(volume), tops, bottoms)
    assert (anchor.anchor, anchor.index, anchor.rib_bearing[6]) == ("12th rib", 5, (False, False))


def test_a_faint_piece_cut_by_the_edge_of_the_view_is_no_rib_and_a_dense_one_is():
    """A small reconstruction circle cuts the band beside L1 (body 5): an enhanced kidney's edge there (230 HU, solid)
    runs into the padding. Taken for a rib (the real chest CT in a 180 mm circle, before 2026-12-07), body 5 bore a rib
    on the left, the sides disagreed and the levels were uncertain; as soft tissue it hides the left side only, and
    the right side's transition anchors T12. A rib cut there by the same edge (700 HU) is still a rib."""
    from VertebralFractureLib.keypoints.level_anchors import GRID_MM, OUTSIDE, find_landmarks

    tops = 10.0 + 25.0 * np.arange(7)
    bottoms = tops + 20.0
    lats, cols = 141, 71
    lateral = (np.arange(lats) - (lats - 1) / 2.0) * GRID_MM
    ap = (np.arange(cols) - (cols - 1) / 2.0) * GRID_MM
    rows = slice(int((tops[5] + 4.0) / GRID_MM), int((tops[5] + 12.0) / GRID_MM))
    piece = ((ap >= -20) & (ap <= -10))[:, None] & ((lateral >= 36) & (lateral <= 56))[None, :]
    for value, expected in ((230.0, ("12th rib", 4)), (700.0, (None, None))):
        volume = _rib_volume(range(5), tops)
        volume[:, :, lateral > 56] = np.where(np.arange(volume.shape[0])[:, None, None] * GRID_MM >= tops[4],
                                              OUTSIDE, volume[:, :, lateral > 56])  # the circle's edge, L1 down
        volume[rows][:, piece] = value  # a view of the rows: the piece is written into the volume
        landmarks = find_landmarks(volume)
        anchor = find_anchor(landmarks, tops, bottoms)
        assert (anchor.anchor, anchor.index) == expected, (value, anchor.method, anchor.rib_bearing)
        if value < 300.0:
            assert anchor.rib_bearing[5] == (False, None) and anchor.certain is True
        else:
            assert anchor.rib_bearing[5] == (False, True) and anchor.certain is False


@pytest.mark.slow
def test_chest_ct_in_a_small_reconstruction_circle_is_still_counted_from_the_12th_rib():
    """The chest CT as a 180 mm reconstruction centred on its spine would give it: a square of 180 mm, padded with
    -3024 HU outside the circle. Before 2026-12-07 the left kidney's edge, cut by the circle beside L1, was taken for a
    rib: "levels uncertain", T4-L3 named for T2-L1."""
    from testdata import benchmark

    from VertebralFractureLib.io.images import read_image

    reference = load_case("cptac_chest")
    centre = np.median(np.array([v.centroid for v in reference.vertebrae]), axis=0)
    circle = benchmark("bench_real_variants").reconstruction_circle(read_image(reference.image_path), centre[:2], 90.0)
    assert circle.GetSize()[:2] == (161, 164)  # 180 mm across at 1.1 mm pixels
    _assert_counted_from_the_12th_rib(circle, reference, min_bodies=10)


def test_rib_above_the_first_detection_belongs_to_the_undetected_body_above():
    """The 1 mm resampled abdomen CT's failure: T12 at the top edge was not detected, its rib was given to L1."""
    tops = 10.0 + 25.0 * np.arange(6)
    bottoms = tops + 20.0
    anchor = find_anchor(_landmarks([3.0]), tops, bottoms)  # 7 mm above the first top, the disc is 5 mm
    assert anchor.rib_bearing[0] == (False, False)
    assert anchor.anchor is None and anchor.certain is False
    # a rib within half the disc above the first detection's top is still its own
    assert find_anchor(_landmarks([8.0]), tops, bottoms).index == 0


def test_oblique_field_of_view_edge_cutting_a_corner_of_the_rib_region_still_observes_no_rib():
    """The real chest CT's L1: the oblique inferior edge cuts the posterior corner of its search region's last rows.

    The band is in view over 96 % of the region (three rows 85 % in view): "no rib" is an observation. One row
    wholly out of view is not (a square cut through the region).
    """
    tops = np.arange(0, 200, 25.0)
    landmarks = _landmarks([12.0, 37.0, 62.0])  # ribs at bodies 0-2; body 3's region: rows 71-91 mm
    landmarks.band_in_view[44:] = 0.85
    anchor = find_anchor(landmarks, tops[:4], tops[:4] + 20)
    assert anchor.rib_bearing[3] == (False, False)
    assert (anchor.anchor, anchor.index) == ("12th rib", 2)
    landmarks.band_in_view[44:46] = 1.0
    landmarks.band_in_view[46:] = 0.0
    anchor = find_anchor(landmarks, tops[:4], tops[:4] + 20)
    assert anchor.rib_bearing[3] == (None, None) and anchor.anchor is None


def test_iliac_crests_beside_a_missed_or_doubled_detection_do_not_anchor():
    """The 5 mm resampled abdomen CT's failure: duplicates below L4 made L3 -> L4 look like a skip; T12 L1 L2 L4."""
    tops = np.arange(0, 200, 25.0)
    crest = _landmarks([], pelvis=[135.0])  # the crests at body 5
    anchored = find_anchor(crest, tops, tops + 20)
    assert (anchored.anchor, anchored.index) == ("iliac crests", 5)
    irregular = np.ones(len(tops), dtype=bool)
    irregular[4] = False  # the step from body 4 to body 5 looks like a missed vertebra
    anchor = find_anchor(crest, tops, tops + 20, irregular)
    assert anchor.anchor is None and anchor.certain is False and "iliac crests" in anchor.method
    # with the 12th rib agreeing, the rib alone anchors; disagreeing, the crests still veto it
    agree = find_anchor(_landmarks([12.0, 37.0], pelvis=[135.0]), tops, tops + 20, irregular)
    assert (agree.anchor, agree.index) == ("12th rib", 1)
    disagree = find_anchor(_landmarks([12.0, 37.0, 62.0], pelvis=[135.0]), tops, tops + 20, irregular)
    assert disagree.anchor is None and "disagree by 1" in disagree.method


def test_a_contrast_filled_colon_beside_the_column_is_no_iliac_crest_and_a_thin_plate_is():
    """Large bone beside the column marks the iliac crests only where it starts as a plate: a bowel loop filled with
    positive oral contrast (a solid tube 36 mm across, 450 HU, beside the bodies above the pelvis) was taken for the
    crests on the real abdominal CT with an opacified colon drawn beside L2-L4 (the 12th rib and the "crests" then
    disagreed by two levels). The iliac wing, 8 mm thick near its crest, stays the crest."""
    from VertebralFractureLib.keypoints.level_anchors import PELVIS_MIN_AREA_MM2, find_landmarks

    volume, row, ap, lateral = _straightened_grid(rows=220)
    wing = (np.abs(lateral) >= 55) & (np.abs(lateral) <= 110) & (row >= 300) & (np.abs(ap - 20.0) <= 4)
    volume[np.broadcast_to(wing, volume.shape)] = 500.0
    colon = ((lateral - 80.0) ** 2 + (ap + 20.0) ** 2 <= 18.0**2) & (row >= 180) & (row <= 260)
    volume[np.broadcast_to(colon, volume.shape)] = 450.0
    section = float(np.pi * 18.0**2)
    assert section >= PELVIS_MIN_AREA_MM2 and 55.0 * 8.0 >= PELVIS_MIN_AREA_MM2  # both large enough to be a crest
    assert find_landmarks(volume, SPACING_MM).pelvis_tops_mm == [300.0, 300.0]


@pytest.mark.slow
def test_the_abdomen_ct_with_an_opacified_colon_is_counted_from_the_12th_rib_and_the_crests():
    """The real abdominal CT with its descending colon filled with oral contrast beside L2-L4
    (``bench_real_variants.oral_contrast_colon``): before 2026-12-07 the centre-line ran into the colon, one box was
    reported beside the spine, and the bodies found were named T4-T11, "levels uncertain". Every body is found near its
    reference, named as it, and the 12th rib and the crests agree (the colon is not taken for the crests)."""
    result = _assert_every_body_named_beside_a_colon()
    levels = result.patient["levels"]
    assert levels["anchor"] == "12th rib + iliac crests" and levels["certain"] is True


@pytest.mark.slow
def test_a_wide_colon_beside_l1_l4_does_not_bend_the_curve_into_a_second_box():
    """A wider colon (44 mm across, 70 mm beside and 30 mm in front of the column, L1 to L4) on the real abdominal CT.
    The curve follows the track's body centre along the stretch the network put into the colon; without the network's
    local offset from that centre (``centreline._local_offset``) the curve stepped forward 10 mm over 12 mm at L1/L2,
    L2 came out 1.5 times as tall, was boxed twice, and the bodies below were named one level off "counted from the
    12th rib" (measured 2026-12-07). Every body is found near its reference and named as it."""
    result = _assert_every_body_named_beside_a_colon(radius_mm=22.0, beside_mm=70.0, front_mm=30.0,
                                                     levels=("L1", "L4"))
    assert len(result.vertebrae) == 6  # no second box on L2


def _assert_every_body_named_beside_a_colon(**placement):
    """The centre-line, straightening and keypoint stages on the real abdominal CT with a colon of oral contrast drawn
    beside its spine (``bench_real_variants.oral_contrast_colon``, the default left one or ``placement``): T12-L5 each
    found within 15 mm of its reference centroid and named as it. Returns the result."""
    from testdata import benchmark

    from VertebralFractureLib.io.images import read_image
    from VertebralFractureLib.keypoints.stage import KeypointStage
    from VertebralFractureLib.pipeline import analyze
    from VertebralFractureLib.spine.stage import CentrelineStage, StraighteningStage

    reference = load_case("sample_ct")
    image = benchmark("bench_real_variants").oral_contrast_colon(read_image(reference.image_path), reference, "left",
                                                                 **placement)
    result = analyze(image, stages=[CentrelineStage(), StraighteningStage(), KeypointStage()]).result
    pairs = _nearest_reference_labels(reference, result)
    assert [truth for _, truth in pairs] == ["T12", "L1", "L2", "L3", "L4", "L5"]
    assert [reported for reported, _ in pairs] == [truth for _, truth in pairs]
    return result


def _assert_counted_from_the_12th_rib(image, reference, min_bodies: int) -> None:
    """The centre-line, straightening and keypoint stages on ``image``: at least ``min_bodies`` bodies near reference
    ones, each named as its reference body, and the count anchored on the 12th rib with certainty."""
    from VertebralFractureLib.keypoints.stage import KeypointStage
    from VertebralFractureLib.pipeline import analyze
    from VertebralFractureLib.spine.stage import CentrelineStage, StraighteningStage

    result = analyze(image, stages=[CentrelineStage(), StraighteningStage(), KeypointStage()]).result
    pairs = _nearest_reference_labels(reference, result)
    assert len(pairs) >= min_bodies
    assert [reported for reported, _ in pairs] == [truth for _, truth in pairs]
    levels = result.patient["levels"]
    assert levels["anchor"] == "12th rib" and levels["certain"] is True


def _resampled(path, spacing):
    """A real CT resampled (linear) to ``spacing``, same physical extent, as another scanner would send it."""
    import SimpleITK as sitk

    image = sitk.ReadImage(str(path))
    size = [max(1, int(round(n * old / new))) for n, old, new in zip(image.GetSize(), image.GetSpacing(), spacing)]
    return sitk.Resample(image, size, sitk.Transform(), sitk.sitkLinear, image.GetOrigin(), spacing,
                         image.GetDirection(), -1024, image.GetPixelID())


@pytest.mark.slow
def test_chest_ct_resampled_to_1mm_is_still_counted_from_the_12th_rib():
    """The chest CT (1.1 x 1.1 x 3 mm) at 1 mm isotropic: the same anatomy, the same anchor and labels T1-L1.

    Before: a kidney crossed the rib band beside L1 (a rib at L1 on the right) and L1's left band region lost
    its last row to the oblique field-of-view edge: "levels uncertain", T3-L3.
    """
    reference = load_case("cptac_chest")
    _assert_counted_from_the_12th_rib(_resampled(reference.image_path, (1.0, 1.0, 1.0)), reference, min_bodies=12)


def test_crests_with_ribs_beside_their_lumbar_bodies_and_no_12th_rib_do_not_anchor():
    """A generated chest CT at 0.9 times the mean size: its thin ribs were found beside some bodies only, so no
    12th-rib transition was seen, and a scapula below the first rib-free body passed for the iliac crests: the
    thoracic column was named L2-S1 with certainty. L1-L5 bear no ribs."""
    tops = np.arange(0, 200, 25.0)
    crest_below_ribs = _landmarks([], pelvis=[135.0])  # the crests at body 5: L4
    plain = find_anchor(crest_below_ribs, tops, tops + 20)
    assert (plain.anchor, plain.index, plain.certain) == ("iliac crests", 5, True)
    # the same "crest" with ribs found beside body 0 and again beside body 7 (its L5), none between: no clean
    # rib-bearing -> rib-free transition, so no 12th rib to compare the crest with
    contradicted = _landmarks([10.0, 185.0], pelvis=[135.0])
    anchor = find_anchor(contradicted, tops, tops + 20)
    assert anchor.anchor is None and anchor.certain is False and "ribs beside the bodies" in anchor.method


SPACING_MM = 2.0


def _straightened_grid(rows: int = 200, aps: int = 71, lats: int = 141):
    """An empty straightened volume ``[row, ap, lateral]`` at :data:`SPACING_MM` and its coordinates (mm) for
    broadcasting: rows from the top, antero-posterior and lateral from the middle."""
    volume = np.zeros((rows, aps, lats), np.float32)
    row = (np.arange(rows) * SPACING_MM)[:, None, None]
    ap = ((np.arange(aps) - (aps - 1) / 2) * SPACING_MM)[None, :, None]
    lateral = ((np.arange(lats) - (lats - 1) / 2) * SPACING_MM)[None, None, :]
    return volume, row, ap, lateral


def test_a_thick_steep_rib_is_a_rib_and_a_plate_of_the_same_section_is_not():
    """A large patient's 12th rib crosses the band steeply: a long oblique section (here about 400 mm^2) of a tube
    10-12 mm thick. Refused by the area alone, it made T11 the last rib-bearing body on a generated spine drawn 1.25
    times the mean size (every level one too low, "certain"). A bone plate of a similar section but 20 mm thick (the
    ilium) stays no rib."""
    from VertebralFractureLib.keypoints.level_anchors import RIB_MAX_AREA_MM2, find_landmarks

    volume, row, ap, lateral = _straightened_grid()
    # the rib on the left: from 30 to 70 mm lateral, 5 mm down per mm outwards (a steep oblique section in each
    # lateral plane), a 10 mm round tube around AP +40 mm
    along = 40.0 + 5.0 * (lateral - 30.0)
    rib = (lateral >= 30) & (lateral <= 70) & ((row - along) ** 2 / (10.0 / np.cos(np.arctan(5.0)) / 2) ** 2
                                                + (ap - 40.0) ** 2 / 5.0**2 <= 1.0)
    volume[rib] = 600.0
    # the plate on the right: 30-70 mm lateral, 22 mm tall, 20 mm deep
    plate = (lateral <= -30) & (lateral >= -70) & (np.abs(row - 300.0) <= 11) & (np.abs(ap - 30.0) <= 10)
    volume[plate] = 600.0
    landmarks = find_landmarks(volume, SPACING_MM)
    sides = [r.side for r in landmarks.ribs]
    assert sides == ["left"]  # the rib, not the plate
    section = float(np.bincount(np.argwhere(rib)[:, 2]).max()) * SPACING_MM**2
    assert section > RIB_MAX_AREA_MM2  # the old rule refused it


def test_a_plate_thicker_than_a_rib_is_no_rib_even_with_a_ribs_oblique_section():
    """Between the plain area limit and the oblique one only a section no thicker than a rib counts: a bone plate
    16 x 18 mm in section (about 360 mm^2, within what a steep 12th rib shows) is not taken for a rib."""
    from VertebralFractureLib.keypoints.level_anchors import (
        RIB_MAX_AREA_MM2,
        RIB_MAX_OBLIQUE_AREA_MM2,
        RIB_MAX_THICKNESS_MM,
        find_landmarks,
    )

    volume, row, ap, lateral = _straightened_grid()
    plate = (lateral <= -30) & (lateral >= -70) & (np.abs(row - 300.0) <= 8) & (np.abs(ap - 30.0) <= 9)
    volume[plate] = 600.0
    section = float(np.bincount(np.argwhere(plate)[:, 2]).max()) * SPACING_MM**2
    assert RIB_MAX_AREA_MM2 < section <= RIB_MAX_OBLIQUE_AREA_MM2  # only its thickness tells it from a rib
    assert RIB_MAX_THICKNESS_MM < 16.0
    assert find_landmarks(volume, SPACING_MM).ribs == []


def test_a_gap_of_one_or_two_missed_bodies_is_counted_and_a_longer_one_is_not():
    """The count from the anchor steps over a gap only when one whole number of levels fits it (``STEP_FIT``)."""
    from VertebralFractureLib.keypoints.level_anchors import counted_from_anchor

    pitch = 20.0
    # T12 anchored at the bottom; T10 one body missed above T11 ... read upwards
    labels = ["T6", "T7", "T8", "T10", "T11", "T12"]
    rows = np.array([0.0, 20.0, 40.0, 80.0, 100.0, 120.0])
    assert counted_from_anchor(labels, rows, ["T12"]).tolist() == [True] * 6
    # two bodies missed (T4, T5): three pitches, and only three levels fit
    labels = ["T3", "T6", "T7", "T8", "T9"]
    rows = np.array([0.0, 3 * pitch, 4 * pitch, 5 * pitch, 6 * pitch])
    assert counted_from_anchor(labels, rows, ["T9"]).tolist() == [True] * 5
    # four bodies missed (T2-T5) but labelled as two (the decoding skips two levels at most): 3, 4 and 5 levels fit
    # a gap of 4.2 pitches, and the labels step by 3; the body above it is not counted, the ones below are
    labels = ["T3", "T6", "T7", "T8", "T9", "T10"]
    rows = np.array([0.0, 4.2 * pitch, 5.2 * pitch, 6.2 * pitch, 7.2 * pitch, 8.2 * pitch])
    assert counted_from_anchor(labels, rows, ["T10"]).tolist() == [False, True, True, True, True, True]
    # the same gap labelled as four levels still fits more than one number: not counted either
    assert counted_from_anchor(["T1", *labels[1:]], rows, ["T10"])[0] == False  # noqa: E712
    # a gap of 2.5 pitches fits two and three levels: past it, below the anchor, nothing is counted
    labels = ["T10", "T11", "T12", "L1", "L3", "L4"]
    rows = np.array([0.0, 20.0, 40.0, 60.0, 110.0, 130.0])
    assert counted_from_anchor(labels, rows, ["T12"]).tolist() == [True, True, True, True, False, False]
    # no anchor among the labels: no level is counted
    assert counted_from_anchor(labels, rows, []).tolist() == [False] * 6


def test_a_body_past_a_stretch_of_the_column_the_detector_cannot_see_is_not_named_with_certainty():
    """The real chest CT with T2-T5 erased (their bodies set to soft tissue, as streaks from the shoulders or a noisy
    low-dose scan can hide a stretch of the column): the count from the 12th rib jumped the gap above T5 as two
    levels at most and named the body above it with certainty, one level off. Past a gap that fits no single number
    of missed levels the level is marked uncertain and the warning names it; the bodies below, counted from the rib
    through one-level steps, stay certain."""
    import SimpleITK as sitk

    from VertebralFractureLib.io.images import read_image
    from VertebralFractureLib.keypoints.stage import KeypointStage
    from VertebralFractureLib.pipeline import analyze
    from VertebralFractureLib.spine.stage import CentrelineStage, StraighteningStage
    from VertebralFractureLib.training.real.reference import score_case

    reference = load_case("cptac_chest")
    image = sitk.DICOMOrient(read_image(reference.image_path), "LPS")
    array = sitk.GetArrayFromImage(image)
    k, j, i = np.indices(array.shape)
    lps = np.asarray(image.GetOrigin()) + np.stack([i, j, k], -1) * np.asarray(image.GetSpacing())
    for body in reference.vertebrae:
        if body.label in ("T2", "T3", "T4", "T5"):
            array[(((lps - body.centroid) / [18.0, 18.0, 11.0]) ** 2).sum(-1) <= 1.0] = 35
    erased = sitk.GetImageFromArray(array)
    erased.CopyInformation(image)

    result = analyze(erased, stages=[CentrelineStage(), StraighteningStage(), KeypointStage()]).result
    score = score_case(result, reference)
    assert result.patient["levels"]["anchor"] == "12th rib" and result.patient["levels"]["certain"] is True
    assert score.found <= 10, "the detector finds bodies in the erased stretch: this test needs another gap"
    assert score.level_wrong_certain == 0
    top = min(result.vertebrae, key=lambda v: -v.centroid[2])
    t1 = next(body for body in reference.vertebrae if body.label == "T1")
    assert np.linalg.norm(np.asarray(top.centroid) - t1.centroid) < 15.0
    assert top.extra.get("level_certain") is False and score.level_uncertain == 1
    warning = f"levels uncertain past a gap: {top.label} (counted from the 12th rib across a gap"
    assert any(w.startswith(warning) for w in result.warnings)
    from VertebralFractureLib.mrml.editing import anchored_by_hand

    anchored_by_hand(result, "T1 set to T1 by hand, the column counted from it")  # a reader anchors the column
    assert top.extra["level_certain"] is True and not any(w.startswith(warning) for w in result.warnings)
    assert [v.label for v in result.vertebrae][-3:] == ["T11", "T12", "L1"]


def test_a_strip_from_front_to_back_at_the_flank_is_no_iliac_crest_and_a_wide_plate_is():
    """The anterior arc of a rib is a thin strip in a row plane (front to back, 20 mm wide at 95-115 mm out), large
    enough for the crest's section: a generated chest whose faint ribs were not seen (none crossed the band) took such
    arcs for the crests and named T3-T8 L2-S1 with certainty. The top of an iliac crest runs outwards (here 84-140 mm,
    as the real abdominal CT's right crest, cut off from the rest of its wing in the CT's lowest three quarters): a
    crest, though it does not reach towards the sacrum."""
    from VertebralFractureLib.keypoints.level_anchors import PELVIS_MIN_AREA_MM2, PELVIS_MIN_SPAN_MM, find_landmarks

    volume, row, ap, lateral = _straightened_grid(rows=220)
    arc = (lateral >= 95) & (lateral <= 115) & (row >= 200) & (row <= 220) & (ap >= -68) & (ap <= -8)
    volume[np.broadcast_to(arc, volume.shape)] = 500.0
    assert 20.0 * 60.0 >= PELVIS_MIN_AREA_MM2 and 22.0 < PELVIS_MIN_SPAN_MM
    assert find_landmarks(volume, SPACING_MM).pelvis_tops_mm == []
    crest = (lateral <= -84) & (lateral >= -138) & (row >= 260) & (row <= 276) & (ap >= 0) & (ap <= 6)
    volume[np.broadcast_to(crest, volume.shape)] = 500.0
    assert find_landmarks(volume, SPACING_MM).pelvis_tops_mm == [260.0]


@pytest.mark.slow
def test_a_count_from_the_12th_rib_past_a_wide_colon_takes_no_transitional_level_and_names_nothing_wrongly():
    """The real abdominal CT with a colon 44 mm across, 90 mm right of L3-L5 (``bench_colon_grid.py``): the bodies
    below L3 are lost to the colon's pull on the curve, and with the crests no longer confused with a narrow piece the
    count rests on the 12th rib alone. The anchored decoding, whose emissions are flat, took a T13 to trade for a gap's
    penalty and named the column T12 T13 L1 L2 L4 S1 with certainty. No transitional level is decoded from spacing
    alone, and no body found is named wrongly with certainty."""
    from testdata import benchmark

    from VertebralFractureLib.io.images import read_image
    from VertebralFractureLib.pipeline import AnalysisOptions, analyze
    from VertebralFractureLib.training.real.reference import score_case

    reference = load_case("sample_ct")
    image = benchmark("bench_real_variants").oral_contrast_colon(read_image(reference.image_path), reference, "right",
                                                                 radius_mm=22.0, beside_mm=90.0, front_mm=0.0,
                                                                 levels=("L3", "L5"))
    result = analyze(image, AnalysisOptions(extra_stages=())).result
    score = score_case(result, reference)
    assert result.patient["levels"]["anchor"] == "12th rib"
    assert not {"T13", "L6"} & {v.label for v in result.vertebrae}
    assert score.level_wrong_certain == 0 and score.found >= 4
    assert [v.label for v in result.vertebrae][:4] == ["T12", "L1", "L2", "L3"]
