"""What a reader sees on real CTs, pinned: the fast subset of ``benchmarks/bench_real.py`` (issues 16 and 25).

Each real case is analysed with every stage and scored against its reference annotation
(``Testing/Data/real/reference``). The bounds are the figures measured when this test was written
(see README.md, "Real and generated figures"); changing them is a deliberate act with a reason in the commit.
"""

import functools

import pytest

from VertebralFractureLib.pipeline import analyze
from VertebralFractureLib.training.real.reference import load_case, score_case

pytestmark = pytest.mark.slow


@functools.cache
def _analyse(case):
    """Analysis and score of a real case, computed once per test session (the tests only read them)."""
    reference = load_case(case)
    result = analyze(reference.path.parent.parent / reference.image).result
    return result, score_case(result, reference)


@pytest.fixture(scope="module")
def sample():
    return _analyse("sample_ct")


@pytest.fixture(scope="module")
def cardiac():
    return _analyse("cptac_cardiac_a")


def test_sample_ct_levels_statuses_and_no_false_fracture(sample):
    result, score = sample
    assert result.labels == ["T12", "L1", "L2", "L3", "L4", "L5"]
    assert score.found == 6 and score.missed == [] and score.outside == 0
    assert score.level_correct == score.found
    assert score.false_grade == []
    assert [v.label for v in result.vertebrae if not v.assessed] == ["T12", "L1"]
    assert "cut by the edge of the field of view" in result.vertebra("T12").status_reason
    # L1 holds a bone island (a bright focus inside the body, Testing/Data/real/README.md): measured 2026-12-03 its
    # refined inferior endplate landed on L2's and the size check withheld it; since 2026-12-06 (its points on the
    # body's cortical ring) its middle superior point lands on the island, and the grade-3 loss that makes is
    # withheld because the endplate traced across the body runs elsewhere (the verdict asks for a look: the patch
    # classifier also fires on the island)
    assert "placed on the endplate traced across the body" in result.vertebra("L1").status_reason
    summary = result.patient_summary()
    assert summary["fractured_levels"] == [] and summary["max_grade"] <= 1


def test_nothing_is_reported_in_the_heart_of_a_contrast_chest_crop(cardiac):
    """The failure that started issue 16: vertebrae found in a contrast-filled heart and graded 3."""
    result, score = cardiac
    assert score.outside == 0 and score.outside_graded == 0
    assert score.found >= 5
    assert score.false_grade == []
    assert result.patient_summary()["fractured_levels"] == []
    for vertebra in result.vertebrae:
        assert vertebra.assessed or vertebra.status_reason, vertebra.label


@pytest.mark.parametrize("case", ["cptac_chest", "cptac_cardiac_b", "tptbox_L3"])
def test_every_other_real_ct_never_grades_what_it_cannot_see(case):
    """Measured on 2026-12-03: nothing outside the spine, no grade >= 2 on these normal-looking vertebrae,
    a reason for every vertebra not assessed, and the levels either right (an anchor in view) or flagged."""
    result, score = _analyse(case)
    assert score.outside == 0 and score.false_grade == []
    assert result.patient_summary()["fractured_levels"] == []
    assert all(v.assessed or v.status_reason for v in result.vertebrae)
    levels = result.patient["levels"]
    if levels["certain"]:
        assert score.level_correct == score.found
    else:
        assert any(w.startswith("levels uncertain") or "levels uncertain" in w for w in result.warnings)
    minimum_found = {"cptac_chest": 13, "cptac_cardiac_b": 5, "tptbox_L3": 2}[case]
    assert score.found >= minimum_found


def test_the_chest_ct_is_counted_from_its_12th_rib():
    result, score = _analyse("cptac_chest")
    assert result.patient["levels"]["certain"] and "12th rib" in result.patient["levels"]["anchor"]
    assert result.labels == ["T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9", "T10", "T11", "T12", "L1"]


def test_normal_thoracolumbar_bodies_of_the_chest_ct_measure_no_moderate_loss():
    """The real chest CT's T11, T12 and L1 look normal. Before each endplate was traced across the body
    (keypoints/refine.py, endplate_line) one corner of each was moved 7-10 mm into the body (G 0.57, 0.34, 0.50:
    "grade 3", withheld). Measured 2026-12-04: G 0.78, 0.84, 0.95; 7 of the 13 bodies assessed (4 before)."""
    from VertebralFractureLib.genant import genant_index, heights

    result, _ = _analyse("cptac_chest")
    by_label = {v.label: v for v in result.vertebrae}
    for label in ("T11", "T12", "L1"):
        assert genant_index(heights(by_label[label].keypoints)) >= 0.7, label
    assert sum(v.assessed for v in result.vertebrae) >= 6


