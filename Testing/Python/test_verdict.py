"""One verdict per vertebra and patient: the Genant grade decides, validated scores can only ask for a review."""

import numpy as np
import pytest

from VertebralFractureLib.schema import SpineResult, Vertebra
from VertebralFractureLib.verdict import (
    FRACTURE,
    NORMAL,
    NOT_ASSESSED,
    REVIEW,
    ScoreRule,
    patient_verdict,
    vertebra_verdict,
)


def body(label, z, anterior=25.0, middle=25.0, posterior=25.0):
    """Six LPS keypoints of a body 30 mm deep with the given heights, centred at height z."""
    points = []
    for y, h in ((-15.0, anterior), (0.0, middle), (15.0, posterior)):
        points += [[0.0, y, z + h / 2], [0.0, y, z - h / 2]]
    return Vertebra(label, np.array([0.0, 0.0, z]), np.array(points))


def column(anterior_l1=25.0):
    return SpineResult([body("T12", 60), body("L1", 30, anterior=anterior_l1), body("L2", 0), body("L3", -30)])


@pytest.mark.parametrize("anterior, verdict, grade", [(25.0, NORMAL, 0), (19.5, REVIEW, 1), (16.0, FRACTURE, 2),
                                                      (12.0, FRACTURE, 3)])
def test_the_grade_from_the_keypoints_decides(anterior, verdict, grade):
    l1 = column(anterior).vertebra("L1")
    assert l1.measure.grade == grade
    assert vertebra_verdict(l1)[0] == verdict


def test_a_vertebra_not_assessed_has_no_verdict_but_its_reason():
    result = column(12.0)
    reason = "cut by the edge of the field of view (superior edge)"
    result.vertebra("L1").not_assessed(reason)
    result.recompute()
    assert vertebra_verdict(result.vertebra("L1")) == (NOT_ASSESSED, reason)
    summary = result.patient_summary()
    assert summary["verdict"] == NORMAL and summary["fractured_levels"] == [] and summary["max_grade"] == 0
    assert summary["not_assessed"] == {"L1": reason}


def test_a_body_treated_with_cement_asks_for_a_look_and_keeps_the_patient_from_normal():
    """A cemented body is not graded (the quality gate), but a vertebroplasty treats a fracture: the body asks for a
    look, and a patient whose other bodies are normal is "review", after the JSON round trip too."""
    from VertebralFractureLib.verdict import TREATED_KEY

    result = column()
    l1 = result.vertebra("L1")
    l1.not_assessed("bone cement in the body (2960 mm^3 of a solid mass over 1200 HU)")
    assert vertebra_verdict(l1)[0] == NOT_ASSESSED and patient_verdict(result.vertebrae)[0] == NORMAL
    l1.extra[TREATED_KEY] = "bone cement"
    verdict, reason = vertebra_verdict(l1)
    assert verdict == REVIEW and reason.startswith("bone cement in the body") and "neighbours" in reason
    again = SpineResult.from_json(result.to_json())
    assert patient_verdict(again.vertebrae) == (REVIEW, "review: L1")


def test_only_a_validated_score_can_raise_a_normal_vertebra_to_review():
    l2 = column().vertebra("L2")
    l2.fracture_probability = 0.9
    research = ScoreRule("fracture_probability", "classifier", 0.5, real_fpr=0.4, real_n=30)
    validated = ScoreRule("fracture_probability", "classifier", 0.5, real_fpr=0.05, real_n=30)
    too_few = ScoreRule("fracture_probability", "classifier", 0.5, real_fpr=0.0, real_n=5)
    assert vertebra_verdict(l2, [research])[0] == NORMAL
    assert vertebra_verdict(l2, [too_few])[0] == NORMAL
    verdict, reason = vertebra_verdict(l2, [validated])
    assert verdict == REVIEW and "classifier 0.90 >= 0.5" in reason
    l2.fracture_probability = 0.49
    assert vertebra_verdict(l2, [validated])[0] == NORMAL


def test_the_patient_takes_the_most_severe_verdict_and_the_json_says_it():
    result = column(16.0)
    assert patient_verdict(result.vertebrae) == (FRACTURE, "fracture: L1")
    document = result.to_dict()
    assert document["patient"]["verdict"] == FRACTURE and document["patient"]["fractured_levels"] == ["L1"]
    assert [v["verdict"] for v in document["vertebrae"]] == [NORMAL, FRACTURE, NORMAL, NORMAL]
    assert SpineResult.from_dict(document).patient_summary()["verdict"] == FRACTURE
    for vertebra in result.vertebrae:
        vertebra.not_assessed("no cortical bone where the body should be")
    result.recompute()
    assert patient_verdict(result.vertebrae) == (NOT_ASSESSED, "no vertebra could be assessed")


