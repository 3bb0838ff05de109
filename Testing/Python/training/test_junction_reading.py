"""The rule that applies the blind readings of the lumbosacral junction to the sagittal reference.

``VertebralFractureLib/training/real/junction_reading.py``; the rule is in
``Testing/Data/real/reference/README_sagittal.md``, section "Blind reading of the lumbosacral junction".
"""

from __future__ import annotations

import copy
import json

import pytest

from VertebralFractureLib.training.real import junction_reading as jr

#: A column of five bodies 30 px apart at 1 mm pixels: L3, L4, L5, S1, S2 (centres at rows 100 ... 220).
IMAGE = {"image": "covid_sagittal/x.nii.gz", "spacing_mm": [1.0, 1.0], "levels_certain": True,
         "vertebrae": [{"label": label, "centroid": [200.0, 100.0 + 30.0 * i]}
                       for i, label in enumerate(["L3", "L4", "L5", "S1", "S2"])]}
L5, S1, L4 = [201.0, 162.0], [199.0, 189.0], [200.0, 131.0]


def _answer(junction: str, body) -> dict:
    return {"junction": junction, "last_mobile_body": body}


def test_two_ordinary_readings_on_the_reference_l5_keep_the_levels() -> None:
    """Rule 1: two readers see an ordinary junction with L5 where the reference has it; the third doubts."""
    outcome = jr.junction_outcome(IMAGE, [_answer("normal", L5), _answer("normal", L5), _answer("unclear", S1)])
    assert (outcome.rule, outcome.levels_certain, outcome.l5_index) == (1, True, 2)
    assert outcome.matches == [2, 2, 3]


def test_two_doubting_readings_make_the_levels_uncertain() -> None:
    """Rule 2: transitional and unclear both count as doubt; the labels stay as counted."""
    outcome = jr.junction_outcome(IMAGE, [_answer("transitional", S1), _answer("unclear", L5), _answer("normal", L5)])
    assert (outcome.rule, outcome.levels_certain, outcome.l5_index) == (2, False, 2)
    reference = {"images": [copy.deepcopy(IMAGE)]}
    jr.apply(reference, {IMAGE["image"]: [_answer("transitional", S1), _answer("unclear", L5),
                                          _answer("normal", L5)]})
    assert reference["images"][0]["levels_certain"] is False
    assert [v["label"] for v in reference["images"][0]["vertebrae"]] == ["L3", "L4", "L5", "S1", "S2"]
    assert reference["images"][0]["junction_reading"]["rule"] == 2


def test_three_ordinary_readings_on_another_body_recount_the_labels() -> None:
    """Rule 3: all three put L5 on the reference's S1: every label moves one level down the list."""
    answers = [_answer("normal", S1)] * 3
    outcome = jr.junction_outcome(IMAGE, answers)
    assert (outcome.rule, outcome.levels_certain, outcome.l5_index) == (3, True, 3)
    reference = {"images": [copy.deepcopy(IMAGE)]}
    jr.apply(reference, {IMAGE["image"]: answers})
    assert [v["label"] for v in reference["images"][0]["vertebrae"]] == ["L2", "L3", "L4", "L5", "S1"]
    assert reference["images"][0]["levels_certain"] is True


def test_split_readings_make_the_levels_uncertain() -> None:
    """Rule 4: one ordinary reading on the reference L5, one on S1, one on L4: no majority either way."""
    outcome = jr.junction_outcome(IMAGE, [_answer("normal", L5), _answer("normal", S1), _answer("normal", L4)])
    assert (outcome.rule, outcome.levels_certain) == (4, False)
    # two ordinary readings on another body are not the three rule 3 asks
    outcome = jr.junction_outcome(IMAGE, [_answer("normal", S1), _answer("normal", S1), _answer("normal", L5)])
    assert (outcome.rule, outcome.levels_certain) == (4, False)


def test_a_centre_matches_the_nearest_body_within_12_mm_only() -> None:
    """Matching as in bench_sagittal: nearest centre, and none beyond 12 mm (on the pixel spacing)."""
    assert jr.matched_body([200.0, 171.0], IMAGE["vertebrae"], [1.0, 1.0]) == 2
    assert jr.matched_body([200.0, 176.0], IMAGE["vertebrae"], [1.0, 1.0]) is None
    assert jr.matched_body([200.0, 179.0], IMAGE["vertebrae"], [1.0, 1.0]) == 3
    assert jr.matched_body([213.0, 160.0], IMAGE["vertebrae"], [1.0, 1.0]) is None
    assert jr.matched_body([213.0, 160.0], IMAGE["vertebrae"], [0.5, 0.5]) == 2
    outcome = jr.junction_outcome(IMAGE, [_answer("normal", [240.0, 160.0])] * 2 + [_answer("normal", L5)])
    assert (outcome.rule, outcome.matches) == (4, [None, None, 2])


def test_unknown_reading_is_refused() -> None:
    with pytest.raises(ValueError, match="'sacralised' is not one of"):
        jr.junction_outcome(IMAGE, [_answer("sacralised", L5)] * 3)


def test_committed_reference_is_the_rule_applied_to_the_committed_readings() -> None:
    """Every read slice's certainty and labels in the reference are what the rule gives for its readings."""
    if not jr.READINGS.exists():
        pytest.skip("no blind junction readings committed")
    reference = json.loads(jr.REFERENCE.read_text())
    readings = jr.load_readings()
    assert len(readings) == 9 and all(len(answers) == 3 for answers in readings.values())
    expected = copy.deepcopy(reference)
    jr.apply(expected, readings)
    assert expected == reference
