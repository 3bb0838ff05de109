import numpy as np

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


def test_empty_input():
    kept, scores, index = nms_keypoints(np.zeros((0, 6, 2)), np.zeros(0))
    assert kept.shape == (0, 6, 2) and index == []
