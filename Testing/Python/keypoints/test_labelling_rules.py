"""Rules of the level decoder (``keypoints/labelling.py``) that decide the levels a reader sees.

Row spacings are real-looking: lower thoracic bodies plus discs are 25-28 mm apart and grow
caudally (Panjabi et al. 1991), so a detection 54 mm below its neighbour means one vertebra was missed.
Scores are heatmap values at each detection (``sample_scores``): 0.8 on a clear level, 0 elsewhere.
"""

from __future__ import annotations

import numpy as np
import pytest

from VertebralFractureLib.keypoints.labelling import (
    GAP_PENALTY,
    consecutive,
    decode_levels,
    expected_skips,
    select_and_decode,
)
from VertebralFractureLib.levels import LABEL_LEVELS

EVEN_ROWS = np.array([0.0, 26.5, 53.8])  # T9 -> T10 -> T11: one level per step
MISSED_ROWS = np.array([0.0, 26.5, 81.5])  # the body between the 2nd and 3rd detection was not detected


def scores(*rows):
    """(n, C) scores from one {level: score} dict per detection."""
    out = np.zeros((len(rows), len(LABEL_LEVELS)))
    for k, row in enumerate(rows):
        for level, value in row.items():
            out[k, LABEL_LEVELS.index(level)] = value
    return out


def test_spacing_says_where_a_vertebra_is_missing():
    np.testing.assert_array_equal(expected_skips(EVEN_ROWS), [0, 0])
    np.testing.assert_array_equal(expected_skips(MISSED_ROWS), [0, 1])


def test_a_skipped_level_costs_the_gap_penalty_when_the_spacing_does_not_ask_for_it():
    # The heatmaps say T9, T10, T12, evenly spaced: the skip T10 -> T12 is kept (0.8 > penalty 0.6),
    # and the labelling's total pays for it.
    s = scores({"T9": 0.8}, {"T10": 0.8}, {"T12": 0.8})
    out = decode_levels(s, EVEN_ROWS)
    assert out.labels == ["T9", "T10", "T12"]
    assert out.total_score == pytest.approx(3 * 0.8 - GAP_PENALTY)
    # Where the spacing shows a missed body, the same skip is free.
    assert decode_levels(s, MISSED_ROWS).total_score == pytest.approx(3 * 0.8)


def test_a_third_body_with_no_room_for_a_missing_vertebra_gets_the_next_level():
    # Its heatmap slightly prefers T12 over T11, but nothing is missing between it and T10:
    # T11 (0.3, no skip) beats T12 (0.5 - 0.6 for a skip the spacing does not support).
    s = scores({"T9": 0.8}, {"T10": 0.8}, {"T11": 0.3, "T12": 0.5})
    out = decode_levels(s, EVEN_ROWS)
    assert out.labels == ["T9", "T10", "T11"]
    assert out.total_score == pytest.approx(0.8 + 0.8 + 0.3)
    # A double distance leaves room for the missed T11: the heatmap's T12 is then taken.
    assert decode_levels(s, MISSED_ROWS).labels == ["T9", "T10", "T12"]


def test_select_and_decode_applies_the_same_penalty():
    s = scores({"T9": 0.8}, {"T10": 0.8}, {"T11": 0.3, "T12": 0.5})
    kept, out = select_and_decode(s, EVEN_ROWS)
    assert kept.tolist() == [0, 1, 2] and out.labels == ["T9", "T10", "T11"]
    kept, out = select_and_decode(s, MISSED_ROWS)
    assert kept.tolist() == [0, 1, 2] and out.labels == ["T9", "T10", "T12"]


def test_two_detections_never_share_a_level():
    # Two detections 4 mm apart whose heatmaps both say T10 (a duplicate): the decoder must still give
    # strictly increasing levels, never T10 twice.
    rows = np.array([0.0, 26.0, 30.0, 56.5])
    out = decode_levels(scores({"T9": 0.8}, {"T10": 0.8}, {"T10": 0.8}, {"T11": 0.8}), rows)
    assert len(set(out.labels)) == 4
    assert consecutive(out.labels)[0]


def test_consecutive_refuses_a_repeated_level():
    assert consecutive(["T11", "T12", "L1"]) == (True, [])
    assert consecutive(["T11", "T12", "T12", "L1"]) == (False, ["T12"])
    assert consecutive(["L2", "L2"]) == (False, ["L2"])
    assert consecutive(["T12", "T11"]) == (False, ["T11"])  # out of order too
    assert consecutive(["T12", "T13", "L1"]) == (True, [])  # a transitional T13 is a level of its own
