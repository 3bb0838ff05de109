"""The quality-gate stage inside an analysis: what it does to the result a reader sees."""

import numpy as np
import pytest
from testdata import box_keypoints, real

from VertebralFractureLib.io.images import geometry_of, read_image, to_canonical
from VertebralFractureLib.progress import Progress
from VertebralFractureLib.quality.stage import (
    ENDPLATES_FOR_A_GRADE,
    LORDOTIC_WEDGE_REASON,
    QualityGateStage,
    height_loss_mm,
    withhold_grades_that_depend_on_crossed_points,
    withhold_lordotic_wedges,
    withhold_unresolved_losses,
    withhold_unsupported_grades,
)
from VertebralFractureLib.schema import SpineResult, Vertebra
from VertebralFractureLib.stage import Analysis, StageContext

# L3 of the real sample CT (keypoints measured on the image, test_gate.py) and a body-sized box in the heart
SAMPLE_L3 = [[2.6, -158.9, 332.3], [2.4, -162.8, 303.5], [2.7, -141.6, 328.9], [2.4, -145.1, 303.5],
             [3.0, -123.9, 328.7], [2.4, -128.0, 300.6]]


def box(centre, height, depth):
    return box_keypoints(centre, heights=(height, height, height), depth=depth)


def _analysis(parts, vertebrae):
    image = read_image(real(*parts))
    canonical = to_canonical(image)
    result = SpineResult(vertebrae)
    return Analysis(result=result, image=image, geometry=geometry_of(image), canonical=canonical,
                    canonical_geometry=geometry_of(canonical))


def test_a_grade_3_box_in_the_heart_is_not_assessed_and_not_graded():
    heart = box((25.0, -190.0, -165.0), 19.0, 26.0)
    heart[0, 2] -= 10.0  # anterior height 9 mm of 19: a "grade 3" wedge if it were graded
    vertebra = Vertebra("T8", heart.mean(axis=0), heart)
    analysis = _analysis(("cptac_chest", "cptac_cardiac_a.nii.gz"), [vertebra])
    assert vertebra.measure.grade == 3  # what the reader would have seen without the gate
    QualityGateStage().run(analysis, StageContext(), Progress())
    t8 = analysis.result.vertebra("T8")
    assert t8.status == "not_assessed" and "cortical bone" in t8.status_reason
    assert t8.measure is None and t8.quality < 0.5 and t8.checks["bone"] < 0.5
    summary = analysis.result.patient_summary()
    assert summary["max_grade"] == 0 and summary["verdict"] == "not assessed"


def test_a_real_body_with_its_keypoints_on_the_endplates_is_assessed():
    points = np.array(SAMPLE_L3)
    analysis = _analysis(("totalsegmentator", "example_ct.nii.gz"), [Vertebra("L3", points.mean(axis=0), points)])
    QualityGateStage().run(analysis, StageContext(), Progress())
    l3 = analysis.result.vertebra("L3")
    assert l3.status == "assessed" and l3.status_reason is None
    assert l3.checks["endplates"] >= ENDPLATES_FOR_A_GRADE and l3.measure is not None


def test_a_height_loss_is_withheld_when_the_keypoints_are_off_the_endplates():
    points = box((0.0, 0.0, 0.0), 25.0, 30.0)
    points[0, 2] -= 8.0  # anterior height 17 of 25 mm: a grade-2 wedge by the points
    result = SpineResult([Vertebra("L1", points.mean(axis=0), points)])
    result.vertebra("L1").checks = {"endplates": 0.75}
    assert result.vertebra("L1").measure.grade == 2
    withhold_unsupported_grades(result)
    l1 = result.vertebra("L1")
    assert l1.status == "not_assessed" and "grade 2" in l1.status_reason and "endplates" in l1.status_reason
    normal = SpineResult([Vertebra("L2", np.zeros(3), box((0.0, 0.0, 0.0), 25.0, 30.0))])
    normal.vertebra("L2").checks = {"endplates": 0.5}
    withhold_unsupported_grades(normal)
    assert normal.vertebra("L2").assessed  # grade 0 needs no such proof


