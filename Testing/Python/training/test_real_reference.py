"""The real-CT reference files and the scorer (VertebralFractureLib.training.real.reference)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from VertebralFractureLib.genant import measure
from VertebralFractureLib.levels import level_index, shift_level
from VertebralFractureLib.schema import SpineResult, Vertebra
from VertebralFractureLib.training.real.reference import (
    Reference,
    ReferenceError,
    ReferenceVertebra,
    centreline_in_bodies,
    list_cases,
    load_case,
    load_reference,
    reference_dir,
    score_case,
    summarise,
)

CASES = list_cases()


def _geometry(path):
    from VertebralFractureLib.io.images import geometry_of, read_image

    return geometry_of(read_image(path))


def test_every_case_is_shipped():
    assert set(CASES) >= {"sample_ct", "tptbox_L3", "verse004_L2_crop", "cptac_chest", "cptac_cardiac_a",
                          "cptac_cardiac_b"}


@pytest.mark.parametrize("case", CASES)
def test_reference_file_is_consistent_with_its_image(case):
    ref = load_case(case)
    assert ref.case == case
    assert ref.image_path.exists()
    order = [level_index(v.label) for v in ref.vertebrae]
    assert order == sorted(order) and len(set(order)) == len(order)
    geometry = _geometry(ref.image_path)
    for v in ref.vertebrae:
        if v.in_view == "full":
            assert geometry.contains(v.centroid), f"{case} {v.label}: centroid outside the image"
        if v.keypoints is not None:
            assert all(geometry.contains(p) for p in v.keypoints), f"{case} {v.label}: keypoint outside"
            low, high = v.keypoints.min(axis=0) - 2.0, v.keypoints.max(axis=0) + 2.0
            # the centroid lies inside its keypoints' box (x may be flat: all keypoints on one plane)
            assert np.all(v.centroid[1:] >= low[1:]) and np.all(v.centroid[1:] <= high[1:]), f"{case} {v.label}"
            assert 15.0 < measure(v.keypoints).heights[1] < 45.0


def test_at_least_six_keypointed_real_vertebrae():
    keypointed = [(c, v.label) for c in CASES for v in load_case(c).vertebrae if v.keypoints is not None]
    assert len(keypointed) >= 12


def test_the_committed_references_are_what_the_documented_command_builds():
    """``benchmarks/make_real_reference.py --references-only`` (the command in Testing/Data/real/README.md) rewrites
    every reference from its tables and the shipped masks: what is committed must be what it writes, or a rerun
    would silently undo a reading (until 2026-12-06 the script held the sample CT's older L2-L4 points)."""
    from testdata import REAL_DATA, benchmark

    built = benchmark("make_real_reference").build_references(REAL_DATA)
    assert set(built) == set(CASES)
    for case, document in built.items():
        committed = json.loads((reference_dir() / f"{case}.json").read_text())
        assert json.loads(json.dumps(document)) == committed, case


def test_reader_names_the_file_and_the_field(tmp_path):
    data = json.loads((reference_dir() / "sample_ct.json").read_text())
    data["vertebrae"][1]["in_view"] = "half"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ReferenceError, match=r"bad\.json.*L1.*in_view"):
        load_reference(bad)
    data = json.loads((reference_dir() / "sample_ct.json").read_text())
    data["vertebrae"] = data["vertebrae"][::-1]
    bad.write_text(json.dumps(data))
    with pytest.raises(ReferenceError, match="cranio-caudal"):
        load_reference(bad)


def _result_from(ref, *, shift=0, offset=(0.0, 0.0, 0.0)):
    """A result that reports every reference vertebra (keypoints where the reference has them)."""
    vertebrae = []
    for v in ref.vertebrae:
        keypoints = v.keypoints if v.keypoints is not None else v.centroid + np.array(
            [[0, -15, 15], [0, -15, -15], [0, 0, 15], [0, 0, -15], [0, 15, 15], [0, 15, -15]], float)
        vertebrae.append(Vertebra(shift_level(v.label, shift) if shift else v.label, v.centroid + offset,
                                  keypoints + offset))
    result = SpineResult(vertebrae=vertebrae)
    result.recompute()
    return result


def test_perfect_result_scores_100_percent():
    ref = load_case("sample_ct")
    score = score_case(_result_from(ref), ref)
    assert score.found == len(ref.vertebrae) and score.missed == [] and score.outside == 0
    assert score.level_accuracy == 1.0
    assert score.keypoint_error_mm == pytest.approx(0.0) and score.height_error_mm == pytest.approx(0.0)
    assert len(score.keypoint_errors_mm) == 5  # L1-L5 (T12 is cut by the field of view)
    assert score.false_grade == []


