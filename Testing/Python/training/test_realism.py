"""The realism measures (VertebralFractureLib.training.realism) on constructed volumes with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from scipy.special import erfc

from VertebralFractureLib.training.realism import (
    RISE_PER_SIGMA,
    Body,
    Volume,
    air_fraction,
    body_edges,
    contrast_fraction,
    cortical_p99,
    disc_values,
    edge_rise_mm,
    fat_values,
    homogeneous_mask,
    measure_case,
    muscle_values,
    noise_sd,
    nps_centroid_x,
    sphere_values,
    spine_offset,
    volume_from_image,
)


def _volume(array: np.ndarray, spacing: float, origin) -> Volume:
    return Volume(np.asarray(array, np.float32), np.asarray(origin, float), np.full(3, float(spacing)))


def _grid(x_mm, y_mm, z_mm, spacing):
    """A zero volume covering the given LPS ranges and its coordinates."""
    nx, ny, nz = (int(round((r[1] - r[0]) / spacing)) + 1 for r in (x_mm, y_mm, z_mm))
    volume = _volume(np.zeros((nz, ny, nx)), spacing, (x_mm[0], y_mm[0], z_mm[0]))
    return volume, volume.coordinates()


def _body_keypoints(half_depth: float, half_height: float) -> np.ndarray:
    """Genant keypoints of a box body centred at the origin (anterior = -y, superior = +z)."""
    a, h = half_depth, half_height
    return np.array([[0, -a, h], [0, -a, -h], [0, 0, h], [0, 0, -h], [0, a, h], [0, a, -h]], float)


@pytest.mark.parametrize("sigma", [0.6, 1.0, 2.0])
def test_an_erfc_step_falls_over_2_563_sigma(sigma):
    step = 0.05
    s = np.arange(0, 30, step)
    profile = 40.0 + 300.0 * 0.5 * erfc((s - 12.0) / (np.sqrt(2) * sigma))
    assert edge_rise_mm(profile, step, (5.0, 14.0), reach_mm=20.0) == pytest.approx(RISE_PER_SIGMA * sigma, rel=0.01)


def test_a_flat_or_low_profile_has_no_edge():
    assert np.isnan(edge_rise_mm(np.full(200, 50.0), 0.1, (2.0, 10.0)))
    s = np.arange(0, 20, 0.1)
    low_step = 40.0 + 60.0 * 0.5 * erfc((s - 8.0) / np.sqrt(2))
    assert np.isnan(edge_rise_mm(low_step, 0.1, (2.0, 10.0)))
    leaving = np.where(s < 9.0, 300.0, np.nan)  # leaves the image before the fall ends
    assert np.isnan(edge_rise_mm(leaving, 0.1, (2.0, 8.0)))


def test_the_edges_of_a_blurred_box_body_in_3d():
    sigma = 1.2
    volume, (x, y, z) = _grid((-40, 40), (-45, 40), (-40, 40), 0.5)
    inside = (np.abs(x) <= 20) & (np.abs(y) <= 15) & (np.abs(z) <= 12)
    volume.array[:] = np.where(inside, 250.0, 40.0)
    volume.array[:] = gaussian_filter(volume.array, sigma / 0.5)
    body = Body("L1", np.zeros(3), _body_keypoints(15.0, 12.0))
    edges = body_edges(volume, [body], 0)
    expected = RISE_PER_SIGMA * sigma
    assert edges["anterior"][0] == pytest.approx(expected, rel=0.03)
    assert edges["endplate"] == pytest.approx([expected, expected], rel=0.03)
    assert body_edges(volume, [Body("L1", np.zeros(3))], 0) == {"anterior": [], "endplate": []}


def test_a_sharper_scanner_gives_a_shorter_edge():
    measured = []
    for sigma in (0.7, 1.5):
        volume, (x, y, z) = _grid((-30, 30), (-35, 30), (-30, 30), 0.5)
        volume.array[:] = gaussian_filter(
            np.where((np.abs(x) <= 18) & (np.abs(y) <= 14) & (np.abs(z) <= 11), 300.0, 40.0).astype(np.float32),
            sigma / 0.5,
        )
        measured.append(body_edges(volume, [Body("T8", np.zeros(3), _body_keypoints(14.0, 11.0))], 0)["anterior"][0])
    assert measured[0] < measured[1]
    assert measured[1] / measured[0] == pytest.approx(1.5 / 0.7, rel=0.05)


def test_white_noise_is_measured_by_the_median_residual():
    rng = np.random.default_rng(1)
    shape = (40, 60, 60)
    _, _, zz = np.meshgrid(np.arange(shape[1]), np.arange(shape[0]), np.arange(shape[2]))
    ramp = 50.0 + 0.5 * zz  # a gentle gradient: the median of a linear field is its centre value
    muscle = _volume(ramp + rng.normal(0, 20, shape), 1.0, (0, 0, 0))
    fat = _volume(-100.0 + rng.normal(0, 15, shape), 1.0, (0, 0, 0))
    # white noise of SD s leaves a residual of SD 0.99 s after a 3x3x3 median (var = s^2 (1 + pi/54 - 2/27))
    factor = np.sqrt(1 + np.pi / 54 - 2 / 27)
    assert noise_sd(muscle, homogeneous_mask(muscle, (10.0, 90.0))) == pytest.approx(20.0 * factor, rel=0.02)
    assert noise_sd(fat, homogeneous_mask(fat, (-150.0, -50.0))) == pytest.approx(15.0 * factor, rel=0.02)
    assert homogeneous_mask(fat, (10.0, 90.0)).sum() == 0


def test_the_noise_power_spectrum_centroid_tells_white_from_blurred_noise():
    rng = np.random.default_rng(2)
    white = rng.normal(0, 20, (30, 40, 64)).astype(np.float32)
    blurred = gaussian_filter(white, 1.0)
    mask = np.ones(white.shape, bool)
    white_centroid = nps_centroid_x(_volume(white, 1.0, (0, 0, 0)), mask)
    assert white_centroid == pytest.approx(0.57, abs=0.03)
    assert nps_centroid_x(_volume(blurred, 1.0, (0, 0, 0)), mask) < 0.3
    assert np.isnan(nps_centroid_x(_volume(white, 1.0, (0, 0, 0)), np.zeros(white.shape, bool)))


def test_hu_samples_by_tissue():
    volume, (x, y, z) = _grid((-100, 100), (-100, 100), (-30, 30), 1.0)
    r = np.sqrt(x**2 + y**2 + z**2)
    a = volume.array
    a[:] = 50.0  # muscle
    a[np.broadcast_to(np.abs(x) > 55, a.shape)] = -100.0  # fat beyond 55 mm left and right
    a[np.broadcast_to(r <= 13, a.shape)] = 1000.0  # cortex
    a[np.broadcast_to(r <= 12, a.shape)] = 150.0  # cancellous
    centroid = np.zeros(3)
    cancellous = sphere_values(volume, centroid, 5.0)
    assert np.all(cancellous == 150.0) and cancellous.size == np.count_nonzero(r <= 5.0)
    assert np.all(muscle_values(volume, centroid) == 50.0) and muscle_values(volume, centroid).size > 1000
    assert np.all(fat_values(volume, centroid) == -100.0) and fat_values(volume, centroid).size > 1000
    assert cortical_p99(volume, centroid) == 1000.0
    assert cortical_p99(volume, (500.0, 0.0, 0.0)) != cortical_p99(volume, (500.0, 0.0, 0.0))  # outside: nan
    # a voxel grid coarser than the sphere still gives the nearest voxel
    assert sphere_values(volume, (0.3, 0.2, 0.1), 0.2).tolist() == [150.0]


def test_disc_sample_between_two_centroids():
    volume, (x, y, z) = _grid((-30, 30), (-30, 30), (-30, 30), 1.0)
    volume.array[:] = np.where((np.abs(z) <= 2) & (x**2 + y**2 <= 100), 90.0, 200.0)
    values = disc_values(volume, (0, 0, 12), (0, 0, -12))
    assert values.size > 100 and np.all(values == 90.0)
    # thick slices: the sample keeps the disc's own slice
    thick = _volume(np.full((21, 61, 61), 200.0), 1.0, (-30, -30, -30))
    thick.spacing = np.array([1.0, 1.0, 3.0])
    thick.array[10] = 90.0  # the slice at z = 0
    values = disc_values(thick, (0, 0, 12), (0, 0, -12))
    assert values.size > 50 and np.all(values == 90.0)


def test_contrast_air_and_spine_position():
    volume, (x, y, z) = _grid((-100, 99), (-80, 79), (-20, 19), 1.0)
    a = volume.array
    a[:] = 40.0
    a[np.broadcast_to(y > 60, a.shape)] = -1000.0  # air behind the patient: 19 of 160 rows
    vessel = (x - 50) ** 2 + (y + 40) ** 2 <= 100  # a contrast-filled tube along z, 10 mm radius
    a[np.broadcast_to(vessel, a.shape)] = 250.0
    bone = (x + 40) ** 2 + (y + 0) ** 2 + z**2
    a[np.broadcast_to(bone <= 144, a.shape)] = 900.0  # a bone 40 mm right: cortex around 250 HU marrow
    a[np.broadcast_to(bone <= 100, a.shape)] = 250.0
    a[np.broadcast_to(x**2 + y**2 + z**2 <= 64, a.shape)] = 250.0  # a vertebral body without a bright cortex
    fraction, mask = contrast_fraction(volume, [np.zeros(3)])
    assert fraction == pytest.approx(np.broadcast_to(vessel, a.shape).mean(), rel=0.1)
    assert not mask[20, 80, 100] and not mask[20, 80, 60] and mask[20, 40, 150]
    assert air_fraction(volume) == pytest.approx(19 / 160)
    lr, ap = spine_offset(volume, [(0.0, 0.0, 10.0), (0.0, 0.0, -10.0)])
    assert lr == pytest.approx(0.5 / 200) and ap == pytest.approx(0.5 / 160)
    lr, ap = spine_offset(volume, [(20.0, 32.0, 0.0)])
    assert lr == pytest.approx(20.5 / 200) and ap == pytest.approx(32.5 / 160)


def test_images_in_any_axis_order_are_turned_to_lps():
    import SimpleITK as sitk

    array = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((1.0, 2.0, 3.0))
    image.SetOrigin((10.0, 20.0, 30.0))
    image.SetDirection((-1, 0, 0, 0, -1, 0, 0, 0, 1))  # RAS-like
    volume = volume_from_image(image)
    assert np.allclose(volume.spacing, (1.0, 2.0, 3.0))
    for index in ((0, 0, 0), (5, 4, 3), (2, 1, 0)):
        point = np.array(image.TransformIndexToPhysicalPoint(index))
        k, j, i = np.round(volume.index(point)).astype(int)
        assert volume.array[k, j, i] == image[index]
    image.SetDirection((np.cos(0.3), -np.sin(0.3), 0, np.sin(0.3), np.cos(0.3), 0, 0, 0, 1))
    with pytest.raises(ValueError, match="oblique"):
        volume_from_image(image)


def test_measure_case_collects_every_measure():
    rng = np.random.default_rng(3)
    volume, (x, y, z) = _grid((-90, 90), (-60, 102), (-51, 51), 1.5)
    a = volume.array
    a[:] = 50.0
    a[np.broadcast_to(np.abs(x) > 70, a.shape)] = -100.0
    bodies = []
    for label, zc in (("L1", 30.0), ("L2", 0.0), ("L3", -30.0)):
        inside = (np.abs(x) <= 20) & (np.abs(y) <= 15) & (np.abs(z - zc) <= 11)
        a[np.broadcast_to(inside, a.shape)] = 180.0
        bodies.append(Body(label, np.array([0.0, 0.0, zc]), _body_keypoints(15.0, 11.0) + [0, 0, zc]))
    a[:] = gaussian_filter(a, 1.0 / 1.5) + rng.normal(0, 10, a.shape)
    result = measure_case("boxes", volume, bodies)
    assert np.median(result.hu["cancellous"]) == pytest.approx(180.0, abs=5)
    assert np.median(result.hu["disc"]) == pytest.approx(50.0, abs=5)  # 8 mm gaps of "muscle"
    assert np.median(result.hu["muscle"]) == pytest.approx(50.0, abs=3)
    assert np.median(result.hu["fat"]) == pytest.approx(-100.0, abs=3)
    assert result.noise["muscle"] == pytest.approx(10 * 0.99, rel=0.08)
    assert len(result.edges["anterior"]) == 3 and len(result.edges["endplate"]) == 6
    # 1.5 mm voxels: the voxel (spacing^2 / 12) and the trilinear interpolation (about spacing^2 / 6) add to the
    # variance of the 1 mm blur
    expected = RISE_PER_SIGMA * np.sqrt(1.0 + 1.5**2 / 4)
    assert np.nanmedian(result.edges["anterior"]) == pytest.approx(expected, rel=0.1)
    assert np.nanmedian(result.edges["endplate"]) == pytest.approx(expected, rel=0.1)
    assert result.anatomy["contrast"] == 0.0 and result.anatomy["air"] == 0.0
    masked = measure_case("bone only", volume, bodies, soft_tissue=False, edges=False, anatomy=False)
    assert masked.noise == {} and masked.edges == {} and masked.anatomy == {} and masked.hu["muscle"].size == 0