def test_a_height_loss_measured_with_a_point_put_on_the_endplate_line_is_withheld():
    """A corner the CT refinement estimated from its endplate's traced line (its own column showed another edge) is
    an estimate: a loss measured with it is not confirmed (real sample CT resampled to 1 mm: an L1 graded 2 so)."""
    from VertebralFractureLib.keypoints.stage import LINE_PLACED_KEY

    points = box((0.0, 0.0, 0.0), 25.0, 30.0)
    points[4, 2] += 8.0  # posterior height 33 of 25 mm elsewhere: G 0.76, grade 1 by the points
    result = SpineResult([Vertebra("L1", points.mean(axis=0), points)])
    l1 = result.vertebra("L1")
    l1.checks = {"endplates": 1.0}  # every point on an edge: the score alone would let the grade through
    l1.extra[LINE_PLACED_KEY] = ["posterior superior"]
    assert l1.measure.grade >= 1
    withhold_unsupported_grades(result)
    assert l1.status == "not_assessed" and l1.status_reason.startswith("posterior superior placed on the endplate")
    # grade 0 needs no such proof, and a point an annotator placed is no estimate
    normal = SpineResult([Vertebra("L2", np.zeros(3), box((0.0, 0.0, 0.0), 25.0, 30.0))])
    normal.vertebra("L2").extra[LINE_PLACED_KEY] = ["anterior inferior"]
    withhold_unsupported_grades(normal)
    assert normal.vertebra("L2").assessed
    edited = SpineResult([Vertebra("L1", points.mean(axis=0), points.copy(), source="annotator")])
    edited.vertebra("L1").checks = {"endplates": 1.0}
    edited.vertebra("L1").extra[LINE_PLACED_KEY] = ["posterior superior"]
    withhold_unsupported_grades(edited)
    assert edited.vertebra("L1").assessed and edited.vertebra("L1").measure.grade >= 1


def test_a_height_loss_measured_with_a_point_that_crossed_its_neighbour_is_withheld():
    """Facing points of two bodies that crossed on thick slices were moved to meet half-way (keypoints/
    facing_endplates.py): where they met is no border the image shows (24 generated spines at 5 mm slices: a normal
    T9 graded 2 against a T10 box that had crossed it)."""
    from VertebralFractureLib.keypoints.stage import CROSSED_KEY

    points = box((0.0, 0.0, 0.0), 25.0, 30.0)
    points[1, 2] += 7.0  # anterior height 18 of 25 mm: grade 2 by the points
    result = SpineResult([Vertebra("T9", points.mean(axis=0), points)])
    t9 = result.vertebra("T9")
    t9.checks = {"endplates": 1.0}
    t9.extra[CROSSED_KEY] = {"anterior inferior": 3.46, "middle inferior": 1.2}
    assert t9.measure.grade == 2
    withhold_unsupported_grades(result)
    assert t9.status == "not_assessed"
    assert t9.status_reason.startswith("anterior inferior, middle inferior crossed the neighbouring body's endplate "
                                       "by up to 3.5 mm") and "(grade 2)" in t9.status_reason
    # grade 0 needs no such proof, and points an annotator placed are measured as given
    normal = SpineResult([Vertebra("T10", np.zeros(3), box((0.0, 0.0, 0.0), 25.0, 30.0))])
    normal.vertebra("T10").extra[CROSSED_KEY] = {"anterior superior": 3.46}
    withhold_unsupported_grades(normal)
    assert normal.vertebra("T10").assessed
    edited = SpineResult([Vertebra("T9", points.mean(axis=0), points.copy(), source="annotator")])
    edited.vertebra("T9").checks = {"endplates": 1.0}
    edited.vertebra("T9").extra[CROSSED_KEY] = {"anterior inferior": 3.46}
    withhold_unsupported_grades(edited)
    assert edited.vertebra("T9").assessed and edited.vertebra("T9").measure.grade == 2


def test_a_grade_that_changes_when_crossed_points_meet_is_not_reported_either_way():
    """Grade 0 after the crossed points met, grade 1 with the body's own borders: where the border lies decides the
    grade, and the slices do not show it (a real grade-2 T10 drawn as a 3 mm CT read "normal" so)."""
    from VertebralFractureLib.keypoints.stage import CROSSED_G_KEY, CROSSED_KEY
    from VertebralFractureLib.verdict import UNCONFIRMED_GRADE_KEY

    result = SpineResult([Vertebra("T10", np.zeros(3), box((0.0, 0.0, 0.0), 25.0, 30.0)),
                          Vertebra("T11", np.zeros(3), box((0.0, 0.0, -28.0), 25.0, 30.0))])
    t10, t11 = result.vertebra("T10"), result.vertebra("T11")
    for vertebra, apart in ((t10, 0.78), (t11, 0.93)):
        vertebra.extra[CROSSED_KEY] = {"anterior inferior": 1.4}
        vertebra.extra[CROSSED_G_KEY] = apart
    assert t10.measure.grade == 0 and t11.measure.grade == 0
    withhold_grades_that_depend_on_crossed_points(result)
    assert t10.status == "not_assessed" and t10.extra[UNCONFIRMED_GRADE_KEY] == 1
    assert t10.status_reason.startswith("its grade depends on where the endplates it shares with a neighbour lie")
    assert "G 0.78 (grade 1) with its own borders, 1.00 (grade 0)" in t10.status_reason
    assert t11.assessed  # 0.93 and 1.00: grade 0 either way
    edited = SpineResult([Vertebra("T10", np.zeros(3), box((0.0, 0.0, 0.0), 25.0, 30.0), source="annotator")])
    edited.vertebra("T10").extra[CROSSED_G_KEY] = 0.6
    withhold_grades_that_depend_on_crossed_points(edited)
    assert edited.vertebra("T10").assessed  # points a person placed are measured as given