def test_measurement_from_a_mask_uses_the_mask_calibration():
    from VertebralFractureLib.verdict import MASK_SCORE_RULES, SCORE_RULES

    by_field = {rule.field: rule for rule in SCORE_RULES}
    mask_rule = {rule.field: rule for rule in MASK_SCORE_RULES}["abnormality"]
    # the abnormality score is research on CT (8/24 real normal vertebrae >= 50) but validated on masks (0/18)
    assert not by_field["abnormality"].validated and mask_rule.validated
    ct = column().vertebra("L2")
    ct.abnormality = 80.0
    assert vertebra_verdict(ct)[0] == NORMAL
    from_mask = column().vertebra("L2")
    from_mask.abnormality, from_mask.source = 80.0, "mask"
    verdict, reason = vertebra_verdict(from_mask)
    assert verdict == REVIEW and reason == "heights normal but shape abnormality (Botros et al. 2022) 80.00 >= 50"
    from_mask.abnormality = 49.9
    assert vertebra_verdict(from_mask)[0] == NORMAL


def test_the_shipped_calibration_uses_the_classifier_and_the_voxel_map_but_not_the_ct_abnormality():
    """The rules as measured by benchmarks/calibrate_real.py: a grade-0 vertebra with a high classifier score is
    sent for review with the reason, a high abnormality score on CT changes nothing."""
    from VertebralFractureLib.verdict import SCORE_RULES

    by_field = {rule.field: rule for rule in SCORE_RULES}
    assert by_field["fracture_probability"].validated and by_field["voxel_fracture_score"].validated
    assert not by_field["abnormality"].validated
    l2 = column().vertebra("L2")
    l2.fracture_probability, l2.abnormality = 0.65, 99.0
    verdict, reason = vertebra_verdict(l2)
    assert verdict == REVIEW and reason == "heights normal but patch classifier (Husseini et al. 2020) 0.65 >= 0.5"
    l2.fracture_probability = 0.49
    assert vertebra_verdict(l2)[0] == NORMAL


def test_a_withheld_height_loss_that_a_validated_score_agrees_with_asks_for_a_review():
    from VertebralFractureLib.quality.stage import withhold_lordotic_wedges, withhold_unsupported_grades
    from VertebralFractureLib.verdict import SCORE_RULES, UNCONFIRMED_GRADE_KEY

    validated = [rule for rule in SCORE_RULES if rule.validated and rule.field == "fracture_probability"]
    assert validated  # the shipped calibration lets the classifier in (test below)
    result = column(12.0)  # L1 crushed to grade 3
    l1 = result.vertebra("L1")
    l1.source, l1.checks = "model", {"endplates": 0.83}  # keypoints not clearly on the endplates
    withhold_unsupported_grades(result)
    assert not l1.assessed and l1.extra[UNCONFIRMED_GRADE_KEY] == 3
    l1.fracture_probability = 0.9
    verdict, reason = vertebra_verdict(l1)
    assert verdict == REVIEW
    assert reason.startswith("keypoints not clearly on the endplates (score 0.83)") and "0.90 >= 0.5" in reason
    document = result.to_dict()
    assert document["patient"]["verdict"] == REVIEW and "L1" in document["patient"]["review_levels"]
    assert SpineResult.from_dict(document).vertebra("L1").verdict()[0] == REVIEW  # kept through results.json
    l1.fracture_probability = 0.3  # the score does not agree: the gate's answer stands
    assert vertebra_verdict(l1)[0] == NOT_ASSESSED and patient_verdict(result.vertebrae)[0] == NORMAL
    # "normal" is said of the assessed vertebrae, and names the withheld one with the loss measured on it
    assert patient_verdict(result.vertebrae)[1] == (
        f"no deformity on {len(result.vertebrae) - 1} assessed vertebrae; a height loss measured but not confirmed on "
        "L1 (grade 3)")
    # nothing measured was withheld (cut by the field of view): a score alone never turns it into a finding
    other = column(12.0)
    other.vertebra("L1").not_assessed("cut by the edge of the field of view (superior edge)")
    other.vertebra("L1").fracture_probability = 0.9
    assert vertebra_verdict(other.vertebra("L1"))[0] == NOT_ASSESSED
    assert patient_verdict(other.vertebrae) == (NORMAL, f"no deformity on {len(other.vertebrae) - 1} assessed "
                                                        "vertebrae")  # nothing measured on it to mention
    l1.extra[UNCONFIRMED_GRADE_KEY] = 1  # a withheld grade 1 (a point or two off an edge) is not named either
    assert patient_verdict(result.vertebrae)[1] == f"no deformity on {len(result.vertebrae) - 1} assessed vertebrae"
    # a normal lordotic L5 withheld for its shape records no height loss
    wedge = SpineResult([body("L3", 60), body("L4", 30), body("L5", 0, posterior=18.0)])
    withhold_lordotic_wedges(wedge)
    l5 = wedge.vertebra("L5")
    l5.fracture_probability = 0.9
    assert not l5.assessed and UNCONFIRMED_GRADE_KEY not in l5.extra and vertebra_verdict(l5)[0] == NOT_ASSESSED


