import numpy as np

from VertebralFractureLib.keypoints.labelling import best_channels, consecutive, decode_levels, sample_scores
from VertebralFractureLib.training.keypoints.targets import LABEL_LEVELS, gaussian_heatmaps


def _scores(levels, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    s = rng.uniform(0, noise, (len(levels), len(LABEL_LEVELS)))
    for k, level in enumerate(levels):
        s[k, LABEL_LEVELS.index(level)] += 0.8
    return s


def test_clean_scores_decode_to_their_levels():
    levels = ["T10", "T11", "T12", "L1", "L2"]
    out = decode_levels(_scores(levels), np.arange(5) * 30.0)
    assert out.labels == levels
    assert np.all(out.confidence > 0.9)


def test_order_constraint_fixes_a_wrong_single_score():
    levels = ["T6", "T7", "T8", "T9", "T10", "T11"]
    scores = _scores(levels)
    scores[2] = 0.0
    scores[2, LABEL_LEVELS.index("T11")] = 0.9  # the heatmap alone would say T11
    out = decode_levels(scores, np.arange(6) * 28.0)
    assert out.labels == levels
    assert out.confidence[2] < out.confidence[0]


def test_input_order_is_kept():
    levels = ["L1", "L2", "L3"]
    rows = np.array([60.0, 0.0, 30.0])
    shuffled = _scores(["L3", "L1", "L2"])
    out = decode_levels(shuffled, rows)
    assert out.labels == ["L3", "L1", "L2"]
    assert consecutive(sorted(out.labels, key=levels.index))[0]


def test_transitional_levels_used_only_when_the_heatmaps_ask():
    normal = ["T11", "T12", "L1", "L2"]
    assert decode_levels(_scores(normal), np.arange(4) * 30.0).labels == normal
    six_lumbar = ["L4", "L5", "L6", "S1"]
    assert decode_levels(_scores(six_lumbar), np.arange(4) * 30.0).labels == six_lumbar
    thirteen = ["T12", "T13", "L1"]
    assert decode_levels(_scores(thirteen), np.arange(3) * 30.0).labels == thirteen


def test_gap_is_allowed_where_a_vertebra_is_missing():
    levels = ["T8", "T9", "T11", "T12"]  # T10 not detected: a double distance
    out = decode_levels(_scores(levels), np.array([0.0, 30.0, 90.0, 120.0]))
    assert out.labels == levels


def test_c7_and_s1_are_labels():
    levels = ["C7", "T1", "T2"]
    assert decode_levels(_scores(levels), np.arange(3) * 25.0).labels == levels


def test_sample_scores_reads_heatmaps_at_centres():
    centres = np.array([[41.5, 81.5], [41.5, 121.5]])
    heat = gaussian_heatmaps(centres, ["L1", "L2"], (50, 20), 4.0)
    s = sample_scores(heat, centres, 4.0)
    assert s.shape == (2, len(LABEL_LEVELS))
    assert s[0, LABEL_LEVELS.index("L1")] > 0.99 and s[1, LABEL_LEVELS.index("L2")] > 0.99
    assert s[0, LABEL_LEVELS.index("L2")] < 0.01
    assert decode_levels(s, centres[:, 1]).labels == ["L1", "L2"]


def test_empty():
    out = decode_levels(np.zeros((0, len(LABEL_LEVELS))), np.zeros(0))
    assert out.labels == []


def test_select_drops_a_duplicate_instead_of_shifting_labels():
    from VertebralFractureLib.keypoints.labelling import select_and_decode

    levels = ["T9", "T10", "T10", "T11", "T12", "L1"]  # detection 2 duplicates T10
    rows = np.array([0.0, 30.0, 33.0, 60.0, 90.0, 120.0])
    kept, out = select_and_decode(_scores(levels), rows)
    assert len(kept) == 5 and out.labels == ["T9", "T10", "T11", "T12", "L1"]
    assert set(kept.tolist()) in ({0, 1, 3, 4, 5}, {0, 2, 3, 4, 5})


def test_select_copes_with_more_detections_than_levels():
    from VertebralFractureLib.keypoints.labelling import select_and_decode

    n = len(LABEL_LEVELS) + 5
    kept, out = select_and_decode(np.full((n, len(LABEL_LEVELS)), 0.5), np.arange(n) * 20.0)
    assert len(kept) <= len(LABEL_LEVELS)
    assert len(set(out.labels)) == len(out.labels)


def test_select_keeps_everything_when_consistent():
    from VertebralFractureLib.keypoints.labelling import select_and_decode

    levels = ["L3", "L4", "L5", "S1"]
    kept, out = select_and_decode(_scores(levels), np.arange(4) * 35.0)
    assert kept.tolist() == [0, 1, 2, 3] and out.labels == levels


def test_best_channels_keeps_every_detection_even_two_on_one_level():
    scores = np.zeros((4, 3))
    scores[0, 1], scores[1, 1], scores[2, 2], scores[3, 0] = 0.9, 0.6, 0.7, 0.2
    labelling = best_channels(scores, ["T12", "L1", "L2"])
    assert labelling.labels == ["L1", "L1", "L2", "T12"]
    np.testing.assert_allclose(labelling.confidence, [0.9, 0.6, 0.7, 0.2])
    assert best_channels(np.zeros((0, 3)), ["T12", "L1", "L2"]).labels == []


def test_in_column_marks_bodies_one_level_apart_not_duplicates_or_strays():
    from VertebralFractureLib.keypoints.labelling import in_column

    rows = np.array([0.0, 30.0, 33.0, 60.0, 90.0, 150.0, 180.0, 201.0])
    # 33 duplicates 30; 150 is two levels below 90 (a missed body) and one above 180; 201 is 0.7 levels on
    assert in_column(rows).tolist() == [True, False, False, True, True, True, True, True]
    assert in_column(np.array([0.0, 50.0, 61.0, 100.0])).tolist() == [True, False, False, True]
    assert not in_column(np.array([0.0, 30.0])).any()  # no spacing to fit from two detections
    shuffled = np.array([90.0, 0.0, 60.0, 30.0])
    assert in_column(shuffled).tolist() == [True, True, True, True]  # input order kept


def test_select_keeps_bodies_in_the_column_that_the_level_scores_cannot_place():
    from VertebralFractureLib.keypoints.labelling import (
        DROP_PENALTY,
        IN_COLUMN_DROP_PENALTY,
        in_column,
        select_and_decode,
    )

    # nine bodies 25 mm apart whose level scores all say "lumbar" (a level classifier that has not seen the scan)
    levels = ["L1", "L2", "L2", "L2", "L2", "L3", "L3", "L3", "L5"]
    rows = np.arange(9) * 25.0
    scores = _scores(levels)
    kept, _ = select_and_decode(scores, rows, gap_penalty=2.5)
    assert len(kept) < 9  # one drop penalty each: bodies in view are dropped to make the labels fit
    drop = np.where(in_column(rows), IN_COLUMN_DROP_PENALTY, DROP_PENALTY)
    kept, out = select_and_decode(scores, rows, drop_penalty=drop, gap_penalty=2.5)
    assert kept.tolist() == list(range(9))
    assert consecutive(out.labels)[0] and len(set(out.labels)) == 9
    # a duplicate (3 mm from a body) is still left out where the scores are clean
    levels = ["T9", "T10", "T10", "T11", "T12", "L1"]
    rows = np.array([0.0, 30.0, 33.0, 60.0, 90.0, 120.0])
    drop = np.where(in_column(rows), IN_COLUMN_DROP_PENALTY, DROP_PENALTY)
    kept, out = select_and_decode(_scores(levels), rows, drop_penalty=drop)
    assert len(kept) == 5 and out.labels == ["T9", "T10", "T11", "T12", "L1"]
