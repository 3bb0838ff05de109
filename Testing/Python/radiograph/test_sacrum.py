"""Lumbar levels anchored on the sacrum (VertebralFractureLib.radiograph.sacrum), drawn and real lateral views.

Real images: the sagittal CT slices of ``Testing/Data/real/covid_sagittal`` with the hand-made level
reference ``Testing/Data/real/reference/covid_sagittal.json`` (levels counted up from the sacrum).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from VertebralFractureLib.radiograph import sacrum
from VertebralFractureLib.radiograph.analyze import analyze_radiograph

ROOT = Path(__file__).resolve().parents[2] / "Data" / "real"
REFERENCE = json.loads((ROOT / "reference" / "covid_sagittal.json").read_text())
ENTRIES = {Path(e["image"]).name[: -len(".nii.gz")]: e for e in REFERENCE["images"]}

HEIGHT, DEPTH, DISC = 24.0, 34.0, 8.0


def _box(image: np.ndarray, left: float, top: float) -> np.ndarray:
    """A body: grey interior, bright rim; returns its six keypoints ``[column, row]``."""
    r0, r1, c0, c1 = int(top), int(top + HEIGHT), int(left), int(left + DEPTH)
    image[r0:r1, c0:c1] = 0.9
    image[r0 + 2 : r1 - 2, c0 + 2 : c1 - 2] = 0.6
    return np.array([[left, top], [left, top + HEIGHT], [left + DEPTH / 2, top], [left + DEPTH / 2, top + HEIGHT],
                     [left + DEPTH, top], [left + DEPTH, top + HEIGHT]])


def drawn_spine(bodies: int = 7, below: str = "sacrum") -> tuple:
    """A lateral view (column 0 anterior): ``bodies`` bodies, then a sacrum, more bodies or soft tissue."""
    from skimage.draw import polygon

    image = np.full((420, 300), 0.3, dtype=np.float32)  # soft tissue
    image[:, 230:] = 0.05  # air behind the back
    keypoints = []
    top = 20.0
    for _ in range(bodies):
        keypoints.append(_box(image, 120.0, top))
        image[int(top + HEIGHT) : int(top + HEIGHT + DISC), 120:154] = 0.35  # disc
        top += HEIGHT + DISC
    if below == "sacrum":
        # S1 + S2 + S3 as one bony mass, its axis turned 35 degrees posteriorly (lumbosacral angle)
        turn = np.radians(35.0)
        axis, normal = np.array([np.sin(turn), np.cos(turn)]), np.array([np.cos(turn), -np.sin(turn)])
        start = np.array([120.0, top])
        corners = [start, start + 40 * normal, start + 40 * normal + 100 * axis, start + 100 * axis]
        rr, cc = polygon([p[1] for p in corners], [p[0] for p in corners], image.shape)
        image[rr, cc] = 0.65
    elif below == "bodies":
        for _ in range(3):
            _box(image, 120.0, top)
            top += HEIGHT + DISC
    return image, keypoints


def test_drawn_column_with_a_sacrum_names_its_lowest_body_l5():
    image, keypoints = drawn_spine(7, "sacrum")
    anchor, reason = sacrum.sacral_anchor(image, 0.0, keypoints, [True] * len(keypoints))
    assert anchor is not None, reason
    assert anchor.l5_index == 6 and "sacrum below" in reason
    assert [anchor.labels[i] for i in range(7)] == ["T11", "T12", "L1", "L2", "L3", "L4", "L5"]
    assert all(anchor.certain.values()) and anchor.below_s1 == []
    assert anchor.test.sacrum_deg >= 15.0


def test_without_the_classifier_the_sacral_test_alone_names_l5_and_no_score_is_given():
    # what the classifier's own training reads real slices with (train_lumbosacral.slice_boxes)
    image, keypoints = drawn_spine(7, "sacrum")
    anchor, reason = sacrum.sacral_anchor(image, 0.0, keypoints, [True] * len(keypoints), model=False)
    assert anchor is not None and anchor.l5_index == 6 and anchor.l5_probability is None
    assert "lumbosacral classifier no score" in reason
    assert all(t["l5_probability"] is None for t in anchor.details["tests"])
    with_network, _ = sacrum.sacral_anchor(image, 0.0, keypoints, [True] * len(keypoints))
    assert with_network.l5_probability is not None
    # the levels report says which reader named L5
    checks = [{"column": 1.0}] * len(keypoints)
    alone = sacrum.anchored_levels(image, 0.0, keypoints, checks, model=False)[1]["method"]
    both = sacrum.anchored_levels(image, 0.0, keypoints, checks)[1]["method"]
    assert "by the sacral test alone" in alone and "named by the lumbosacral classifier" in both


def test_the_level_unit_comes_from_the_lowest_bodies_not_from_a_long_thoracic_column():
    # eight short bodies above the seven drawn ones (a column reaching up to the upper thoracic spine): the median
    # height of all fifteen is a thoracic one, half the lumbar level the rays below L5 are measured in
    image, keypoints = drawn_spine(7, "sacrum")
    short = [np.array([[120.0, t], [120, t + 12], [137, t], [137, t + 12], [154, t], [154, t + 12]])
             for t in 4.0 - 16.0 * np.arange(8)[::-1]]
    anchor, reason = sacrum.sacral_anchor(image, 0.0, short + keypoints, [True] * (len(short) + len(keypoints)))
    assert anchor is not None, reason
    assert anchor.l5_index == len(short) + 6
    assert anchor.level_px == pytest.approx(sacrum.LEVEL_PER_HEIGHT * HEIGHT)


@pytest.mark.parametrize("below", ["bodies", "none"])
def test_drawn_column_without_a_sacrum_has_no_anchor(below):
    # the column goes on (three more bodies, not detected) or ends in soft tissue: no sacrum, no anchor
    image, keypoints = drawn_spine(7, below)
    anchor, reason = sacrum.sacral_anchor(image, 0.0, keypoints, [True] * len(keypoints))
    assert anchor is None, reason


@pytest.mark.parametrize("below_l5", [30, 45, 60])
def test_sacrum_cut_by_the_lower_edge_of_the_view_is_no_anchor(below_l5):
    # only the top of the sacrum is in the picture: the test's fan leaves the image, nothing is judged
    image, keypoints = drawn_spine(7, "sacrum")
    cut = image[: int(keypoints[-1][:, 1].max()) + below_l5]
    anchor, reason = sacrum.sacral_anchor(cut, 0.0, keypoints, [True] * len(keypoints))
    assert anchor is None
    assert "in the image" in reason or "outside the image" in reason
    # the whole sacrum in view: anchored as before
    anchor, reason = sacrum.sacral_anchor(image, 0.0, keypoints, [True] * len(keypoints))
    assert anchor is not None and anchor.l5_index == 6, reason


def test_a_sacrum_that_ends_outside_the_patient_is_no_anchor():
    # the soft tissue straight ahead of the sacrum counts only inside the patient's outline: with the patient
    # threshold above it (air there), the sacral test's pass is withdrawn and says why
    image, keypoints = drawn_spine(7, "sacrum")
    anchor, reason = sacrum.sacral_anchor(image, 0.4, keypoints, [True] * len(keypoints), model=False)
    assert anchor is None and reason.endswith("the region below the body is outside the patient")


def test_mirrored_view_finds_the_same_l5():
    image, keypoints = drawn_spine(7, "sacrum")
    mirrored = image[:, ::-1].copy()
    flipped = [np.column_stack([image.shape[1] - 1 - k[:, 0], k[:, 1]]) for k in keypoints]
    anchor, reason = sacrum.sacral_anchor(mirrored, 0.0, flipped, [True] * len(flipped))
    assert anchor is not None and anchor.l5_index == 6, reason
    # the sacral test itself turns its rays to the mirrored back (not only the classifier's patch)
    alone, reason = sacrum.sacral_anchor(mirrored, 0.0, flipped, [True] * len(flipped), model=False)
    assert alone is not None and alone.l5_index == 6 and alone.test.passed, reason
    assert alone.test.sacrum_deg >= 15.0


def test_count_levels_marks_levels_past_an_ambiguous_spacing_uncertain():
    from VertebralFractureLib.radiograph.gate2d import _Body

    image, keypoints = drawn_spine(7, "sacrum")
    # a gap of 1.55 levels between the 2nd and 3rd body (fits neither one nor two levels within STEP_RATIO)
    shifted = [k - np.array([0.0, 0.55 * sacrum.LEVEL_PER_HEIGHT * HEIGHT]) if i < 2 else k
               for i, k in enumerate(keypoints)]
    bodies = [_Body(k) for k in shifted]
    labels, certain, below, spare = sacrum.count_levels(bodies, list(range(7)), 6)
    assert [labels[i] for i in range(2, 7)] == ["L1", "L2", "L3", "L4", "L5"]
    assert all(certain[i] for i in range(2, 7)) and not certain[0] and not certain[1]
    # past the gap the count goes on with the nearest whole number of levels (1.55 -> 2): T11 above L1
    assert (labels[1], labels[0]) == ("T11", "T10")


def test_the_count_rests_on_trusted_bodies_and_a_box_beside_the_column_takes_no_step():
    """A real slice as PNG (A027284_19001231 at a working scale 2 % off its own): T12 not boxed, a box without a rim
    a depth in front of it, and the count from L5 stepped L1 -> box -> T11 as two steps of one and two levels: every
    level above two off, with certainty. The count no longer steps through an untrusted box off the column's line
    (L1 -> T11: two levels, T12 missed); the box is named from both sides, a level between them, not certain unless
    both agree."""
    from VertebralFractureLib.radiograph.gate2d import _Body

    _, keypoints = drawn_spine(7, "sacrum")  # T11 ... L5, 32 px apart
    missing_t12 = [k for i, k in enumerate(keypoints) if i != 1]  # T11, L1, ..., L5
    beside = keypoints[1] + np.array([-30.0, 8.0])  # in front of where T12 is, a little low
    bodies = [_Body(k) for k in missing_t12 + [beside]]
    order = [0, 6, 1, 2, 3, 4, 5]  # cranio-caudal: T11, the box, L1 ... L5
    trusted = [True] * 6 + [False]
    labels, certain, below, spare = sacrum.count_levels(bodies, order, 5, trusted)
    assert [labels[i] for i in range(6)] == ["T11", "L1", "L2", "L3", "L4", "L5"] and all(certain[i] for i in range(6))
    assert labels[6] == "T12" and not certain[6] and below == [] and spare == []
    # counted through the box as a body, as before: T11 named T10 (the box's step from L1 fits one level)
    through, _, _, _ = sacrum.count_levels(bodies, order, 5)
    assert through[0] != "T11"
    # between two bodies one level apart an untrusted box has no level of its own
    crowded = [_Body(k) for k in keypoints] + [_Body(keypoints[1] + np.array([-30.0, 16.0]))]
    labels, certain, below, spare = sacrum.count_levels(crowded, [0, 1, 7, 2, 3, 4, 5, 6], 6, [True] * 7 + [False])
    assert spare == [7] and [labels[i] for i in range(7)] == ["T11", "T12", "L1", "L2", "L3", "L4", "L5"]
    assert all(certain.values())


def test_a_count_from_the_sacrum_that_reaches_the_neck_names_the_cervical_bodies():
    """A view showing C7 above T1 (a real slice as a JPEG turned 15 degrees, A027284_19000925): the count from L5
    reached one level above T1 and the anchor was refused ("runs above T1"), leaving 17 levels uncertain."""
    from VertebralFractureLib.radiograph.gate2d import _Body

    step = HEIGHT + DISC
    bodies = [_Body(_box(np.zeros((1, 1)), 120.0, 20.0 + k * step)) for k in range(19)]  # C6 ... L5
    labels, certain, below, spare = sacrum.count_levels(bodies, list(range(19)), 18)
    assert [labels[k] for k in (0, 1, 2, 14, 18)] == ["C6", "C7", "T1", "L1", "L5"] and all(certain.values())


def _nearest(vertebra, entry):
    sx, sy = entry["spacing_mm"]
    best = min(entry["vertebrae"], key=lambda a: math.hypot((vertebra.centroid[0] - a["centroid"][0]) * sx,
                                                           (vertebra.centroid[1] - a["centroid"][1]) * sy))
    distance = math.hypot((vertebra.centroid[0] - best["centroid"][0]) * sx,
                          (vertebra.centroid[1] - best["centroid"][1]) * sy)
    return best, distance


@pytest.fixture(scope="module")
def analysed():
    names = ("A058062_19010108-077", "A058062_19001231-073", "A062055_19001228-075", "A002304_19001231-080",
             "A098752_19010127-174")
    return {name: analyze_radiograph(ROOT / ENTRIES[name]["image"]).result for name in names}


@pytest.mark.parametrize("name", ["A058062_19010108-077", "A062055_19001228-075"])
def test_real_sagittal_slice_with_the_sacrum_gets_the_levels_counted_from_it(analysed, name):
    result, entry = analysed[name], ENTRIES[name]
    levels = result.patient["levels"]
    assert levels["anchor"] == "sacrum" and levels["certain"] is True and "sacrum" in levels["method"]
    assert "named by the lumbosacral classifier" in levels["method"] and levels["evidence"]["l5_probability"] >= 0.5
    matched = [(v, _nearest(v, entry)) for v in result.vertebrae]
    matched = [(v, best) for v, (best, distance) in matched if distance < 12.0]
    assert len(matched) >= 7
    # every level counted from the sacrum is the annotated one, L5 included
    assert all(v.label == best["label"] for v, best in matched)
    assert any(v.label == "L5" and best["label"] == "L5" for v, best in matched)
    assert all(v.extra["level_certain"] is True for v, _ in matched)
    assert not any("levels uncertain" in w for w in result.warnings)


def test_s1_box_is_named_s1_and_not_graded(analysed):
    result = analysed["A062055_19001228-075"]
    s1 = [v for v in result.vertebrae if v.label == "S1"]
    assert len(s1) == 1 and s1[0].status == "not_assessed" and s1[0].checks["level"] == 0.0


def test_boxes_in_the_pelvis_below_s1_are_left_out(analysed):
    result = analysed["A058062_19001231-073"]
    assert result.patient["levels"]["anchor"] == "sacrum"
    labels = [v.label for v in result.vertebrae]
    assert {"L1", "L3", "L4", "L5"} <= set(labels)
    # below L5 at most S1 (the weak box on it that continues the column), never graded
    assert labels[labels.index("L5") + 1:] in ([], ["S1"])
    assert all(v.status == "not_assessed" for v in result.vertebrae if v.label == "S1")
    below = [r for r in result.input["rejected_detections"] if r["reason"] == sacrum.BELOW_S1_REASON]
    assert len(below) >= 3  # the sacral segments and pelvis boxes (4 now that every box reaches the gate)
    l5_row = next(v for v in result.vertebrae if v.label == "L5").centroid[1]
    assert all(r["centre"][1] > l5_row for r in below)


@pytest.mark.parametrize("name", ["A002304_19001231-080", "A098752_19010127-174"])
def test_no_sacrum_in_the_slice_keeps_the_levels_uncertain(analysed, name):
    # A002304_19001231: the lumbar bodies and the sacrum are cut paramedian (no S1 body in the slice);
    # A098752_19010127: a thoracic field of view
    result = analysed[name]
    levels = result.patient["levels"]
    assert levels["anchor"] is None and levels["certain"] is False and levels["reason"]
    assert any("levels uncertain" in w for w in result.warnings)
    assert all(v.extra["level_certain"] is False for v in result.vertebrae)


def test_real_slice_cut_below_s1_says_levels_uncertain(tmp_path):
    # A046441_19001111: anchored on the whole slice (see the bench); cut 45 px (1.9 levels) below the L5
    # centre only S1 and the top of S2 remain: not enough sacrum to be sure, the levels are uncertain
    import SimpleITK as sitk

    entry = ENTRIES["A046441_19001111-059"]
    source = sitk.ReadImage(str(ROOT / entry["image"]))
    l5_row = next(v["centroid"][1] for v in entry["vertebrae"] if v["label"] == "L5")
    array = sitk.GetArrayFromImage(source)
    cut = sitk.GetImageFromArray(array[..., : int(l5_row) + 45, :])
    cut.SetSpacing(source.GetSpacing())
    path = tmp_path / "cut.nii.gz"
    sitk.WriteImage(cut, str(path))
    levels = analyze_radiograph(path).result.patient["levels"]
    assert levels["anchor"] is None and levels["certain"] is False
    assert "image" in levels["reason"]


def _candidate(detection, passed, probability, in_view=1.0, in_patient=True):
    return {"detection": detection, "centre": [100.0, 50.0 * detection], "passed": passed, "why": "a reason",
            "l5_probability": probability, "in_view": in_view, "in_patient": in_patient}


def _choose(tests, classifier_alone=True):
    results = {t["detection"]: sacrum.L5Test(0.5, 0.2, 0.5, 30.0, 0.1, t["passed"], t["why"]) for t in tests}
    found, why = sacrum._choose(tests, results, classifier_alone)
    return (None if found is None else found[0]), why


def test_on_a_picture_with_its_bone_clipped_the_classifier_confirms_but_does_not_name_l5_alone():
    found, why = _choose([_candidate(1, False, 0.2), _candidate(2, False, 0.7)], classifier_alone=False)
    assert found is None and why == sacrum.CLIPPED_BONE_REASON
    assert _choose([_candidate(1, False, 0.01), _candidate(2, True, 0.9)], classifier_alone=False)[0] == 2


def test_the_classifier_must_confirm_l5_and_a_disagreement_is_no_anchor():
    # both name body 2
    assert _choose([_candidate(1, False, 0.01), _candidate(2, True, 0.9), _candidate(3, False, 0.0)])[0] == 2
    # the test names 2, the classifier (highest score >= ANCHOR_PROBABILITY) names 3: no anchor, and said why
    found, why = _choose([_candidate(1, False, 0.0), _candidate(2, True, 0.1), _candidate(3, False, 0.8)])
    assert found is None and "name different bodies" in why
    # the test alone, the classifier scoring every candidate below the threshold: not confirmed, no anchor
    found, why = _choose([_candidate(1, False, 0.2), _candidate(2, True, 0.3)])
    assert found is None and "does not confirm" in why and "0.30" in why and "at 100, 100 px" in why
    # the classifier alone (the test passes nowhere) names L5
    assert _choose([_candidate(1, False, 0.2), _candidate(2, False, 0.7)])[0] == 2
    assert _choose([_candidate(1, False, 0.2), _candidate(2, False, 0.3)]) == (None, "a reason")
    # without a classifier (model=False: no candidate scored) the test speaks alone
    assert _choose([_candidate(1, False, None), _candidate(2, True, None)])[0] == 2
    # the classifier judges only where the whole region below is in the image and inside the patient
    assert _choose([_candidate(1, False, 0.1), _candidate(2, False, 0.9, in_view=0.9)])[0] is None
    assert _choose([_candidate(1, False, 0.1), _candidate(2, False, 0.9, in_patient=False)])[0] is None
    found, why = _choose([_candidate(1, False, 0.1), _candidate(2, True, 0.2), _candidate(3, False, 0.9, in_view=0.5)])
    assert found is None and "does not confirm" in why


def _curved_spine(seed):
    """A held-out generated spine T11/T12-L5 with the curved sacrum (bench_lumbosacral.py's seeds)."""
    from VertebralFractureLib.synth import generate_case

    return generate_case(seed, "abdomen", sacrum="curved", bottom_level="L5", fov_xy_mm=(320.0, 320.0),
                         radiograph_sid_mm=None)


@pytest.fixture(scope="module")
def curved_spine():
    """Seed 910016: a lordotic L5 whose film the sacral test alone misreads."""
    return _curved_spine(910016)


def _film(case):
    film = case.radiograph_truth
    mm = float(film.pixel_spacing[0])
    truth = {v.label: np.asarray(v.centroid[:2], dtype=float) for v in film.vertebrae}
    return case.radiograph, (mm, mm), truth


def test_the_classifier_vetoes_a_lordotic_l5_the_sacral_test_takes_for_the_sacrum(curved_spine, monkeypatch):
    image, spacing, truth = _film(curved_spine)
    result = analyze_radiograph(image, pixel_spacing=spacing).result
    levels = result.patient["levels"]
    assert levels["anchor"] is None and levels["certain"] is False
    assert "name different bodies" in levels["reason"]
    # the hand-written test alone named L4 as L5: every level one off, with certainty
    monkeypatch.setattr(sacrum, "_learned_scores", lambda image01, keypoints, model: np.full(len(keypoints), np.nan))
    alone = analyze_radiograph(image, pixel_spacing=spacing).result.patient["levels"]
    assert alone["anchor"] == "sacrum"
    assert np.linalg.norm(np.asarray(alone["l5"]) - truth["L4"]) * spacing[0] < 10.0


def test_the_classifier_finds_l5_on_a_sagittal_slice_where_the_sacral_test_does_not(tmp_path, monkeypatch):
    import SimpleITK as sitk

    from VertebralFractureLib.training.radiograph.train_lumbosacral import sagittal_slice

    case = _curved_spine(910000)
    plane, pixel_mm, to_pixels = sagittal_slice(case)
    image = sitk.GetImageFromArray(plane)
    image.SetSpacing(pixel_mm)
    path = tmp_path / "slice.nii.gz"
    sitk.WriteImage(image, str(path))
    truth = {v.label: to_pixels(v.centroid)[0] for v in case.truth.vertebrae}
    result = analyze_radiograph(path).result
    assert result.patient["levels"]["anchor"] == "sacrum"
    assert "lumbosacral classifier" in result.patient["levels"]["reason"]
    named = {v.label: np.asarray(v.centroid[:2]) for v in result.vertebrae if v.extra.get("level_certain")}
    assert {"L3", "L4", "L5"} <= set(named)
    assert all(np.linalg.norm(named[level] - truth[level]) * pixel_mm[0] < 10.0 for level in named if level in truth)
    monkeypatch.setattr(sacrum, "_learned_scores", lambda image01, keypoints, model: np.full(len(keypoints), np.nan))
    assert analyze_radiograph(path).result.patient["levels"]["anchor"] is None