def test_the_verdict_words_and_the_boundaries_of_the_rule():
    """The words the worklist, genant.csv and the report show, and each limit taken as written (at or above)."""
    from VertebralFractureLib.verdict import MAX_REAL_FPR, UNCONFIRMED_GRADE_KEY

    assert (FRACTURE, REVIEW, NORMAL, NOT_ASSESSED) == ("fracture", "review", "normal", "not assessed")
    # a score is validated at exactly the highest false-positive rate and at exactly ten real vertebrae
    assert ScoreRule("fracture_probability", "c", 0.5, real_fpr=MAX_REAL_FPR, real_n=10).validated
    assert not ScoreRule("fracture_probability", "c", 0.5, real_fpr=MAX_REAL_FPR + 0.01, real_n=10).validated
    assert not ScoreRule("fracture_probability", "c", 0.5, real_fpr=0.0, real_n=9).validated
    assert not ScoreRule("fracture_probability", "c", 0.5, real_fpr=None, real_n=30).validated
    validated = ScoreRule("fracture_probability", "classifier", 0.5, real_fpr=0.05, real_n=30)
    l2 = column().vertebra("L2")
    l2.fracture_probability = 0.5  # at the operating point: "fracture" by the score
    assert vertebra_verdict(l2, [validated]) == (REVIEW, "heights normal but classifier 0.50 >= 0.5")
    # a withheld grade-1 loss with a validated score agreeing asks for a look, as a withheld grade 3 does
    l1 = column().vertebra("L1")
    l1.not_assessed("keypoints not clearly on the endplates")
    l1.extra[UNCONFIRMED_GRADE_KEY] = 1
    l1.fracture_probability = 0.9
    assert vertebra_verdict(l1, [validated])[0] == REVIEW
    # a withheld loss of grade 2 on slices that resolve the endplates asks for a look with no score agreeing; grade 1
    # there, or grade 3 where the slices do not resolve them (or the scan does not show the disc beyond), does not
    from VertebralFractureLib.verdict import UNCONFIRMED_RESOLVED_KEY

    crush = column().vertebra("L1")
    crush.not_assessed("keypoints not clearly on the endplates (score 0.83)")
    crush.extra.update({UNCONFIRMED_GRADE_KEY: 2, UNCONFIRMED_RESOLVED_KEY: True})
    verdict, reason = vertebra_verdict(crush, [validated])
    assert verdict == REVIEW and reason.startswith("keypoints not clearly on the endplates (score 0.83); but a loss")
    crush.extra[UNCONFIRMED_GRADE_KEY] = 1
    assert vertebra_verdict(crush, [validated])[0] == NOT_ASSESSED
    crush.extra.update({UNCONFIRMED_GRADE_KEY: 3, UNCONFIRMED_RESOLVED_KEY: False})
    assert vertebra_verdict(crush, [validated])[0] == NOT_ASSESSED
    # a reader's keypoints measure it: the analysis's withheld loss and where it was measured are dropped together
    crush.extra[UNCONFIRMED_RESOLVED_KEY] = True
    assert crush.measured_on_reader_points() and UNCONFIRMED_RESOLVED_KEY not in crush.extra
    # a vertebra withheld without a reason, and one whose keypoints give no heights, say so
    l3 = column().vertebra("L3")
    l3.not_assessed("")
    assert vertebra_verdict(l3, [validated]) == (NOT_ASSESSED, "not assessed")
    collapsed_points = SpineResult([Vertebra("L4", np.zeros(3), np.zeros((6, 3)))]).vertebra("L4")
    assert vertebra_verdict(collapsed_points) == (NOT_ASSESSED, "the keypoints do not give valid heights")


def test_each_modality_is_read_with_its_own_calibration():
    from VertebralFractureLib.verdict import MASK_SCORE_RULES, RADIOGRAPH_SCORE_RULES, SCORE_RULES, rules_for

    ct = column().vertebra("L2")
    assert rules_for(ct) == SCORE_RULES
    lateral = Vertebra("L2", np.array([10.0, 20.0]), ct.keypoints[:, 1:])  # [column, row] points of a film
    assert rules_for(lateral) == RADIOGRAPH_SCORE_RULES
    from types import SimpleNamespace

    assert rules_for(SimpleNamespace(keypoints=None)) == SCORE_RULES  # any object with the fields, no points yet
    ct.source = "mask"
    assert rules_for(ct) == MASK_SCORE_RULES
