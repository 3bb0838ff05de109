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
    assert np.all(pinned[[1, 2]] == 0.0)
    confidence = anchored_confidence(["T11", "T12", "L2"], np.ones(3), anchor)
    np.testing.assert_allclose(confidence, [0.88, 0.9, 0.86])
    unanchored = LevelAnchor(None, None, None, False, 0.0, UNCERTAIN_WARNING)
    np.testing.assert_allclose(anchored_confidence(["T1"], np.array([0.9]), unanchored), [0.5])
