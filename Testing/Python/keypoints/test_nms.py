import numpy as np
import pytest

from VertebralFractureLib.keypoints.nms import nms_keypoints


def _box_points(x0, y0, w, h):
    return np.array(
        [[x0, y0], [x0, y0 + h], [x0 + w / 2, y0], [x0 + w / 2, y0 + h], [x0 + w, y0], [x0 + w, y0 + h]], float
    )


def test_plain_nms_keeps_best_of_overlapping_and_separate_ones():
    points = np.stack([_box_points(0, 0, 30, 20), _box_points(1, 1, 30, 20), _box_points(0, 30, 30, 20)])
    kept, scores, index = nms_keypoints(points, [0.6, 0.9, 0.7], iou_threshold=0.3, vote_iou=1.0)
    assert index == [1, 2]
    np.testing.assert_allclose(scores, [0.9, 0.7])
    np.testing.assert_allclose(kept[0], points[1])


def test_voting_averages_overlapping_candidates():
    points = np.stack([_box_points(0, 0, 30, 20), _box_points(2, 0, 30, 20)])
    kept, _, index = nms_keypoints(points, [0.5, 0.5], iou_threshold=0.3, vote_iou=0.5)
    assert len(kept) == 1 and index == [0]
    np.testing.assert_allclose(kept[0], _box_points(1, 0, 30, 20))


def test_a_suppressed_candidate_does_not_vote_for_a_later_one():
    """B overlaps the best box A (IoU 0.43) and goes with it; C overlaps A by 0.21 only and is kept. B also overlaps C
    by 0.6, above the voting IoU, but it is gone: C's keypoints are its own, not pulled towards B's."""
    points = np.stack([_box_points(0, 0, 30, 20), _box_points(0, 8, 30, 20), _box_points(0, 13, 30, 20)])
    kept, scores, index = nms_keypoints(points, [0.9, 0.8, 0.7], iou_threshold=0.3, vote_iou=0.5)
    assert index == [0, 2]
    np.testing.assert_allclose(scores, [0.9, 0.7])
    np.testing.assert_allclose(kept[1], points[2])


def test_empty_input():
    kept, scores, index = nms_keypoints(np.zeros((0, 6, 2)), np.zeros(0))
    assert kept.shape == (0, 6, 2) and index == []


def _pair_at_shift(shift):
    """Two 30 x 20 boxes, the second moved down by ``shift``: IoU = (20 - shift) / (20 + shift)."""
    return np.stack([_box_points(0, 0, 30, 20), _box_points(0, shift, 30, 20)])


def test_threshold_is_0_3_overlaps_just_above_are_suppressed_just_below_kept():
    from VertebralFractureLib.keypoints.anchors import iou, keypoint_boxes

    above, below = _pair_at_shift(10.0), _pair_at_shift(11.5)  # IoU 10/30 = 0.333 and 8.5/31.5 = 0.270
    assert iou(*keypoint_boxes(above)[:, None]).item() == pytest.approx(1 / 3)
    assert iou(*keypoint_boxes(below)[:, None]).item() == pytest.approx(8.5 / 31.5)
    for vote_iou in (1.0, 0.5):  # plain NMS and the detector's voting
        _, scores, index = nms_keypoints(above, [0.9, 0.8], vote_iou=vote_iou)
        assert index == [0] and scores.tolist() == [0.9], "IoU 0.33 > 0.3: one vertebra"
        kept, scores, index = nms_keypoints(below, [0.8, 0.9], vote_iou=vote_iou)
        assert index == [1, 0] and scores.tolist() == [0.9, 0.8], "IoU 0.27 <= 0.3: two vertebrae"
        np.testing.assert_allclose(kept, below[[1, 0]])  # no voting across vertebrae below vote_iou


def test_threshold_is_a_parameter_and_the_detector_uses_0_3():
    from VertebralFractureLib.keypoints.model import KeypointModel, load_model
    from VertebralFractureLib.nn.weights import WEIGHTS_DIR

    above = _pair_at_shift(10.0)
    assert nms_keypoints(above, [0.9, 0.8], iou_threshold=0.34, vote_iou=1.0)[2] == [0, 1]
    assert KeypointModel.create({"rpn_channels": [4, 8, 8], "level_channels": [4, 8]}, seed=0).config["nms_iou"] == 0.3
    shipped = WEIGHTS_DIR / "keypoints.pt"
    if shipped.exists():
        assert load_model(shipped).config["nms_iou"] == 0.3


def test_highest_score_wins_whatever_the_input_order():
    points = _pair_at_shift(2.0)
    for scores in ([0.2, 0.7], [0.7, 0.2]):
        kept, kept_scores, index = nms_keypoints(points, scores, vote_iou=1.0)
        best = int(np.argmax(scores))
        assert index == [best] and kept_scores.tolist() == [0.7]
        np.testing.assert_allclose(kept[0], points[best])


def test_voting_weights_by_score():
    points = _pair_at_shift(2.0)  # IoU 18/22 = 0.82 > vote_iou 0.5
    kept, _, _ = nms_keypoints(points, [0.75, 0.25], vote_iou=0.5)
    np.testing.assert_allclose(kept[0], _box_points(0, 0.5, 30, 20))  # 0.75 * 0 + 0.25 * 2


def test_a_box_over_half_a_body_and_its_disc_goes_and_the_next_body_stays():
    """Same column: 0.55 of the shorter box's rows shared (IoU 0.3 lets it through the NMS) -> the weaker box goes."""
    from VertebralFractureLib.keypoints.nms import suppress_stacked

    body = _box_points(40, 136, 34, 29)  # rows 136-165
    over_disc = _box_points(45, 152, 30, 24)  # rows 152-176: 13 of 24 rows shared
    next_body = _box_points(46, 166, 26, 21)  # rows 166-187: no row shared with the body
    assert suppress_stacked(np.stack([body, over_disc, next_body]), [0.997, 0.818, 0.985]) == [0, 2]
    # the better-scoring box stays whichever comes first
    assert suppress_stacked(np.stack([over_disc, body]), [0.818, 0.997]) == [1]


def test_boxes_sharing_rows_beside_the_column_or_by_less_than_half_are_both_kept():
    from VertebralFractureLib.keypoints.nms import suppress_stacked

    body = _box_points(40, 100, 34, 28)
    behind = _box_points(94, 105, 22, 18)  # posterior elements at the same rows: another column
    corners = _box_points(41, 126, 34, 28)  # 2 of 28 rows shared: the detector's corners spread over the disc
    assert suppress_stacked(np.stack([body, behind, corners]), [0.9, 0.8, 0.7]) == [0, 1, 2]
    just_under = _box_points(40, 114.5, 34, 28)  # 13.5 of 28 rows shared: under half
    just_over = _box_points(40, 113.5, 34, 28)  # 14.5 of 28: over half
    assert suppress_stacked(np.stack([body, just_under]), [0.9, 0.8]) == [0, 1]
    assert suppress_stacked(np.stack([body, just_over]), [0.9, 0.8]) == [0]