def test_tptbox_l3_g_agrees_with_its_mask_within_a_twentieth():
    """Issue 18's |G error| <= 0.05 against G from the real mask (0.073 before the endplate line, 0.011 after)."""
    _, score = _analyse("tptbox_L3")
    assert score.mask_g_errors["L3"] <= 0.05


def test_tptbox_l3_keypoints_and_centroid_sit_on_the_middle_of_the_body():
    """The points on the body's mid-sagittal plane, the centroid with them (4.2 mm to one side before the plane)."""
    import numpy as np

    result, _ = _analyse("tptbox_L3")
    truth = next(v for v in load_case("tptbox_L3").vertebrae if v.label == "L3")
    reference = np.asarray(truth.keypoints, dtype=float)
    posterior = reference[4:6].mean(0) - reference[0:2].mean(0)
    lateral = np.cross(posterior, reference[0::2].mean(0) - reference[1::2].mean(0))
    lateral /= np.linalg.norm(lateral)
    found = min(result.vertebrae, key=lambda v: np.linalg.norm(np.asarray(v.centroid) - truth.centroid))
    assert found.label == "L3"
    assert abs(float((np.asarray(found.keypoints) - reference).mean(0) @ lateral)) <= 2.0  # 1.2 measured
    assert abs(float((np.asarray(found.centroid) - reference.mean(0)) @ lateral)) <= 2.0  # 1.8 measured


def test_a_real_crush_fracture_drawn_as_a_ct_is_found_with_its_neighbours_and_flagged(tmp_path):
    """VerSe sub-verse004 (radiologists: T9 2, T10 2, L1 3) drawn as a 1 mm CT (``benchmarks/bench_real_shapes.py``).

    No ribs or sacrum are drawn, so the level classifier calls the thoracic bodies lumbar; before the decoding kept
    the bodies standing in the column (``keypoints.labelling.in_column``) it dropped T12 and L2 to make its labels
    fit. The grade-3 L1 is withheld by the gate (its crushed endplates); the patch classifier agrees with the height
    loss it measured, so the verdict asks for a look (``verdict.UNCONFIRMED_GRADE_KEY``) instead of "not assessed",
    and the patient is not called normal.
    """
    import numpy as np
    from testdata import drawn_mask_ct

    case, path = drawn_mask_ct(tmp_path, ("verse", "sub-verse004_seg-vert_msk.nii.gz"), 0, 1.0)
    result = analyze(path).result
    centres = np.array(list(case.body_centres().values()))
    reported = np.array([v.centroid for v in result.vertebrae])
    distances = np.linalg.norm(centres[:, None] - reported[None], axis=2)
    assert len(centres) == 9 and np.all(distances.min(axis=1) < 15.0)  # every body, T9-L5, reported
    assert len(result.vertebrae) == 9
    l1 = result.vertebrae[int(distances[4].argmin())]
    assert l1.verdict()[0] in ("fracture", "review"), l1.verdict()
    assert result.patient_summary()["verdict"] in ("fracture", "review")


def test_a_withheld_crush_on_slices_that_resolve_it_asks_for_a_look_and_a_body_cut_by_the_crop_does_not(tmp_path):
    """sample001's deformed L1 (a depressed superior endplate, read on its mask) drawn as a 1 mm CT: the gate withholds
    its grade-2 loss (a keypoint on the endplate traced across the body) and no validated learned score agrees (the
    patch classifier 0.06), so it was "not assessed" and the patient, whose other deformities were withheld or
    missed too on other drawings, could be called normal. On slices that resolve the endplates a loss that large
    asks for a look on its own (``verdict.UNCONFIRMED_RESOLVED_KEY``). The real TPTBox crop's L2, of which only the
    lowest 10 mm are in the crop, is boxed against the crop's top and measures grade 3: the scan does not show the
    disc above it, so it stays "not assessed"."""
    import numpy as np
    from testdata import drawn_mask_ct

    from VertebralFractureLib.verdict import UNCONFIRMED_GRADE_KEY, UNCONFIRMED_RESOLVED_KEY

    case, path = drawn_mask_ct(tmp_path, ("verse_sample001", "sub-sample001_seg-vert_msk.nii.gz"), 0, 1.0)
    result = analyze(path).result
    centre = np.asarray(case.body_centres()["L1"])
    l1 = min(result.vertebrae, key=lambda v: np.linalg.norm(np.asarray(v.centroid) - centre))
    assert not l1.assessed and l1.extra[UNCONFIRMED_GRADE_KEY] >= 2 and l1.extra[UNCONFIRMED_RESOLVED_KEY]
    verdict, reason = l1.verdict()
    assert verdict == "review" and "slices that resolve the endplates" in reason
    assert l1.label in result.patient_summary()["review_levels"]

    cropped, _ = _analyse("tptbox_L3")
    l2 = cropped.vertebra("L2")
    assert not l2.assessed and l2.extra[UNCONFIRMED_GRADE_KEY] >= 2 and not l2.extra[UNCONFIRMED_RESOLVED_KEY]
    assert l2.verdict()[0] == "not assessed"


