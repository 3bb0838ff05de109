"""Quality gate on real CT: it must refuse what the image does not support and pass real bodies.

Cases (all real files in ``Testing/Data/real``; keypoint boxes and the reasons were checked on
PNG renders of each case's own mid-sagittal and axial planes):

* heart and ascending aorta of the contrast chest CT (CPTAC C3N-00247, cropped): a box of a
  thoracic body's size placed in the blood pool (150-400 HU, no rim) -> not assessed, "bone";
* liver of the TotalSegmentator sample CT -> not assessed, "bone";
* the sample CT's T12, cut by the superior edge (its keypoints: the detector's L1 moved up by
  the L2 -> L1 step) -> not assessed, "field of view", superior;
* the sample CT's L3 (keypoints of the current detector, rounded to 0.1 mm, checked on PNG)
  labelled C5 -> not assessed, "cervical"; labelled L3 -> assessed;
* the TPTBox L3 with keypoints measured from its mask -> assessed; the same keypoints moved 8 mm
  along the body axis -> endplate score falls below the pass mark;
* a generated spine (true keypoints) -> every vertebra assessed.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from testdata import real

from VertebralFractureLib.io.images import geometry_of, read_image, to_canonical
from VertebralFractureLib.quality import NOT_ASSESSED, assess_vertebra, assess_vertebrae
from VertebralFractureLib.quality.checks import BodyFrame

# Detector output (VertebralFractureLib.pipeline.analyze on example_ct.nii.gz), LPS mm.
SAMPLE_L1 = [[3.6, -137.1, 401.9], [3.7, -142.0, 379.5], [4.0, -121.5, 398.3], [4.0, -126.6, 374.8],
             [4.2, -105.6, 397.3], [4.2, -112.1, 368.4]]
SAMPLE_L2 = [[3.6, -148.8, 368.4], [3.3, -155.2, 342.7], [3.7, -131.9, 365.1], [3.5, -138.5, 339.7],
             [3.9, -115.1, 362.2], [3.5, -122.4, 335.3]]
SAMPLE_L3 = [[2.6, -158.9, 332.3], [2.4, -162.8, 303.5], [2.7, -141.6, 328.9], [2.4, -145.1, 303.5],
             [3.0, -123.9, 328.7], [2.4, -128.0, 300.6]]


def box(centre, height, depth):
    """Six keypoints of an upright body: anterior -y, superior +z (genant.KEYPOINT_NAMES order)."""
    x, y, z = centre
    rows = []
    for dy in (-depth / 2, 0.0, depth / 2):
        rows += [[x, y + dy, z + height / 2], [x, y + dy, z - height / 2]]
    return np.array(rows)


def load(*parts):
    image = to_canonical(read_image(real(*parts)))
    return sitk.GetArrayFromImage(image), geometry_of(image)


@pytest.fixture(scope="module")
def sample_ct():
    return load("totalsegmentator", "example_ct.nii.gz")


@pytest.fixture(scope="module")
def chest_ct():
    return load("cptac_chest", "cptac_chest.nii.gz")


@pytest.fixture(scope="module")
def tptbox():
    from VertebralFractureLib.shape.measure import measure_from_mask

    volume, geometry = load("tptbox", "sub-ct_label-22_ct.nii.gz")
    result = measure_from_mask(real("tptbox", "sub-ct_seg-vert_label-22_msk.nii.gz"),
                               real("tptbox", "sub-ct_seg-subreg_label-22_msk.nii.gz"))
    (l3,) = [v for v in result.vertebrae if v.label == "L3"]
    return volume, geometry, np.asarray(l3.keypoints)


@pytest.mark.parametrize("centre, label, what", [
    ((25.0, -190.0, -165.0), "T8", "heart"),
    ((-5.0, -180.0, -110.0), "T6", "ascending aorta"),
])
def test_contrast_blood_pool_is_not_a_vertebra(chest_ct, centre, label, what):
    volume, geometry = chest_ct
    finding = assess_vertebra(volume, geometry, box(centre, 19.0, 26.0), label)
    assert finding.status == NOT_ASSESSED, what
    assert finding.reason.startswith("no cortical bone where the body should be"), finding.reason
    assert finding.checks["bone"] < 0.5
    assert finding.details["bone"]["rim_contrast_hu"] < 20.0  # homogeneous: rim no brighter than core
    assert finding.confidence < 0.5


def test_heart_in_the_cardiac_crop_too():
    volume, geometry = load("cptac_chest", "cptac_cardiac_a.nii.gz")
    finding = assess_vertebra(volume, geometry, box((25.0, -190.0, -165.0), 19.0, 26.0), "T8")
    assert finding.status == NOT_ASSESSED
    assert "cortical bone" in finding.reason


def test_liver_is_not_a_vertebra(sample_ct):
    volume, geometry = sample_ct
    finding = assess_vertebra(volume, geometry, box((-80.0, -180.0, 400.0), 24.0, 32.0), "L1")
    assert finding.status == NOT_ASSESSED
    assert "cortical bone" in finding.reason
    assert finding.checks["canal"] < 0.5 and finding.checks["posterior"] < 0.5


def test_body_cut_by_the_superior_edge(sample_ct):
    volume, geometry = sample_ct
    l1, l2 = np.array(SAMPLE_L1), np.array(SAMPLE_L2)
    t12 = l1 + (l1.mean(0) - l2.mean(0))
    finding = assess_vertebra(volume, geometry, t12, "T12")
    assert finding.status == NOT_ASSESSED
    assert finding.reason == "cut by the superior edge of the field of view"
    assert finding.checks["field_of_view"] < 0.5
    assert finding.confidence < 0.5  # a vertebra not assessed never shows a passing confidence
    cervical = assess_vertebra(volume, geometry, l1, "C5")  # every image check passes, the level fails
    assert cervical.status == NOT_ASSESSED and cervical.confidence < 0.5
    # The L1 below it lies wholly inside.
    assert assess_vertebra(volume, geometry, l1, "L1").checks["field_of_view"] == 1.0


def test_cervical_label_on_a_real_body(sample_ct):
    volume, geometry = sample_ct
    finding = assess_vertebra(volume, geometry, np.array(SAMPLE_L3), "C5")
    assert finding.status == NOT_ASSESSED
    assert finding.reason == "cervical level: Genant grading applies to thoracic and lumbar vertebrae"
    assert finding.checks["bone"] >= 0.5  # the image check itself passes: the level decides


def test_real_lumbar_bodies_are_assessed(sample_ct, tptbox):
    volume, geometry = sample_ct
    neighbours = [("L2", np.array(SAMPLE_L2))]
    finding = assess_vertebra(volume, geometry, np.array(SAMPLE_L3), "L3", neighbours=neighbours)
    assert finding.status == "assessed", finding.reason
    assert finding.reason is None
    assert all(finding.checks[name] >= 0.5 for name in ("bone", "canal", "posterior", "size", "endplates"))
    assert finding.confidence >= 0.5
    volume, geometry, keypoints = tptbox
    finding = assess_vertebra(volume, geometry, keypoints, "L3")
    assert finding.status == "assessed", finding.reason
    assert finding.details["bone"]["rim_hu"] > finding.details["bone"]["core_hu"] + 100  # cortex around core


def test_displaced_keypoints_lower_the_endplate_score(sample_ct, tptbox):
    for volume, geometry, keypoints in (tptbox, (*sample_ct, np.array(SAMPLE_L3))):
        frame = BodyFrame.from_keypoints(keypoints)
        on = assess_vertebra(volume, geometry, keypoints, "L3").checks["endplates"]
        off = assess_vertebra(volume, geometry, keypoints + 8.0 * frame.s, "L3")
        assert on >= 0.8
        assert off.checks["endplates"] < 0.5
        assert off.status == NOT_ASSESSED


def test_generated_spine_passes_on_its_true_keypoints():
    from VertebralFractureLib.synth import generate_case

    case = generate_case(3, "chest", radiograph=False, osteoporosis=1.0, spacing=(0.8, 0.8, 3.0))
    image = to_canonical(case.ct)
    findings = assess_vertebrae(sitk.GetArrayFromImage(image), geometry_of(image), case.truth.vertebrae)
    assert set(findings) == {v.label for v in case.truth.vertebrae}
    failed = {label: f.reason for label, f in findings.items() if not f.assessed}
    assert not failed


def test_instrumented_vertebrae_are_not_assessed_and_their_neighbours_are():
    """Pedicle screws (``generate_case(..., metal=True)``): before the metal check an instrumented normal T12
    measured grade 2 ("fracture", ``vertebral-fracture synth --metal --seed 920000 --preset abdomen``)."""
    from VertebralFractureLib.synth import generate_case

    case = generate_case(5, "spine", radiograph=False, metal=True, fracture_prevalence=0.0)
    instrumented = set(case.truth.input["synthetic"]["instrumented_levels"])
    assert len(instrumented) >= 2
    image = to_canonical(case.ct)
    findings = assess_vertebrae(sitk.GetArrayFromImage(image), geometry_of(image), case.truth.vertebrae)
    failed = {label: f.reason for label, f in findings.items() if not f.assessed}
    assert set(failed) == instrumented
    assert all(reason.startswith("metal or bone cement in the vertebra") for reason in failed.values())
    assert all(findings[label].details["metal"]["metal_mm3"] > 200 for label in instrumented)
    assert all(findings[label].details["metal"]["cement_mm3"] == 0.0 for label in instrumented)  # screws, no cement


@pytest.mark.parametrize("case", ["cptac_chest", "sample_ct"])
def test_real_bodies_hold_no_metal_though_their_scans_do(case):
    """Both scans hold samples at the top of the range (3071 and 3382 HU: a lead or a port outside the spine, and the
    densest cortex stays below 2500 HU): no reference body or its pedicles count any (gate.py, "Metal")."""
    from VertebralFractureLib.quality.checks import METAL_HU, check_metal
    from VertebralFractureLib.training.real.reference import load_case

    reference = load_case(case)
    array, geometry = load(*reference.image.split("/"))
    assert array.max() >= METAL_HU
    bodies = [v for v in reference.vertebrae if v.keypoints is not None]
    assert len(bodies) >= 4
    for vertebra in bodies:
        result = check_metal(array, geometry, BodyFrame.from_keypoints(vertebra.keypoints))
        assert result.values["metal_mm3"] == 0.0 and result.values["cement_mm3"] == 0.0 and result.passed, \
            vertebra.label


def test_a_cement_bolus_below_the_metal_threshold_fails_the_metal_check_with_its_own_reason():
    """The real abdominal CT with an 1800 HU bolus of cement drawn into L3 (``bench_real_variants.vertebroplasty``):
    no sample reaches 2500 HU, so the metal count passed it and the body was refused as "no cortical bone where the
    body should be" (contrast); its neighbours, sharing its box's rows at their ends, hold no cement."""
    import SimpleITK as sitk
    from testdata import benchmark

    from VertebralFractureLib.io.images import geometry_of, read_image
    from VertebralFractureLib.quality.checks import check_metal
    from VertebralFractureLib.training.real.reference import load_case

    reference = load_case("sample_ct")
    image = benchmark("bench_real_variants").vertebroplasty(read_image(reference.image_path), reference, 1, 1800.0)
    array, geometry = sitk.GetArrayFromImage(image), geometry_of(image)
    keypoints = {v.label: v.keypoints for v in reference.vertebrae if v.keypoints is not None}
    treated = check_metal(array, geometry, BodyFrame.from_keypoints(keypoints["L3"]))
    assert treated.values["metal_mm3"] < 20.0
    assert not treated.passed and treated.reason.startswith("bone cement in the body")
    for label in ("L2", "L4"):
        untouched = check_metal(array, geometry, BodyFrame.from_keypoints(keypoints[label]))
        assert untouched.passed and untouched.values["cement_mm3"] == 0.0, label


