"""End-plate refinement: keypoints follow a depressed (biconcave-like) end plate; on a real CT they return to the
endplates of its vertebra mask."""

import functools
from pathlib import Path

import numpy as np
import pytest

from VertebralFractureLib.keypoints.refine import OFFSET_MM, refine_endplates, refine_on_ct, steepest_fall
from VertebralFractureLib.training.keypoints.targets import genant_of


def test_middle_points_follow_a_depressed_end_plate():
    image = np.zeros((80, 60), dtype=np.float32)
    image[20:45, 10:41] = 1.0  # body rows 20-44 (edges at 19.5 and 44.5), columns 10-40
    image[20:26, 20:31] = 0.0  # superior end plate depressed by 6 mm in the middle
    # detector-like guess: a normal box, 2 mm off everywhere
    guess = np.array([[11.0, 22.0], [11.0, 42.0], [25.0, 22.0], [25.0, 42.0], [39.0, 22.0], [39.0, 42.0]])
    refined = refine_endplates(image, guess)
    np.testing.assert_allclose(refined[:, 0], guess[:, 0])  # columns kept
    np.testing.assert_allclose(refined[[0, 4], 1], 19.5 + OFFSET_MM, atol=0.3)  # corners on the edge
    np.testing.assert_allclose(refined[2, 1], 25.5 + OFFSET_MM, atol=0.3)  # middle follows the depression
    np.testing.assert_allclose(refined[1::2, 1], 44.5 - OFFSET_MM, atol=0.3)  # inferior end plate
    g_guess, g_refined = genant_of(guess[None])[0], genant_of(refined[None])[0]
    assert g_guess == 1.0 and g_refined < 0.75  # now a moderate deformity
    # batch input keeps its shape
    assert refine_endplates(image, np.stack([guess, guess])).shape == (2, 6, 2)


# ---------------------------------------------------------------------------------------------- on the real CT
TPTBOX = Path(__file__).resolve().parents[2] / "Data" / "real" / "tptbox"


@functools.cache
def _tptbox():
    """The TPTBox CT (1.5 mm) and the six L3 keypoints measured from its vertebra mask (reference file)."""
    import SimpleITK as sitk

    from VertebralFractureLib.training.real.reference import load_case

    reference = load_case("tptbox_L3")
    truth = next(v for v in reference.vertebrae if v.label == "L3").keypoints
    return sitk.ReadImage(str(TPTBOX / "sub-ct_label-22_ct.nii.gz")), truth


def _frame(points):
    p = points[4:6].mean(0) - points[0:2].mean(0)
    p /= np.linalg.norm(p)
    s = points[0::2].mean(0) - points[1::2].mean(0)
    s -= s.dot(p) * p
    return p, s / np.linalg.norm(s)


@pytest.mark.parametrize("shift_mm", [3.0, -3.0, 5.0])
def test_refined_points_return_to_the_mask_endplates_of_a_real_ct(shift_mm):
    image, truth = _tptbox()
    p, s = _frame(truth)
    # a detector-like error: every endplate point shift_mm off along the body axis (superior points
    # outwards when positive, the inferior ones inwards) and the columns 2 mm anterior
    sign = np.where(np.arange(6) % 2 == 0, 1.0, -1.0)[:, None]
    guess = truth + shift_mm * sign * s + (-2.0 * p)
    refined = refine_on_ct(image, guess)
    along_axis = (refined - truth) @ s
    across = (refined - truth) @ p
    # on average within 1.5 mm (one voxel of this CT) of the mask's endplate, every point within 2.5 mm: the
    # anterior-inferior corner of this L3 carries a rim lip that the image edge follows 2 mm below the mask
    assert np.abs(along_axis).mean() <= 1.5, along_axis
    assert np.abs(along_axis).max() <= 2.5, along_axis
    assert np.abs(across).mean() <= 1.5, across
    assert np.abs(across).max() <= 2.5, across
    assert np.abs(np.abs((guess - truth) @ s)).min() >= abs(shift_mm) - 1e-6  # the guess really was off


def test_heights_and_g_of_the_refined_points_match_the_mask():
    from VertebralFractureLib.genant import heights

    image, truth = _tptbox()
    p, s = _frame(truth)
    sign = np.where(np.arange(6) % 2 == 0, 1.0, -1.0)[:, None]
    refined = refine_on_ct(image, truth - 3.0 * sign * s)  # a box 6 mm too short
    assert np.abs(heights(refined) - heights(truth)).mean() <= 1.5  # the height-error target
    assert heights(refined).max() - heights(truth - 3.0 * sign * s).max() >= 4.0  # the 6 mm were recovered
    g = heights(refined).min() / heights(refined).max()
    g_true = heights(truth).min() / heights(truth).max()
    assert abs(g - g_true) <= 0.05


def test_steepest_fall_is_sub_sample_and_respects_polarity_and_window():
    positions = np.arange(0.0, 20.0, 0.25)
    # a bone (400 HU) / disc (80 HU) step at 10.1 mm, blurred like a 1 mm voxel
    from scipy.special import erf

    profile = 80 + 320 * 0.5 * (1 - erf((positions - 10.1) / (np.sqrt(2) * 0.6)))
    assert steepest_fall(positions, profile, +1.0, 9.0, 4.0, 0.5) == pytest.approx(10.1, abs=0.05)
    assert steepest_fall(positions, profile, -1.0, 9.0, 4.0, 0.5) is None  # wrong polarity: a rise
    assert steepest_fall(positions, profile, +1.0, 3.0, 4.0, 0.5) is None  # edge outside the window
    assert steepest_fall(positions, np.full_like(positions, 100.0), +1.0, 9.0, 4.0, 0.5) is None  # flat