def test_result_shifted_by_one_level_scores_zero_levels():
    ref = load_case("cptac_chest")
    score = score_case(_result_from(ref, shift=1), ref)
    assert score.found == len(ref.vertebrae)
    assert score.level_accuracy == 0.0
    # named without a "levels uncertain" mark, every one is a confident wrong level (issue 17)
    assert score.level_wrong_certain == len(ref.vertebrae) and score.level_uncertain == 0


def test_levels_marked_uncertain_are_counted_apart_from_confident_wrong_ones():
    ref = load_case("cptac_chest")
    shifted = _result_from(ref, shift=1)
    shifted.patient["levels"] = {"anchor": None, "certain": False}
    score = score_case(shifted, ref)
    assert score.level_uncertain == len(ref.vertebrae) and score.level_wrong_certain == 0
    one = _result_from(ref, shift=1)
    one.vertebrae[0].extra["level_certain"] = False  # this vertebra's own count is uncertain
    score = score_case(one, ref)
    assert (score.level_uncertain, score.level_wrong_certain) == (1, len(ref.vertebrae) - 1)
    total = summarise([score, score_case(_result_from(ref), ref)])
    assert (total["level_uncertain"], total["level_wrong_certain"]) == (1, len(ref.vertebrae) - 1)


def test_keypoints_moved_by_3_mm_give_3_mm_error():
    ref = load_case("sample_ct")
    score = score_case(_result_from(ref, offset=(0.0, 3.0, 0.0)), ref)
    assert score.found == len(ref.vertebrae)
    assert score.keypoint_error_mm == pytest.approx(3.0)
    assert score.height_error_mm == pytest.approx(0.0, abs=1e-9)
    assert score.keypoint_error_sagittal_mm == pytest.approx(3.0)  # antero-posterior: in the sagittal plane


def test_a_lateral_shift_of_the_keypoints_is_no_sagittal_error():
    ref = load_case("sample_ct")
    score = score_case(_result_from(ref, offset=(4.0, 0.0, 0.0)), ref)
    assert score.keypoint_error_mm == pytest.approx(4.0)
    assert score.keypoint_error_sagittal_mm == pytest.approx(0.0, abs=1e-6)
    assert summarise([score])["keypoint_error_sagittal_mm"] == pytest.approx(0.0, abs=1e-6)


def test_vertebra_in_the_heart_counts_as_outside_and_its_grade_is_counted():
    ref = load_case("cptac_cardiac_a")
    heart = next(r for r in ref.no_spine_regions if r.name.startswith("heart"))
    result = _result_from(ref)
    crushed = heart.centre + np.array([[0, -15, 4], [0, -15, -4], [0, 0, 12], [0, 0, -12], [0, 15, 12],
                                       [0, 15, -12]], float)
    result.vertebrae.append(Vertebra("T5", heart.centre, crushed))
    result.recompute()
    score = score_case(result, ref)
    assert score.outside == 1 and score.outside_graded == 1
    assert score.found == len(ref.vertebrae)
    outside = [m for m in score.matches if m.outside]
    assert outside[0].region == heart.name


def test_point_far_from_every_vertebra_is_outside():
    ref = load_case("sample_ct")
    result = _result_from(ref)
    result.vertebrae = [result.vertebrae[0]] + [
        Vertebra("L1", ref.vertebrae[1].centroid + [0, -20, 0], ref.vertebrae[1].keypoints + [0, -20, 0])
    ]
    score = score_case(result, ref)
    assert score.outside == 1 and score.found == 1
    assert "L1" in score.missed


