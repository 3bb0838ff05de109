"""Bone cement in a vertebral body (VertebralFractureLib.implants): found, read past by the models, never graded."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from testdata import benchmark

from VertebralFractureLib.implants import (
    CEMENT_HU,
    FILL_HU,
    solid_core,
    without_cement,
    without_cement_ct,
)
from VertebralFractureLib.verdict import patient_verdict


def _ball(shape, centre, radius_mm, spacing):
    grid = np.indices(shape).astype(float) * np.asarray(spacing, float)[:, None, None, None]
    return np.sum((grid - np.asarray(centre, float)[:, None, None, None]) ** 2, axis=0) <= radius_mm**2


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (3.0, 3.0, 3.0), (3.0, 0.6, 0.6)])
def test_a_bolus_has_a_solid_core_and_a_dense_cortical_shell_has_none(spacing):
    """A 16 mm ball of 1800 HU keeps a core; a 2 mm thick shell of 1600 HU around a trabecular body (the densest
    cortex of a sharp kernel) keeps none, on fine, coarse and thick-sliced grids."""
    shape = tuple(int(round(60 / s)) for s in spacing)
    volume = np.full(shape, 150.0)
    body = _ball(shape, (30, 30, 30), 14.0, spacing)
    shell = body & ~_ball(shape, (30, 30, 30), 12.0, spacing)
    volume[shell] = 1600.0
    assert not solid_core(volume, spacing).any()
    volume[_ball(shape, (30, 30, 30), 8.0, spacing)] = 1800.0
    core = solid_core(volume, spacing)
    assert core.sum() * np.prod(spacing) > 0.5 * 4 / 3 * np.pi * 8.0**3
    assert not (core & shell).any()


def test_cement_is_read_as_dense_bone_and_nothing_else_changes():
    """:func:`without_cement` sets the bolus (and its blurred rim) to dense trabecular bone and leaves every other
    sample as it was: metal, and a rod as thin as a pedicle screw though below the metal's saturation."""
    spacing = (1.0, 1.0, 1.0)
    volume = np.full((50, 50, 50), 150.0)
    bolus = _ball(volume.shape, (25, 25, 25), 8.0, spacing)
    volume[bolus] = 1800.0
    screw = np.zeros_like(bolus)
    screw[5:12, 5:12, 5:40] = True  # a steel rod, 7 mm thick, saturating the CT's range
    volume[screw] = 3071.0
    blurred = np.zeros_like(bolus)
    blurred[38:44, 5:11, 5:40] = True  # a screw's core blurred below the saturation, 6 mm thick
    volume[blurred] = 2500.0
    out, changed = without_cement(volume, spacing)
    assert changed >= bolus.sum()
    assert np.all(out[bolus] == FILL_HU)
    assert np.all(out[screw] == 3071.0) and np.all(out[blurred] == 2500.0)
    assert np.array_equal(out[~bolus], volume[~bolus])


@pytest.mark.parametrize("case", ["sample_ct", "cptac_chest", "tptbox_L3"])
def test_the_real_cts_hold_no_cement(case):
    """The models read the real CTs as stored: the abdominal CT's hip implant (2967 HU, 15 mL) is metal, the chest
    CT's sharp-kernel cortex (up to 1633 HU in its straightened plane) and the TPTBox crop's dense facets (1300-1650
    HU, 23-88 mm^3) are bone."""
    from VertebralFractureLib.io.images import read_image, to_canonical
    from VertebralFractureLib.training.real.reference import load_case

    canonical = to_canonical(read_image(load_case(case).image_path))
    assert float(sitk.GetArrayViewFromImage(canonical).max()) >= CEMENT_HU
    image, cement_mm3 = without_cement_ct(canonical)
    assert image is canonical and cement_mm3 == 0.0


@pytest.fixture(scope="module")
def treated_sample_ct():
    """The real abdominal CT with a vertebroplasty of L2 and L3 (``bench_real_variants.vertebroplasty``, two
    neighbouring bodies, 2400 HU), analysed with the stages up to the quality gate."""
    from VertebralFractureLib.io.images import read_image
    from VertebralFractureLib.keypoints.stage import KeypointStage
    from VertebralFractureLib.pipeline import analyze
    from VertebralFractureLib.quality.stage import QualityGateStage
    from VertebralFractureLib.spine.stage import CentrelineStage, StraighteningStage
    from VertebralFractureLib.training.real.reference import load_case

    reference = load_case("sample_ct")
    image = benchmark("bench_real_variants").vertebroplasty(read_image(reference.image_path), reference, 2, 2400.0)
    stages = [CentrelineStage(), StraighteningStage(), KeypointStage(), QualityGateStage()]
    return reference, analyze(image, stages=stages)


def test_treated_bodies_keep_their_place_and_name_and_are_not_graded(treated_sample_ct):
    """Before 2026-12-07 the analysis found two bodies of this CT (T12 and L1 named for others, "certain"): the
    cement's glare took the detector's image, whose intensity it normalises by mean and spread. Every body is found
    and named as its reference; the treated ones are reported, not assessed, and say why."""
    reference, analysis = treated_sample_ct
    result = analysis.result
    centroids = {v.label: np.asarray(v.centroid, float) for v in reference.vertebrae}
    named = [v.label for v in result.vertebrae]
    assert named == ["T12", "L1", "L2", "L3", "L4", "L5"]
    for vertebra in result.vertebrae:
        assert np.linalg.norm(np.mean(vertebra.keypoints, axis=0) - centroids[vertebra.label]) < 15.0
    assert result.patient["levels"]["certain"] is True
    for label in ("L2", "L3"):
        vertebra = result.vertebra(label)
        assert vertebra.status == "not_assessed"
        verdict, reason = vertebra.verdict()
        assert verdict == "review"  # a treated fracture: the patient is not "normal"
        assert reason.startswith("bone cement in the body")  # though some of the 2400 HU bolus reaches 2500 HU
    assert "bone cement" not in " ".join(result.vertebra(label).verdict()[1] for label in ("L1", "L4", "L5"))
    # the bodies below the cement are measured (with the centre-line read through the cement, L4 was withheld)
    assert [(v.label, v.measure.grade) for v in result.vertebrae if v.assessed] == [("L4", 0), ("L5", 0)]
    assert patient_verdict(result.vertebrae)[0] == "review"


def test_the_reader_sees_the_cement_the_models_did_not(treated_sample_ct):
    """The mid-sagittal image of the overview and of Slicer is the CT itself (the cement as bright as it is), while
    the models read it as dense bone."""
    _, analysis = treated_sample_ct
    assert float(np.max(analysis.mid_sagittal)) > 1500.0
    assert float(np.max(analysis.straightened.mid_sagittal())) < 1500.0