def test_a_posterior_shortest_l5_is_not_graded_from_its_shape_but_an_anterior_wedge_is():
    """L5 is normally shortest at the back (posterior about 0.87 of anterior): that shape is no fracture."""
    lordotic = box_keypoints((0.0, 0.0, 0.0), heights=(30.0, 28.0, 23.0), depth=35.0)  # G 0.77, grade 1 by shape
    wedge = box_keypoints((0.0, 0.0, -40.0), heights=(20.0, 26.0, 28.0), depth=35.0)  # anterior 20 of 28: grade 2
    result = SpineResult([Vertebra("L4", np.zeros(3), lordotic.copy()),
                          Vertebra("L5", np.zeros(3), lordotic.copy() + [0.0, 0.0, -40.0])])
    assert [v.measure.grade for v in result.vertebrae] == [1, 1]
    withhold_lordotic_wedges(result)
    l4, l5 = result.vertebra("L4"), result.vertebra("L5")
    assert l4.assessed and l4.measure.grade == 1  # at L4 the same shape is a deformity to report
    assert l5.status == "not_assessed" and l5.status_reason == LORDOTIC_WEDGE_REASON and l5.measure is None
    fractured = SpineResult([Vertebra("L5", np.zeros(3), wedge)])
    withhold_lordotic_wedges(fractured)
    assert fractured.vertebra("L5").assessed and fractured.vertebra("L5").measure.grade == 2
    # a biconcave L5 (middle shortest, posterior shorter than anterior) keeps its grade too
    biconcave = SpineResult([Vertebra("L5", np.zeros(3), box_keypoints((0.0, 0.0, 0.0), heights=(27.0, 18.0, 22.0),
                                                                         depth=35.0))])
    withhold_lordotic_wedges(biconcave)
    assert biconcave.vertebra("L5").assessed and biconcave.vertebra("L5").measure.grade == 2


def test_withholding_a_body_measures_its_neighbours_again():
    """A withheld body leaves the column, so the detector's crush comparison of its neighbour is read again."""
    heights = {"L3": (30.0,) * 3, "L4": (21.0,) * 3, "L5": (27.0, 25.0, 20.0)}  # L5: a lordotic wedge, grade 2
    result = SpineResult([Vertebra(level, np.zeros(3), box_keypoints((0.0, 0.0, z), heights=h, depth=35.0),
                                   source="model") for (level, h), z in zip(heights.items(), (60.0, 30.0, 0.0))])
    l4 = result.vertebra("L4")
    assert l4.measure.neighbour_reduction == pytest.approx(1 - 21 / ((30 + 27) / 2))
    withhold_lordotic_wedges(result)
    assert result.vertebra("L5").status == "not_assessed"
    assert result.vertebra("L4").measure.neighbour_reduction == pytest.approx(1 - 21 / 30)  # against L3 alone


def _slices(thickness_mm: float):
    """An axial CT's geometry: 0.8 x 0.8 mm pixels, ``thickness_mm`` slices (LPS, identity direction)."""
    from VertebralFractureLib.geometry import ImageGeometry

    return ImageGeometry((400, 400, 80), (0.8, 0.8, thickness_mm), (-160.0, -160.0, -200.0), np.eye(3))


