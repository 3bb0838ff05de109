"""The opt-in curved sacrum (``sacrum="curved"``): its shape, the pelvis in front of it, the default left alone."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from VertebralFractureLib.levels import label_from_level
from VertebralFractureLib.synth import SynthParams, SynthParamsError, generate_case
from VertebralFractureLib.synth.vertebrae import SACRAL_HALF_DEPTH, sacral_path

SMALL = {"spacing": (2.0, 2.0, 2.0), "bottom_level": "L5", "fov_xy_mm": (300.0, 300.0)}


@pytest.fixture(scope="module")
def cases():
    return {style: generate_case(910003, "abdomen", sacrum=style, **SMALL) for style in ("simple", "curved")}


def _sacral_voxels(case) -> np.ndarray:
    """LPS mm of the voxels labelled S1 (S1 and the sacrum drawn with its label)."""
    mask = sitk.GetArrayFromImage(case.vert_mask)
    z, y, x = np.nonzero(mask == label_from_level("S1"))
    return np.array([case.vert_mask.TransformIndexToPhysicalPoint((int(i), int(j), int(k)))
                     for i, j, k in zip(x[::7], y[::7], z[::7])])


def test_default_is_simple_and_writes_no_new_key(cases):
    simple = cases["simple"]
    assert simple.params.sacrum == "simple"
    assert "sacrum" not in simple.params.to_dict()
    assert "s1_keypoints_lps" not in simple.truth.input["synthetic"]
    assert cases["curved"].params.to_dict()["sacrum"] == "curved"
    with pytest.raises(SynthParamsError, match="sacrum"):
        SynthParams(sacrum="banana").validate()


def test_curved_sacrum_runs_down_and_back_from_s1_then_turns_forwards(cases):
    case = cases["curved"]
    s1 = np.asarray(case.truth.input["synthetic"]["s1_keypoints_lps"])
    assert s1.shape == (6, 3)
    centre = s1.mean(axis=0)
    bone = _sacral_voxels(case)
    lowest = bone[np.argmin(bone[:, 2])]
    # the sacrum and coccyx reach 80-140 mm below S1's centre (S2-S5 and three coccygeal segments) ...
    assert 80.0 <= centre[2] - lowest[2] <= 140.0
    # ... behind S1 (LPS y grows posteriorly), and the field of view was lowered to hold it
    assert lowest[1] > centre[1] + 10.0
    assert case.ct.GetOrigin()[2] < lowest[2]
    # the simple sacrum stops about where the curved one starts: the whole curve is the new part
    simple_lowest = _sacral_voxels(cases["simple"])[:, 2].min()
    assert lowest[2] < simple_lowest - 20.0


def test_sacral_path_is_concave_in_front_and_narrows():
    from VertebralFractureLib.synth.column import VertebraModel
    from VertebralFractureLib.synth.morphometry import level_size

    size = level_size("S1")
    s1 = VertebraModel("S1", label_from_level("S1"), size, 30.0, 28.0, 28.0, 48.0, 50.0)
    for seed in range(10):
        path = sacral_path(s1, np.random.default_rng(seed), 1.0)
        points = np.array([p for p, _ in path])
        steps = np.diff(points[:, 1:], axis=0)  # (u posterior, t superior) per segment
        headings = np.degrees(np.arctan2(steps[:, 0], -steps[:, 1]))
        assert np.all(np.diff(headings) <= 1e-9)  # every junction turns the line forwards (anterior concavity)
        assert headings[0] >= -5.0 and headings[-1] < headings[0] - 25.0
        radii = np.array([r for _, r in path])
        assert np.allclose(radii / 48.0, SACRAL_HALF_DEPTH)


def test_pelvis_in_front_of_the_sacrum_holds_bowel_gas_or_fluid(cases):
    case = cases["curved"]
    s1 = np.asarray(case.truth.input["synthetic"]["s1_keypoints_lps"])
    ct = sitk.GetArrayFromImage(case.ct)
    z_index = int(round((s1[:, 2].mean() - 40.0 - case.ct.GetOrigin()[2]) / case.ct.GetSpacing()[2]))
    y_front = int(round((s1[:, 1].min() - case.ct.GetOrigin()[1]) / case.ct.GetSpacing()[1]))
    front = ct[z_index, :y_front, :]
    # 40 mm below S1, in front of it: soft tissue, fat, and bowel content, not an empty uniform organ
    assert front.std() > 40.0
