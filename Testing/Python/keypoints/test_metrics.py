import numpy as np

from VertebralFractureLib.training.keypoints.metrics import (
    binary_metrics,
    level_identification,
    match_detections,
    roc_auc,
    sensitivity_specificity,
)


def _box_points(x0, y0, w, h):
    return np.array(
        [[x0, y0], [x0, y0 + h], [x0 + w / 2, y0], [x0 + w / 2, y0 + h], [x0 + w, y0], [x0 + w, y0 + h]], float
    )


def test_match_by_centre_inside_or_iou():
    truth = np.stack([_box_points(0, 0, 30, 20), _box_points(0, 30, 30, 20)])
    predicted = np.stack([_box_points(2, 1, 30, 20), _box_points(10, 35, 30, 20), _box_points(0, 80, 30, 20)])
    pairs = match_detections(predicted, [0.9, 0.8, 0.7], truth)
    assert sorted(pairs) == [(0, 0), (1, 1)]  # the second: IoU 0.33 but centre (25, 45) inside
    # one truth cannot be matched twice
    assert len(match_detections(np.stack([truth[0], truth[0]]), [0.9, 0.8], truth[:1])) == 1


def test_auc_by_hand():
    assert roc_auc([1, 1, 0, 0], [0.9, 0.8, 0.1, 0.2]) == 1.0
    assert roc_auc([1, 0], [0.5, 0.5]) == 0.5
    assert roc_auc([1, 1, 0], [0.2, 0.9, 0.5]) == 0.5
    assert roc_auc([0, 0], [0.1, 0.2]) is None


def test_sensitivity_specificity_and_g_thresholds():
    assert sensitivity_specificity([1, 1, 0, 0], [1, 0, 0, 1]) == (0.5, 0.5)
    out = binary_metrics([0.7, 0.79, 0.9, 1.0], [0.72, 0.85, 0.95, 0.78], 0.8)
    assert out["positives"] == 2 and out["negatives"] == 2
    assert out["sensitivity"] == 0.5 and out["specificity"] == 0.5
    assert out["auc"] == 0.75  # scores 1 - G: (0.28, 0.15) vs (0.05, 0.22)
    # G exactly at the threshold counts as positive
    assert binary_metrics([0.75, 1.0], [0.75, 1.0], 0.75)["sensitivity"] == 1.0


def test_level_identification_uses_half_mean_neighbour_distance():
    true = np.array([[0.0, 0.0], [0.0, 30.0], [0.0, 60.0]])
    predicted = np.array([[0.0, 14.0], [0.0, 30.0], [0.0, 100.0]])
    correct, total = level_identification(true, ["T1", "T2", "T3"], predicted, ["T1", "T2", "T3"])
    assert (correct, total) == (2, 3)  # radius 15: 14 mm in, 40 mm out
    assert level_identification(true, ["T1", "T2", "T3"], predicted, ["T2", "T3", "T4"]) == (0, 3)