def test_a_height_loss_thinner_slices_could_not_resolve_is_withheld_on_5_mm_slices():
    """On 5 mm slices each endplate is the merged band's centre, up to half a slice off: a loss under two slices
    (10 mm) is not confirmed; a larger one, and any loss on 3 mm slices, is reported."""
    wedge = box_keypoints((0.0, 0.0, 0.0), heights=(18.0, 24.0, 25.0), depth=30.0)  # 7 mm loss: G 0.72, grade 2
    severe = box_keypoints((0.0, 0.0, -40.0), heights=(14.0, 22.0, 25.0), depth=30.0)  # 11 mm: G 0.56, grade 3
    result = SpineResult([Vertebra("L1", np.zeros(3), wedge.copy()), Vertebra("L2", np.zeros(3), severe.copy())])
    assert [v.measure.grade for v in result.vertebrae] == [2, 3]
    withhold_unresolved_losses(result, _slices(5.0))
    l1, l2 = result.vertebra("L1"), result.vertebra("L2")
    assert l1.status == "not_assessed" and l1.status_reason.startswith("slices 5.0 mm thick along the body: a height "
                                                                       "loss of 7.0 mm (grade 2)")
    assert l2.assessed and l2.measure.grade == 3
    from VertebralFractureLib.verdict import UNCONFIRMED_GRADE_KEY

    assert l1.extra[UNCONFIRMED_GRADE_KEY] == 2  # recorded: a learned score that agrees asks for a look
    on_3_mm = SpineResult([Vertebra("L1", np.zeros(3), wedge.copy())])
    withhold_unresolved_losses(on_3_mm, _slices(3.0))
    assert on_3_mm.vertebra("L1").assessed and on_3_mm.vertebra("L1").measure.grade == 2
    annotated = SpineResult([Vertebra("L1", np.zeros(3), wedge.copy(), source="annotator")])
    withhold_unresolved_losses(annotated, _slices(5.0))
    assert annotated.vertebra("L1").assessed  # points a person placed are measured as given


def test_the_loss_behind_a_grade_from_the_size_deficit_is_counted_against_the_expected_height():
    """A crushed body keeps its shape (G near 1) and loses all heights against its normal neighbours: its loss is the
    expected height minus its shortest, not its tallest minus its shortest."""
    from VertebralFractureLib.genant import GenantMeasure

    shape_only = GenantMeasure(heights=(18.0, 24.0, 25.0), G=0.72, grade=2, type="wedge")
    assert height_loss_mm(shape_only) == 7.0
    # heights 14-15 mm, G 14 / 15; neighbours 25 mm tall: deficit s = 0.4, reduction 1 - G (1 - (s - 0.05))
    g = 14.0 / 15.0
    crush = GenantMeasure(heights=(14.0, 14.5, 15.0), G=g, grade=3, type="crush",
                          neighbour_reduction=1.0 - g * (1.0 - (0.4 - 0.05)))
    assert abs(height_loss_mm(crush) - (25.0 - 14.0)) < 1e-9


@pytest.mark.parametrize("t10_height, withheld", [(32.0, True), (26.5, False)])
def test_a_crush_measured_against_a_neighbour_too_tall_for_its_level_is_withheld(t10_height, withheld):
    """A detector's T9 of normal shape, 21 mm, below a T10 box of 32 mm (1.6 times T10's normal 20.5 mm: on 5 mm
    slices a box spanning a disc or two bodies) is graded 2 by the crush comparison; that grade is not confirmed.
    Below a T10 of 26.5 mm (1.29 times, within the size check's plateau) its grade 1 stands."""
    from VertebralFractureLib.quality.stage import withhold_crushes_against_implausible_neighbours
    from VertebralFractureLib.verdict import UNCONFIRMED_GRADE_KEY

    heights = {"T9": (21.0, 21.0, 21.0), "T10": (t10_height,) * 3}
    result = SpineResult([Vertebra(level, np.zeros(3), box_keypoints((0.0, 0.0, z), heights=h, depth=28.0),
                                   source="model") for (level, h), z in zip(heights.items(), (30.0, 0.0))])
    t9 = result.vertebra("T9")
    assert t9.measure.type == "crush" and t9.measure.grade == (2 if withheld else 1)
    withhold_crushes_against_implausible_neighbours(result)
    t9, t10 = result.vertebra("T9"), result.vertebra("T10")
    assert t10.assessed and t10.measure.grade == 0  # the tall neighbour keeps its own measure
    if withheld:
        assert t9.status == "not_assessed" and t9.extra[UNCONFIRMED_GRADE_KEY] == 2
        assert t9.status_reason == ("its size is compared with T10, whose height 32 mm is 1.6 times its level's "
                                    "normal (20 mm): the crush (grade 2) cannot be confirmed")
    else:
        assert t9.assessed and t9.measure.grade == 1
    # the same heights placed by a person are measured as given
    placed = SpineResult([Vertebra(level, np.zeros(3), box_keypoints((0.0, 0.0, z), heights=h, depth=28.0),
                                   source="annotator") for (level, h), z in zip(heights.items(), (30.0, 0.0))])
    withhold_crushes_against_implausible_neighbours(placed)
    assert placed.vertebra("T9").assessed