def test_the_chest_ct_resampled_to_1_mm_is_measured_at_the_3_mm_it_resolves():
    """The real chest CT (3 mm slices) resampled to 1 mm, with what it resolves known (a DICOM series whose Slice
    Thickness exceeds its spacing is read so): every body found, levels from the 12th rib, and no body measured
    across two (resampled without it, the refinement took the blurred 1 mm endplates as resolved: T5 and T8 31-32 mm
    "too large", T1 missed, 5 of 12 assessed). 9 of 13 were assessed until each body was turned with its column
    (2026-12-06, keypoints/column_tilt.py): T5's middle inferior point then lies on its endplate's traced line, not
    on its own column's edge, so its measured loss is withheld: 8 of 13. Measured on each body's cortical ring
    (keypoints/refine.py ring_middle, fifteenth session) 6-7 of 13: L1, a rotated vertebra, 10.8 -> 1.1 mm from its
    reference points, T12 5.1 -> 2.8, T11 3.3 -> 2.1; T9's grade 1 withheld (keypoints not clearly on the
    endplates) and, on some runs, T3's box 26 mm tall."""
    from VertebralFractureLib.io.images import read_image, resample_spacing

    reference = load_case("cptac_chest")
    image = resample_spacing(read_image(reference.path.parent.parent / reference.image), 1.0)
    result = analyze(image).result
    score = score_case(result, reference)
    assert score.found == score.n_full == 13 and score.outside == 0
    assert score.level_correct == 13 and result.patient["levels"]["certain"]
    too_large = {v.label for v in result.vertebrae if "too large" in (v.status_reason or "")}
    assert not too_large & {"T5", "T8"}  # (T2's box is 26 mm at the CT's own 3 mm too)
    assert sum(v.status == "assessed" for v in result.vertebrae) >= 6 and not score.false_grade
    l1 = next(m for m in score.matches if m.reference == "L1")
    assert l1.keypoint_error_mm is not None and l1.keypoint_error_mm < 3.0  # on its body's middle, not its canal's


def test_the_chest_ct_bodies_lean_with_their_column_in_the_coronal_plane():
    """The real chest CT's T10 and T11 lean 9 and 18 degrees in the coronal plane (scoliosis; their reference points,
    placed on each body's own plane along the line of its neighbours, and their side walls on a coronal slab). The
    straightened spine's plane followed the smooth centre line: 3.5 and 9.0 degrees, T11's inferior points 3-5 mm
    beside the reference. Turned onto the line of their neighbours' centres (keypoints/column_tilt.py), measured
    2026-12-06: 7.8 and 15.6 degrees."""
    import numpy as np

    result, _ = _analyse("cptac_chest")
    reference = {v.label: np.asarray(v.keypoints, dtype=float) for v in load_case("cptac_chest").vertebrae
                 if v.keypoints is not None}

    def coronal_deg(points):
        superior = points[0::2].mean(0) - points[1::2].mean(0)
        return float(np.degrees(np.arcsin(superior[0] / np.linalg.norm(superior))))

    for label in ("T10", "T11"):
        found = coronal_deg(np.asarray(result.vertebra(label).keypoints, dtype=float))
        assert abs(found - coronal_deg(reference[label])) <= 4.0, (label, found)


def test_the_chest_ct_bodies_are_measured_on_their_own_middles():
    """Each body's points on its cortical ring's middle (keypoints/refine.py ring_middle), not its canal's: the chest
    CT's L1 is a rotated vertebra whose canal lies 9 mm right of its body's middle, and the points stood 10 mm beside
    both readers' plane (2026-12-06); T3 4 mm."""
    import numpy as np

    result, score = _analyse("cptac_chest")
    reference = {v.label: np.asarray(v.keypoints, dtype=float) for v in load_case("cptac_chest").vertebrae
                 if v.keypoints is not None}
    for label, most in (("L1", 2.0), ("T3", 2.0), ("T6", 1.5), ("T9", 1.5)):
        points = np.asarray(result.vertebra(label).keypoints, dtype=float)
        lateral = np.cross(reference[label][4:6].mean(0) - reference[label][0:2].mean(0),
                           reference[label][0::2].mean(0) - reference[label][1::2].mean(0))
        lateral /= np.linalg.norm(lateral)
        assert abs(float((points - reference[label]).mean(0) @ lateral)) <= most, label