def test_grade_3_on_a_normal_vertebra_is_a_false_grade_unless_not_assessed():
    ref = load_case("tptbox_L3")
    l3 = next(v for v in ref.vertebrae if v.label == "L3")
    squashed = l3.keypoints.copy()
    squashed[0, 2] -= 0.5 * (squashed[0, 2] - squashed[1, 2])  # anterior height halved: wedge grade 3
    vertebra = Vertebra("L3", l3.centroid, squashed)
    result = SpineResult(vertebrae=[vertebra])
    result.recompute()
    assert vertebra.measure.grade == 3
    score = score_case(result, ref)
    assert score.false_grade == ["L3"] and score.false_review == [] and score.looks_normal_matched == 1
    # the mask's own points: concave endplates, G 0.79, grade 1 by the numbers on a body that looks normal: "review"
    reviewed = SpineResult(vertebrae=[Vertebra("L3", l3.centroid, l3.keypoints.copy())])
    reviewed.recompute()
    assert reviewed.vertebrae[0].measure.grade == 1
    assert score_case(reviewed, ref).false_review == ["L3"]
    vertebra.status = "not_assessed"
    vertebra.status_reason = "body cut by the field of view"
    score = score_case(result, ref)
    assert score.false_grade == [] and score.keypoint_errors_mm == []
    # ... but the keypoint error over every matched body counts it (the detector's points, withheld or not)
    moved = np.linalg.norm(squashed - l3.keypoints, axis=1).mean()
    assert score.keypoint_errors_all_mm == [pytest.approx(moved)] and moved > 1.0
    assert summarise([score])["keypoint_error_all_mm"] == pytest.approx(moved)
    assert summarise([score])["keypoint_error_sagittal_all_mm"] == pytest.approx(moved, abs=0.01)  # moved in plane
    # the same points 3 mm to the side of the reference body's mid-sagittal plane: 3D error up, in-plane error not
    from VertebralFractureLib.quality.checks import BodyFrame

    vertebra.keypoints = squashed + 3.0 * BodyFrame.from_keypoints(l3.keypoints).l
    aside = summarise([score_case(result, ref)])
    assert aside["keypoint_error_sagittal_all_mm"] == pytest.approx(moved, abs=0.01)
    assert aside["keypoint_error_all_mm"] == pytest.approx(np.mean(np.hypot(np.linalg.norm(squashed - l3.keypoints,
                                                                                           axis=1), 3.0)), abs=0.01)
    vertebra.keypoints = squashed
    assert score.not_assessed == {"body cut by the field of view": 1}
    assert score.found == 1
    # the G against the mask-derived reference counts withheld bodies too (issue 18's |G error|)
    reference_g = measure(l3.keypoints).G
    assert score.mask_g_errors == {"L3": pytest.approx(abs(vertebra_g(squashed) - reference_g))}
    assert summarise([score])["mask_g_errors"] == {"tptbox_L3 L3": pytest.approx(score.mask_g_errors["L3"], abs=1e-3)}


def vertebra_g(points) -> float:
    return measure(points).G


def test_partial_vertebrae_are_not_missable_and_summary_pools_cases():
    ref = load_case("tptbox_L3")
    empty = score_case(SpineResult(vertebrae=[]), ref)
    assert empty.missed == ["L3"]
    total = summarise([empty, score_case(_result_from(ref), ref)])
    assert total["missed"] == 1 and total["found"] == 3 and total["level_accuracy"] == 1.0


def _box_reference(tilt: float = 0.0) -> Reference:
    """One body 30 mm deep (anterior points y -15, posterior +15) and 25 mm high, tilted ``tilt`` rad about x."""
    y, z = np.array([-15.0, -15.0, 0.0, 0.0, 15.0, 15.0]), np.array([12.5, -12.5] * 3)
    c, s = np.cos(tilt), np.sin(tilt)
    points = np.stack([np.zeros(6), c * y - s * z, s * y + c * z], axis=1)
    return Reference(case="box", image="none", no_spine_regions=[],
                     vertebrae=[ReferenceVertebra(label="L1", centroid=np.zeros(3), keypoints=points)])


def _line(x=0.0, y=0.0, low=-60.0, high=60.0, tilt=0.0):
    z = np.arange(low, high + 0.1, 3.0)
    y_line = np.full_like(z, y) - np.tan(tilt) * z  # along the tilted body's superior axis (0, -sin, cos)
    return np.stack([np.full_like(z, x), y_line, z], axis=1)


def test_a_centreline_through_the_body_is_inside_on_every_plane():
    inside, planes = centreline_in_bodies(_line(), _box_reference())
    assert planes == 24 and inside == 24  # planes every 1 mm from -11.5 to +11.5
    tilted = _box_reference(tilt=0.3)
    assert centreline_in_bodies(_line(tilt=0.3)[::-1], tilted) == (24, 24)  # any direction, tilted body


def test_a_centreline_in_front_of_the_body_or_beside_it_is_outside():
    ref = _box_reference()
    assert centreline_in_bodies(_line(y=-22.0), ref) == (0, 24)  # anterior wall at -15 - 3 mm
    assert centreline_in_bodies(_line(y=-17.0), ref) == (24, 24)  # within the wall margin
    assert centreline_in_bodies(_line(x=16.0), ref) == (0, 24)  # beyond half the depth sideways
    assert centreline_in_bodies(_line(x=14.0), ref) == (24, 24)