@pytest.mark.parametrize("heights, grade, withheld", [((25.0, 20.0, 39.0), 3, True), ((25.0, 20.0, 27.0), 2, False),
                                                     ((30.0, 30.0, 39.0), 1, False)])
def test_a_shape_grade_measured_against_a_height_too_tall_for_its_level_is_withheld(heights, grade, withheld):
    """A detector's L1 with a posterior height of 39 mm (1.6 times L1's normal: a posterior keypoint in the disc),
    25 mm anterior and 20 mm in the middle is graded 3 by its shape (G 0.51): not confirmed. With a posterior height
    of 27 mm (about the normal) the same middle height is a biconcave grade 2 that stands, as a person's points do;
    a grade 1 against the same tall height stands too (a look, not a fracture)."""
    from VertebralFractureLib.quality.checks import normal_size
    from VertebralFractureLib.quality.stage import withhold_shape_grades_against_an_implausible_height
    from VertebralFractureLib.verdict import UNCONFIRMED_GRADE_KEY

    result = SpineResult([Vertebra("L1", np.zeros(3), box_keypoints((0.0, 0.0, 0.0), heights=heights, depth=30.0),
                                   source="model")])
    assert result.vertebra("L1").measure.grade == grade
    withhold_shape_grades_against_an_implausible_height(result)
    l1 = result.vertebra("L1")
    if withheld:
        normal = normal_size("L1")[0]
        assert l1.status == "not_assessed" and l1.extra[UNCONFIRMED_GRADE_KEY] == 3
        assert l1.status_reason == (f"its tallest height, 39 mm, is {39.0 / normal:.1f} times its level's normal "
                                    f"({normal:.0f} mm): a keypoint may lie beyond the body, and the measured height "
                                    "loss (grade 3) cannot be confirmed")
    else:
        assert l1.assessed and l1.measure.grade == grade
    placed = SpineResult([Vertebra("L1", np.zeros(3), box_keypoints((0.0, 0.0, 0.0), heights=heights, depth=30.0),
                                   source="annotator")])
    withhold_shape_grades_against_an_implausible_height(placed)
    assert placed.vertebra("L1").assessed


@pytest.mark.parametrize("thickness_mm, top_mm, resolved", [(1.0, 60.0, True), (2.0, 60.0, True),
                                                             (3.0, 60.0, False), (1.0, 16.0, False)])
def test_a_withheld_loss_is_marked_resolved_on_thin_slices_that_show_the_disc_beyond(thickness_mm, top_mm, resolved):
    """A grade-2 wedge withheld for keypoints off the endplates is marked measured on slices that resolve the endplates
    (the verdict then asks for a look) on 1 and 2 mm slices along an upright body, not on 3 mm ones
    (``refine.CT_RESOLVED_MM``), nor where the scan ends 3.5 mm above its superior endplate (no disc above in view)."""
    from VertebralFractureLib.geometry import ImageGeometry
    from VertebralFractureLib.quality.stage import mark_resolved_unconfirmed_losses
    from VertebralFractureLib.verdict import UNCONFIRMED_GRADE_KEY, UNCONFIRMED_RESOLVED_KEY

    wedge = box_keypoints((0.0, 0.0, 0.0), heights=(18.0, 24.0, 25.0), depth=30.0)  # top endplate at 12.5 mm
    result = SpineResult([Vertebra("L1", np.zeros(3), wedge, source="model")])
    l1 = result.vertebra("L1")
    l1.checks = {"endplates": 0.6}
    withhold_unsupported_grades(result)
    assert l1.extra[UNCONFIRMED_GRADE_KEY] == 2
    slices = int(round((top_mm + 60.0) / thickness_mm))
    geometry = ImageGeometry((200, 200, slices), (0.8, 0.8, thickness_mm), (-80.0, -80.0, -60.0 + thickness_mm / 2),
                             np.eye(3))
    mark_resolved_unconfirmed_losses(result, geometry)
    assert l1.extra[UNCONFIRMED_RESOLVED_KEY] is resolved
    assert l1.verdict()[0] == ("review" if resolved else "not assessed")
