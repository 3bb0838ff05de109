"""The opt-in ``realism="hospital"`` generator profile, and the ``"v1"`` default left exactly as it was.

The v1 pins (tissue HU and the SHA-256 of the int16 CT of seed 900000, preset chest, 3 mm) were
taken from the generator before the profile existed; if one of them changes, every v1 case (and
every model trained on them) changed too.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import SimpleITK as sitk

from VertebralFractureLib.synth import SynthParams, SynthParamsError, generate_case
from VertebralFractureLib.synth.tissue import draw_tissue

V1_CT_SHA256 = "c42598451df3d30815a8721ae055319f6535f7c2bc9fa2d49bb3131a2a8a716e"
V1_TISSUE = {"blood": 44.68, "disc": 72.42, "cortical": 817.69, "trabecular": 99.31, "muscle": 42.8}
SMALL = {"spacing": (3.0, 3.0, 3.0), "radiograph": False}


@pytest.fixture(scope="module")
def v1_case():
    return generate_case(900000, "chest", **SMALL)


def test_v1_default_is_unchanged(v1_case):
    ct = sitk.GetArrayFromImage(v1_case.ct)
    assert ct.shape == (76, 83, 107)
    assert hashlib.sha256(ct.tobytes()).hexdigest() == V1_CT_SHA256
    tissue = v1_case.tissue.to_dict()
    assert {k: tissue[k] for k in V1_TISSUE} == V1_TISSUE
    assert v1_case.params.noise_hu == pytest.approx(20.852684643516646)
    # the v1 parameters written with a case carry no new key (truth.json files stay byte-identical)
    assert "realism" not in v1_case.params.to_dict()
    assert "realism" not in v1_case.truth.input["synthetic"]["params"]


def test_explicit_v1_equals_default(v1_case):
    again = generate_case(900000, "chest", realism="v1", **SMALL)
    assert np.array_equal(sitk.GetArrayFromImage(again.ct), sitk.GetArrayFromImage(v1_case.ct))


def test_hospital_draws_contrast_enhanced_blood_in_some_cases():
    bloods = []
    for seed in range(40):
        hospital = np.random.default_rng([seed, 1])
        bloods.append(draw_tissue(np.random.default_rng(seed), 0.5, hospital).blood)
        assert draw_tissue(np.random.default_rng(seed), 0.5).blood <= 50.0  # v1: never enhanced
    bloods = np.asarray(bloods)
    assert bloods.min() >= 35.0 and bloods.max() <= 350.0
    assert (bloods > 120.0).mean() >= 0.4  # venous and arterial phases
    assert (bloods > 200.0).any() and (bloods <= 50.0).any()  # arterial and unenhanced cases


def test_hospital_case_has_bright_vessels_and_keeps_the_column(v1_case):
    case = generate_case(900000, "chest", realism="hospital", **SMALL)
    assert case.params.realism == "hospital"
    assert case.params.to_dict()["realism"] == "hospital"
    blood = case.tissue.blood
    assert blood == pytest.approx(case.params.extra["blood_hu"], abs=0.01)
    assert blood > 120.0, "seed 900000 is drawn in a contrast phase"
    assert 8.0 <= case.params.noise_hu <= 70.0
    assert case.tissue.cortical > v1_case.tissue.cortical  # 1150 - 150 x osteoporosis instead of - 350 x
    # same main draws as v1: same levels and vertebrae
    assert [v.label for v in case.truth.vertebrae] == [v.label for v in v1_case.truth.vertebrae]

    def share_near_blood(c) -> float:
        """Share of the voxels outside the vertebrae within 60 HU of the hospital case's blood value."""
        ct = sitk.GetArrayFromImage(c.ct).astype(float)
        soft = sitk.GetArrayFromImage(c.vert_mask) == 0
        return float(np.mean(np.abs(ct[soft] - blood) < 60.0))

    # heart, aorta and cava at the contrast value (real contrast CT: about 0.9 % of the view at 100-400 HU)
    assert share_near_blood(case) > 0.01
    assert share_near_blood(case) > 4 * share_near_blood(v1_case)


def test_hospital_noise_range_and_unknown_profile():
    noises = [generate_case(s, "spine", realism="hospital", spacing=(4.0, 4.0, 4.0), radiograph=False).params.noise_hu
              for s in range(6)]
    assert all(8.0 <= n <= 70.0 for n in noises) and max(noises) > 30.0
    with pytest.raises(SynthParamsError, match="realism"):
        SynthParams(realism="clinic").validate()