def test_planes_the_centreline_does_not_reach_count_as_outside():
    inside, planes = centreline_in_bodies(_line(low=0.5), _box_reference())
    assert planes == 24 and inside == 12  # the line starts half-way up the body
    assert centreline_in_bodies(np.zeros((0, 3)), _box_reference()) == (0, 24)


def test_score_case_reports_the_centreline_fraction_and_summary_pools_it():
    ref = load_case("sample_ct")
    line = np.array([v.centroid for v in ref.vertebrae])
    line = np.vstack([2 * line[0] - line[1], line, 2 * line[-1] - line[-2]])  # on through the end bodies, as a spine
    score = score_case(_result_from(ref), ref, centreline=line)
    assert score.centreline_planes > 80 and score.centreline_fraction == 1.0
    away = score_case(_result_from(ref), ref, centreline=line + np.array([0.0, -40.0, 0.0]))
    assert away.centreline_fraction == 0.0
    total = summarise([score, away])
    assert total["centreline_fraction"] == pytest.approx(0.5)
    assert score_case(_result_from(ref), ref).centreline_fraction is None


def test_a_body_in_two_crops_of_one_scan_counts_once_in_the_distinct_figure():
    chest, crop = load_case("cptac_chest"), load_case("cptac_cardiac_a")
    moved = score_case(_result_from(chest, offset=(0.0, 3.0, 0.0)), chest)  # every chest body 3 mm off
    exact = score_case(_result_from(crop), crop)  # the crop's bodies (T7-T11, also in the chest) exact
    shared = {m.reference for m in exact.matches if m.keypoint_error_mm is not None}
    only_chest = [m for m in moved.matches if m.keypoint_error_mm is not None and m.reference not in shared]
    assert shared and only_chest
    total = summarise([moved, exact])
    distinct = total["distinct_bodies"]
    assert distinct["bodies"] == len(shared) + len(only_chest)
    # a shared body: (3 + 0) / 2 = 1.5 mm, once; a chest-only body: 3 mm
    expected = (1.5 * len(shared) + 3.0 * len(only_chest)) / distinct["bodies"]
    assert distinct["keypoint_error_mm"] == pytest.approx(expected)
    pooled = (3.0 * len(moved.keypoint_errors_mm)) / (len(moved.keypoint_errors_mm) + len(exact.keypoint_errors_mm))
    assert total["keypoint_error_mm"] == pytest.approx(pooled)  # the pooled figure counts the shared bodies twice


def test_the_scorer_at_its_boundaries_and_in_every_figure_it_reports():
    """Each count the benchmarks print, at the limit the issues state it with (grade 2 is a fracture)."""
    ref = load_case("tptbox_L3")
    l3 = next(v for v in ref.vertebrae if v.label == "L3")
    moderate = l3.keypoints.copy()
    anterior = (moderate[0] - moderate[1]) / np.linalg.norm(moderate[0] - moderate[1])
    moderate[0] = moderate[1] + 0.68 * measure(l3.keypoints).heights[2] * anterior  # G 0.68 of the posterior: grade 2
    result = SpineResult(vertebrae=[Vertebra("L3", l3.centroid, moderate)])
    assert result.vertebrae[0].measure.grade == 2
    score = score_case(result, ref)
    assert score.false_grade == ["L3"]  # a grade 2 on a normal-looking body is a false grade
    assert score.n_full == sum(v.in_view == "full" for v in ref.vertebrae) == 1
    # a grade-2 body in the heart is an outside detection with a grade
    cardiac = load_case("cptac_cardiac_a")
    heart = next(r for r in cardiac.no_spine_regions if r.name.startswith("heart"))
    in_heart = _result_from(cardiac)
    in_heart.vertebrae.append(Vertebra("T5", heart.centre, heart.centre + np.array(
        [[0, -15, 8], [0, -15, -8], [0, 0, 12], [0, 0, -12], [0, 15, 12], [0, 15, -12]], float)))
    in_heart.recompute()
    assert in_heart.vertebra("T5").measure.grade == 2
    assert score_case(in_heart, cardiac).outside_graded == 1
    # the G against the reference is measured only where the reference keypoints come from a mask
    assert score_case(_result_from(load_case("cptac_chest")), load_case("cptac_chest")).mask_g_errors == {}