def test_sample_ct_cut_through_its_bodies_at_the_side_assesses_none():
    """The real sample CT cut 15 mm left of its spine (x > 19 mm out of view: the left third of every body): the
    bodies' own planes were found 7-9 mm to the right and three were assessed, keypoints 9-10 mm off; each body's bone
    runs into the image's left edge, so each is "cut by the left edge of the field of view" (or by the top)."""
    from VertebralFractureLib.pipeline import analyze
    from VertebralFractureLib.stage import AnalysisOptions

    image = to_canonical(read_image(real("totalsegmentator", "example_ct.nii.gz")))
    column = int(round((19.0 - image.GetOrigin()[0]) / image.GetSpacing()[0]))
    result = analyze(image[:column, :, :], AnalysisOptions(extra_stages=(), masks=False, device="cpu",
                                                           threads=1)).result
    assert len(result.vertebrae) >= 5
    assert not any(v.assessed for v in result.vertebrae)
    reasons = [v.status_reason for v in result.vertebrae]
    assert sum(r == "cut by the left edge of the field of view" for r in reasons) >= 4, reasons
    # the whole CT keeps its bodies assessed: nothing runs out of its 366 mm wide field of view
    whole = assess_vertebrae(sitk.GetArrayFromImage(image), geometry_of(image), [
        type("V", (), {"label": label, "keypoints": np.array(points)})()
        for label, points in (("L1", SAMPLE_L1), ("L2", SAMPLE_L2), ("L3", SAMPLE_L3))])
    assert all(whole[label].checks["field_of_view"] == 1.0 for label in ("L1", "L2", "L3"))
