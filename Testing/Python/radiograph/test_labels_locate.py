"""Level labels from heatmaps + consecutive order; locate_levels with a real tiny model."""

import numpy as np
import pytest

from VertebralFractureLib.radiograph.labels import assign_levels, centre_scores
from VertebralFractureLib.radiograph.locate import locate_levels, predict_centroids
from VertebralFractureLib.radiograph.model import CentroidModel
from VertebralFractureLib.radiograph.transform import gaussian_targets
from VertebralFractureLib.training.radiograph.views import CENTROID_LEVELS
from VertebralFractureLib.validation import InputError


def _heatmaps(centres, levels, shape=(264, 264)):
    channels = [CENTROID_LEVELS.index(x) for x in levels]
    return gaussian_targets(np.asarray(centres, float), channels, 13, shape, 4.0)


def test_centre_scores_take_the_nearby_maximum():
    heat = _heatmaps([[100, 50]], ["T7"])
    scores = centre_scores(heat, np.array([[102.0, 51.0], [100.0, 200.0]]), radius=3)
    assert scores[0, 3] == pytest.approx(1.0)  # the peak lies within the radius
    assert centre_scores(heat, np.array([[108.0, 50.0]]), radius=3)[0, 3] == pytest.approx(heat[3, 50, 105], abs=1e-6)
    assert scores[1].max() == pytest.approx(0.0, abs=1e-6)


def test_labels_follow_heatmaps_and_extend_beyond_t4_and_l4():
    rows = np.arange(9) * 28.0 + 10
    centres = np.stack([np.full(9, 120.0), rows], axis=1)
    # heatmaps for T4 ... T9 at detections 1 ... 6; detection 0 lies above T4, 7 and 8 have no peak
    heat = _heatmaps(centres[1:7], ["T4", "T5", "T6", "T7", "T8", "T9"])
    labels, confidence = assign_levels(centres, heat, CENTROID_LEVELS, rows, radius=3)
    assert labels == ["T3", "T4", "T5", "T6", "T7", "T8", "T9", "T10", "T11"]
    assert confidence[3] > 0.8 and confidence[0] < confidence[3]


def test_a_wrong_single_peak_is_overruled_by_the_order():
    rows = np.arange(5) * 30.0 + 20
    centres = np.stack([np.full(5, 100.0), rows], axis=1)
    heat = _heatmaps(centres, ["L1", "L2", "L3", "L4", "L3"])  # the last one's own peak says L3 again
    labels, _ = assign_levels(centres, heat, CENTROID_LEVELS, rows, radius=3)
    assert labels == ["L1", "L2", "L3", "L4", "L5"]


def test_a_column_of_more_bodies_than_t1_to_s1_is_named_without_a_repeated_level():
    """20 bodies in the column (a real slice as a JPEG turned 15 degrees: T1-S1, C7 and a box too many): the
    consecutive decoding over T1-S1 (18 levels) had no path and named every body T1, and the analysis stopped with
    "duplicate vertebra levels: T1". The levels above T1 are added for such a column; L1-L4 keep their peaks."""
    rows = np.arange(20) * 20.0 + 10
    centres = np.stack([np.full(20, 120.0), rows], axis=1)
    heat = _heatmaps(centres[14:18], ["L1", "L2", "L3", "L4"], shape=(420, 264))
    labels, _ = assign_levels(centres, heat, CENTROID_LEVELS, rows, radius=3)
    assert len(set(labels)) == 20 and labels[14:18] == ["L1", "L2", "L3", "L4"]
    assert labels[:2] == ["C6", "C7"] and labels[-1] == "S1"
    with pytest.raises(InputError, match="more than the 25 vertebrae"):
        many = np.arange(26) * 15.0
        assign_levels(np.stack([np.full(26, 120.0), many], axis=1), np.zeros((13, 420, 264)), CENTROID_LEVELS, many)


def test_no_detections():
    labels, confidence = assign_levels(np.zeros((0, 2)), np.zeros((13, 8, 8)), CENTROID_LEVELS, np.zeros(0))
    assert labels == [] and confidence.shape == (0,)


@pytest.fixture(scope="module")
def tiny():
    return CentroidModel.create({"channels": [4, 8, 8], "convs": [1, 1, 1]}, seed=3)


def test_locate_levels_with_a_real_tiny_model(tiny, drawn):
    column = drawn()
    everything = predict_centroids(column.image, tiny)
    assert list(everything) == list(CENTROID_LEVELS)
    for x, y, _ in everything.values():
        assert -1 <= x <= column.image.shape[1] and -1 <= y <= column.image.shape[0]
    found = locate_levels(column.image, tiny, threshold=-1e9)
    assert found.keys() == everything.keys()
    assert all(0 <= v[2] <= 1 for v in found.values())
    assert locate_levels(column.image, tiny, threshold=1e9) == {}
