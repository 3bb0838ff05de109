"""The image's noise against a measured height loss: :mod:`VertebralFractureLib.quality.noise` and the gate's rule."""

import numpy as np
import SimpleITK as sitk
from testdata import real

from VertebralFractureLib.io.images import geometry_of, read_image, to_canonical
from VertebralFractureLib.keypoints.refine import reading_ct, refine_on_ct
from VertebralFractureLib.quality.noise import NOISE_DRAWS, confirm_factor, noise_sd, remeasured_heights

# L3 of the real sample CT (keypoints measured on the image, test_gate.py)
SAMPLE_L3 = [[2.6, -158.9, 332.3], [2.4, -162.8, 303.5], [2.7, -141.6, 328.9], [2.4, -145.1, 303.5],
             [3.0, -123.9, 328.7], [2.4, -128.0, 300.6]]


def _noisy(image, sigma: float, seed: int):
    noisy = sitk.AdditiveGaussianNoise(sitk.Cast(image, sitk.sitkFloat32), sigma, 0.0, seed)
    return sitk.Cast(noisy, image.GetPixelID())


def test_noise_sd_reads_white_noise_and_not_the_edges_or_a_ramp():
    k, j, i = np.mgrid[0:6, 0:96, 0:96]
    body = np.where((j - 48) ** 2 + (i - 48) ** 2 < 20 ** 2, 400.0, 0.0)  # a bone disc on soft tissue
    scene = body + 3.0 * i + 1.0 * j  # and a ramp
    assert noise_sd(scene) < 0.5
    rng = np.random.default_rng(3)
    for sigma in (10.0, 40.0):
        assert abs(noise_sd(scene + rng.normal(0.0, sigma, scene.shape)) - sigma) < 0.08 * sigma


def test_a_body_is_measured_again_on_copies_that_carry_the_image_s_noise():
    canonical = to_canonical(read_image(real("totalsegmentator", "example_ct.nii.gz")))
    volume, geometry = sitk.GetArrayFromImage(canonical), geometry_of(canonical)
    start = np.array(SAMPLE_L3)
    measured = refine_on_ct(reading_ct((volume, geometry), start), start)
    direct = np.linalg.norm(measured[0::2] - measured[1::2], axis=1)
    again, sigma = remeasured_heights(volume, geometry, start)
    assert len(again) == NOISE_DRAWS and 10.0 < sigma < 40.0  # a 3 mm soft-kernel CT: about 20 HU
    assert np.all(np.abs(np.median(again, axis=0) - direct) < 1.5)  # the same body, measured the same way
    same, _ = remeasured_heights(volume, geometry, start)
    np.testing.assert_array_equal(same, again)  # a fixed seed: the same verdict on every run
    louder, louder_sigma = remeasured_heights(volume, geometry, start, sigma=4 * sigma)
    assert louder_sigma == 4 * sigma and np.std(louder, axis=0).mean() > 1.5 * np.std(again, axis=0).mean()


def test_a_box_too_small_to_measure_its_noise_is_not_copied_and_the_grade_says_why():
    """A body at the edge of the image whose box is under 3 x 3 voxels across: no noise SD, so no copy is made, and
    a grade measured on it is withheld with that reason (it printed "nan HU" before 2026-12-07)."""
    from VertebralFractureLib.geometry import ImageGeometry
    from VertebralFractureLib.quality.stage import withhold_losses_within_noise
    from VertebralFractureLib.schema import SpineResult, Vertebra
    from VertebralFractureLib.verdict import UNCONFIRMED_GRADE_KEY

    volume = np.full((40, 2, 60), 300.0, dtype=np.float32)  # two voxels deep: the body's box cannot be wider
    geometry = ImageGeometry((60, 2, 40), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3))
    start = np.array([[10.0, 0.5, 30.0], [10.0, 0.5, 10.0], [25.0, 0.5, 30.0], [25.0, 0.5, 10.0],
                      [40.0, 0.5, 30.0], [40.0, 0.5, 10.0]])
    again, sigma = remeasured_heights(volume, geometry, start)
    assert again.shape == (0, 3) and not np.isfinite(sigma)
    wedge = start.copy()
    wedge[0, 2] = 20.0  # anterior height 10 of 20 mm: G 0.5, grade 3
    result = SpineResult([Vertebra("L1", wedge.mean(axis=0), wedge)])
    assert result.vertebra("L1").measure.grade == 3
    withhold_losses_within_noise(result, volume, geometry, {"L1": start})
    l1 = result.vertebra("L1")
    assert l1.status == "not_assessed" and "could not be measured" in l1.status_reason
    assert "nan" not in l1.status_reason and l1.extra[UNCONFIRMED_GRADE_KEY] == 3


def test_confirm_factor_is_student_s_t_at_99_percent():
    assert abs(confirm_factor(16) - 2.602) < 0.01 and abs(confirm_factor(6) - 3.365) < 0.01


def test_a_normal_real_body_read_over_the_threshold_by_the_noise_is_not_graded():
    """The real sample CT with 40 HU of added noise (seed 2, as ``bench_real_variants.py noise40`` adds it with seed
    7): its L4, normal for both readers (G 0.82) and 0.80 on the clean scan, was graded 2 (G 0.74). Re-measured on
    copies with as much noise again, the loss spreads over the threshold: withheld, the grade kept as unconfirmed."""
    from VertebralFractureLib.pipeline import AnalysisOptions, analyze
    from VertebralFractureLib.verdict import UNCONFIRMED_GRADE_KEY

    image = _noisy(read_image(real("totalsegmentator", "example_ct.nii.gz")), 40.0, 2)
    result = analyze(image, AnalysisOptions(extra_stages=())).result
    l4 = result.vertebra("L4")
    assert l4.status == "not_assessed" and "noise" in l4.status_reason, l4.status_reason
    assert l4.extra[UNCONFIRMED_GRADE_KEY] == 2 and l4.verdict()[0] == "not assessed"
    assert all(v.measure.grade == 0 for v in result.vertebrae if v.assessed)
    assert sum(v.assessed for v in result.vertebrae) >= 3  # L2, L3, L5 still measured
