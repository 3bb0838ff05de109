"""View pairs after Gartland et al. 2025: overlapping, each level labelled once, unlabelled run ends."""

import numpy as np
import pytest

from VertebralFractureLib.levels import level_index
from VertebralFractureLib.training.radiograph.views import CENTROID_LEVELS, cut_view, cut_view_pair, evaluation_views


def test_channels_are_the_13_levels_t4_to_l4():
    assert CENTROID_LEVELS[0] == "T4" and CENTROID_LEVELS[-1] == "L4" and len(CENTROID_LEVELS) == 13


@pytest.mark.parametrize("seed", range(12))
def test_pair_labels_each_level_once_and_leaves_visible_neighbours_unlabelled(seed, drawn):
    column = drawn()
    upper, lower = cut_view_pair(column, np.random.default_rng(seed))
    up, down = set(upper.labels()), set(lower.labels())
    assert not up & down  # labelled on one view only (Gartland et al. 2025, appendix A)
    assert max(level_index(x) for x in up) < min(level_index(x) for x in down)
    for view in (upper, lower):
        # every labelled vertebra is entirely inside the view, at its place
        rows, cols = view.image.shape
        for level, centre in view.labels().items():
            k = view.levels.index(level)
            assert view.keypoints[k][:, 1].min() >= 0 and view.keypoints[k][:, 1].max() <= rows - 1
            truth = column.centroids[column.levels.index(level)] - np.array(view.origin)
            assert np.allclose(centre, truth)
            assert view.keypoints[k][:, 0].max() <= cols - 1
        # labelled vertebrae form one consecutive run
        labelled = sorted(CENTROID_LEVELS.index(x) for x in view.labels())
        assert labelled == list(range(labelled[0], labelled[-1] + 1))
    # the lower view's unlabelled vertebrae above its run are labelled on the upper view
    above = [x for x in lower.visible() if x not in down and level_index(x) < min(map(level_index, down))]
    assert set(above) <= up


def test_views_overlap_and_unlabelled_neighbours_occur(drawn):
    column = drawn()
    extras = []
    for seed in range(30):
        upper, lower = cut_view_pair(column, np.random.default_rng(seed))
        assert upper.origin[1] < lower.origin[1] < upper.origin[1] + upper.image.shape[0]  # overlap
        extras.append(sum(1 for x in upper.visible() if x not in upper.labels() and level_index(x) > level_index("T4")))
    assert 0 in extras and max(extras) >= 2


def test_cut_view_keeps_only_whole_vertebrae(drawn):
    column = drawn()
    t6 = column.keypoints[column.levels.index("T6")]
    view = cut_view(column, (0, int(t6[:, 1].mean())), (0, 200), ["T4", "T5", "T6"])
    assert view.levels[-1] == "T5" and view.labels().keys() == {"T4", "T5"}


def test_evaluation_views_are_fixed(drawn):
    columns = [drawn(0), drawn(1)]
    first, second = evaluation_views(columns), evaluation_views(columns)
    assert len(first) == 4
    assert all(a.origin == b.origin and a.image.shape == b.image.shape for a, b in zip(first, second))