def test_a_fracture_the_reference_shows_is_missed_below_grade_2():
    body = _box_reference().vertebrae[0]
    fractured = Reference(case="box", image="none", no_spine_regions=[], vertebrae=[ReferenceVertebra(
        label="L1", centroid=np.zeros(3), keypoints=body.keypoints, looks_fractured=True)])
    for anterior, grade, missed in ((17.5, 2, []), (19.0, 1, ["L1"])):  # heights 25 mm; anterior 70 % / 76 %
        points = body.keypoints.copy()
        points[0, 2] = points[1, 2] + anterior
        result = SpineResult(vertebrae=[Vertebra("L1", np.zeros(3), points)])
        assert result.vertebrae[0].measure.grade == grade
        assert score_case(result, fractured).missed_fracture == missed
    assert ReferenceVertebra(label="L2", centroid=np.zeros(3)).looks_fractured is False


def test_distances_and_height_errors_are_the_ones_the_points_give():
    ref = load_case("sample_ct")
    score = score_case(_result_from(ref, offset=(0.0, 3.0, 0.0)), ref)
    assert all(m.distance_mm == pytest.approx(3.0) for m in score.matches if m.reference is not None)
    assert score.height_errors_all_mm == pytest.approx([0.0] * 5, abs=1e-9)  # moved, not stretched (L1-L5)
    taller = _result_from(ref)
    for vertebra in taller.vertebrae:
        vertebra.keypoints = vertebra.keypoints + np.array([0.0, 0.0, 2.0]) * np.array([[1], [0]] * 3)  # tops up 2
    taller.recompute()
    stretched = score_case(taller, ref)
    # each height grows by what 2 mm upwards adds along that side of the body (L5 leans forwards on the sacrum)
    expected = []
    for vertebra in ref.vertebrae:
        if vertebra.keypoints is not None and vertebra.in_view == "full":
            sides = vertebra.keypoints[0::2] - vertebra.keypoints[1::2]
            expected.append(float(np.mean(np.linalg.norm(sides + [0.0, 0.0, 2.0], axis=1)
                                          - np.linalg.norm(sides, axis=1))))
    assert expected[:4] == pytest.approx([2.0] * 4, abs=0.05) and expected[4] == pytest.approx(1.78, abs=0.01)
    assert stretched.height_errors_all_mm == pytest.approx(expected, abs=1e-6)
    assert summarise([stretched])["distinct_bodies"]["height_error_mm"] == pytest.approx(np.mean(expected))


def _sample_document() -> dict:
    return json.loads((reference_dir() / "sample_ct.json").read_text())


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["vertebrae"][1].update(centroid=[1.0, 2.0]), r"vertebrae\[1\] \(L1\)\.centroid: expected three"),
    (lambda d: d["vertebrae"][1].update(centroid=[1.0, float("nan"), 2.0]), r"\(L1\)\.centroid: expected three"),
    (lambda d: d["vertebrae"][2].update(keypoints=d["vertebrae"][2]["keypoints"][:5]),
     r"\(L2\)\.keypoints: expected 6 finite \[x, y, z\] points, got shape \(5, 3\)"),
    (lambda d: d.update(vertebrae={}), "'vertebrae' and 'no_spine_regions' must be lists"),
    (lambda d: d.update(no_spine_regions={}), "'vertebrae' and 'no_spine_regions' must be lists"),
    (lambda d: d["no_spine_regions"][0].pop("radius_mm"), r"no_spine_regions\[0\]: expected"),
    (lambda d: d["no_spine_regions"][0].update(radius_mm=0), r"no_spine_regions\[0\]\.radius_mm: expected a positive"),
    (lambda d: d["no_spine_regions"][0].update(radius_mm=float("inf")), r"radius_mm: expected a positive"),
    (lambda d: d["vertebrae"][1].update(looks_fractured="no"), r"\(L1\)\.looks_fractured: expected true or false"),
])
def test_each_malformed_field_of_a_reference_is_named(tmp_path, edit, message):
    data = _sample_document()
    assert data["no_spine_regions"], "the sample CT's reference lists organs without a spine"
    edit(data)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ReferenceError, match=message):
        load_reference(bad)


def test_a_vertebra_without_the_fractured_field_looks_normal(tmp_path):
    data = _sample_document()
    data["vertebrae"][1].pop("looks_fractured", None)
    path = tmp_path / "ref.json"
    path.write_text(json.dumps(data))
    assert load_reference(path).vertebrae[1].looks_fractured is False
