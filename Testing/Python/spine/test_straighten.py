import functools

import numpy as np
import pytest
import SimpleITK as sitk

from VertebralFractureLib.geometry import ImageGeometry
from VertebralFractureLib.io.images import image_from_array
from VertebralFractureLib.spine import SpineCurve, straighten


def _scoliotic_points(n=60):
    z = np.linspace(150, -150, n)
    return np.stack([30 * np.sin(z / 60), 10 * np.cos(z / 80), z], axis=1)


@functools.cache
def _tube(radius=8.0):
    return _make_tube(_scoliotic_points(), radius)


def _tube_image(points, direction=None):
    image = _tube()
    return sitk.DICOMOrient(image, direction) if direction is not None else image


def _make_tube(points, radius, spacing=(2.0, 2.0, 2.5)):
    """A bright tube (300 HU) of ``radius`` mm around the curve in a -1000 HU box."""
    size = (60, 45, 136)
    geometry = ImageGeometry(size, spacing, (-60.0, -45.0, -170.0), np.eye(3))
    k, j, i = np.meshgrid(*[np.arange(s) for s in reversed(size)], indexing="ij")
    lps = geometry.index_to_lps(np.stack([i, j, k], -1).reshape(-1, 3))
    dense = SpineCurve.from_points(points, 0.5).points
    from scipy.spatial import cKDTree

    distance, _ = cKDTree(dense).query(lps)
    array = np.where(distance < radius, 300.0, -1000.0).reshape(k.shape).astype(np.int16)
    return image_from_array(array, geometry)


def test_straight_line_reproduces_the_image_exactly():
    geometry = ImageGeometry((40, 30, 50), (1.0, 1.0, 2.0), (-20, -15, -50), np.eye(3))
    k, j, i = np.meshgrid(np.arange(50), np.arange(30), np.arange(40), indexing="ij")
    array = (i + 10 * j + 100 * k).astype(np.float32)
    result = straighten((array, geometry), np.array([[0.0, 0.0, 40.0], [0.0, 0.0, -40.0]]), 1.0, (10.0, 5.0))
    assert result.volume.shape == (81, 21, 11)
    row, col, lat = 10, 4, 3  # z = 40 - row, y = -10 + col, x = -5 + lat
    x, y, z = -5 + lat, -10 + col, 40 - row
    assert result.volume[row, col, lat] == pytest.approx((x + 20) + 10 * (y + 15) + 100 * (z + 50) / 2)
    assert np.allclose(result.mid_sagittal_to_patient([[row, col]]), [[0.0, -10 + col, 40 - row]])
    # columns run anterior -> posterior, rows superior -> inferior
    ms = result.mid_sagittal()
    assert ms[0, 1] - ms[0, 0] == pytest.approx(10.0) and ms[1, 0] - ms[0, 0] == pytest.approx(-50.0)


@pytest.mark.parametrize("direction", [None, "RAS", "PIR"])
def test_tube_is_centred_and_straight_in_any_orientation(direction):
    points = _scoliotic_points()
    image = _tube_image(points, direction=direction)
    result = straighten(image, points, spacing=1.0, half_width_mm=20.0)
    volume = result.volume
    centre = result.n_cols // 2
    inside = result.curve.points[:, 2] > -165  # rows inside the image
    assert np.all(volume[inside][:, centre, centre] > 200)
    # the tube (radius 8 mm) fills the same band of every plane: straight in both directions
    ms = result.mid_sagittal()[inside]
    width = (ms > -350).sum(axis=1)  # 16 mm diameter sampled every 1 mm (2 mm voxels)
    assert np.all(np.abs(width - 16) <= 2)
    coronal = volume[inside][:, centre, :]
    assert np.all(np.abs((coronal > -350).sum(axis=1) - 16) <= 2)


def test_round_trip_patient_straight_patient_below_half_mm_everywhere_in_the_band():
    points = _scoliotic_points()
    image = _tube_image(points)
    result = straighten(image, points, spacing=1.0, half_width_mm=40.0)
    rng = np.random.default_rng(1)
    straight = np.stack(
        [rng.uniform(-40, 40, 20000), rng.uniform(-40, 40, 20000), rng.uniform(0, result.curve.length, 20000)], 1
    )
    patient = result.to_patient(straight)
    from VertebralFractureLib.io.images import geometry_of

    in_view = geometry_of(image).contains(patient)
    assert in_view.mean() > 0.5
    back = result.to_patient(result.to_straight(patient[in_view]))
    assert np.linalg.norm(back - patient[in_view], axis=1).max() < 0.5
    assert np.abs(result.to_straight(patient) - straight).max() < 1e-6
    # and from patient points: every voxel centre of the image within the band
    geometry = geometry_of(image)
    voxels = geometry.index_to_lps(rng.uniform(0, np.asarray(geometry.size) - 1, size=(20000, 3)))
    q = result.to_straight(voxels)
    band = (np.abs(q[:, :2]) <= 40).all(axis=1) & (q[:, 2] >= 0) & (q[:, 2] <= result.curve.length)
    assert band.sum() > 1000
    assert np.linalg.norm(result.to_patient(q[band]) - voxels[band], axis=1).max() < 0.5


def test_points_beyond_the_ends_use_the_straight_extension():
    result = straighten(None, _scoliotic_points(), spacing=1.0, half_width_mm=30.0, with_volume=False)
    straight = np.array([[3.0, -4.0, -12.0], [-2.0, 5.0, result.curve.length + 9.0]])
    assert np.allclose(result.to_straight(result.to_patient(straight)), straight, atol=1e-9)
    with pytest.raises(ValueError, match="no volume"):
        result.mid_sagittal()


def test_mid_sagittal_mapping_and_inverse_agree():
    points = _scoliotic_points()
    result = straighten(_tube_image(points), points, spacing=0.8, half_width_mm=(30.0, 10.0))
    rows_cols = np.array([[10.2, 5.5], [100.0, 37.25], [250.0, 60.0]])
    patient = result.mid_sagittal_to_patient(rows_cols)
    back, lateral = result.patient_to_mid_sagittal(patient)
    assert np.allclose(back, rows_cols, atol=1e-6) and np.allclose(lateral, 0.0, atol=1e-6)
    assert np.allclose(result.mid_sagittal_to_patient(rows_cols[:, ::-1], order="col_row"), patient)
    image = result.mid_sagittal_image()
    assert image.GetSize() == (result.n_cols, result.curve.n) and image.GetSpacing() == (0.8, 0.8)
    assert result.volume_image().GetSize() == (result.n_lats, result.n_cols, result.curve.n)
    # the volume index map agrees with the straight-space map
    assert np.allclose(result.index_to_patient([[10.2, 5.5, result.n_lats // 2]]), patient[:1])


def test_synthetic_scoliosis_case_mid_sagittal_shows_every_vertebral_body():
    from VertebralFractureLib.synth import generate_case

    case = generate_case(7, preset="scoliosis", spacing=(2.0, 2.0, 2.0), radiograph=False, scoliosis_deg=35.0,
                         osteoporosis=0.0)
    result = straighten(case.ct, case.centreline, spacing=1.0, half_width_mm=40.0)
    _, lateral = result.patient_to_mid_sagittal(np.array([v.centroid for v in case.truth.vertebrae]))
    assert np.abs(lateral).max() < 1.0  # every centre lies in the mid-sagittal plane
    rows_cols, _ = result.patient_to_mid_sagittal(np.array([v.centroid for v in case.truth.vertebrae]))
    ms = result.mid_sagittal()
    values = [ms[int(round(r)), int(round(c))] for r, c in rows_cols]
    assert min(values) > 80  # bone (trabecular) at every body centre
    coords = np.argwhere(sitk.GetArrayViewFromImage(case.body_mask) > 0)[::50]
    from VertebralFractureLib.io.images import geometry_of

    lps = geometry_of(case.body_mask).index_to_lps(coords[:, ::-1].astype(float))
    back = result.to_patient(result.to_straight(lps))
    assert np.linalg.norm(back - lps, axis=1).max() < 0.5


# ---------------------------------------------------------------------------------------------- full resolution
_TPTBOX = __import__("pathlib").Path(__file__).resolve().parents[2] / "Data" / "real" / "tptbox"


def test_full_resolution_planes_are_the_original_voxels_of_a_real_ct():
    from VertebralFractureLib.io.images import geometry_of
    from VertebralFractureLib.spine.straighten import full_resolution_spacing, sample_image

    image = sitk.ReadImage(str(_TPTBOX / "sub-ct_label-22_ct.nii.gz"))  # 1.5 mm voxels
    geometry = geometry_of(image)
    array = sitk.GetArrayFromImage(image).astype(np.float32)
    assert full_resolution_spacing(geometry) == 1.0  # capped at the detector's 1 mm
    assert full_resolution_spacing(ImageGeometry((5, 5, 5), (0.56, 0.56, 3.0), (0, 0, 0), np.eye(3))) == 0.56
    # a grid point on a voxel centre gets that voxel's value exactly: no smoothing, no intermediate grid
    index = np.array([[30, 20, 40], [31, 21, 40], [50, 10, 60]])
    np.testing.assert_array_equal(sample_image(image, geometry.index_to_lps(index)),
                                  array[index[:, 2], index[:, 1], index[:, 0]])
    # a straight curve along the image's k axis through voxel centres: mid_sagittal_at reproduces the voxels
    i, j = 36, 23
    top, bottom = geometry.index_to_lps([i, j, 72]), geometry.index_to_lps([i, j, 0])
    curve = np.linspace(top, bottom, 50)
    spine = straighten(image, curve, spacing=1.0, half_width_mm=(15.0, 0.0))
    plane = spine.mid_sagittal_at(image, spacing=1.5)
    assert plane.shape[0] == 73
    posterior, _ = spine.curve.frame(np.array([0.0]))
    step = int(round(spine.half_width_ap / 1.5))
    column = array[::-1, j, i]  # rows superior -> inferior
    centre_col = step
    np.testing.assert_allclose(plane[:, centre_col], column, atol=1e-3)
    np.testing.assert_allclose(np.abs(posterior[0]), [0, 1, 0], atol=1e-6)


def test_body_plane_axes_match_the_mask_measure():
    from VertebralFractureLib.spine.straighten import body_plane
    from VertebralFractureLib.training.real.reference import load_case

    mask = sitk.ReadImage(str(_TPTBOX / "sub-ct_seg-vert_label-22_msk.nii.gz"))
    body = sitk.Cast(sitk.BinaryThreshold(mask, 22, 22), sitk.sitkFloat32)  # L3
    truth = next(v for v in load_case("tptbox_L3").vertebrae if v.label == "L3").keypoints
    p = truth[4:6].mean(0) - truth[0:2].mean(0)
    s = truth[2] - truth[3]
    centre = 0.5 * (truth[2] + truth[3])
    t = np.arange(-20.0, 20.0, 0.25)
    plane = body_plane(body, centre, p, s, np.array([0.0]), t, lateral=(-1.0, 0.0, 1.0))[:, 0]
    inside = t[plane >= 0.5]
    half = 0.5 * np.linalg.norm(truth[2] - truth[3])
    # the body occupies +-h_m/2 along its superior axis (the mask measure's 0.5 crossings), to 1 mm
    assert inside.max() == pytest.approx(half, abs=1.0) and inside.min() == pytest.approx(-half, abs=1.0)


def test_a_finer_ct_is_low_passed_before_the_grid_samples_it_and_a_coarser_one_is_not():
    """Noise of 0.5 mm voxels point-sampled every 1 mm aliases into the straightened volume (moire on a real 0.56 mm
    sharp-kernel CT); with ``anti_alias`` the finer axes are low-passed to the grid first. At or above the grid's
    spacing nothing changes."""
    rng = np.random.default_rng(3)
    curve = np.array([[0.0, 0.0, 20.0], [0.0, 0.0, -20.0]])
    fine = ImageGeometry((100, 100, 100), (0.5, 0.5, 0.5), (-25.0, -25.0, -25.0), np.eye(3))
    noise = rng.normal(0.0, 100.0, (100, 100, 100)).astype(np.float32)
    plain = straighten((noise, fine), curve, 1.0, (10.0, 10.0)).volume
    filtered = straighten((noise, fine), curve, 1.0, (10.0, 10.0), anti_alias=True).volume
    assert plain.std() > 70.0 and filtered.std() < 0.45 * plain.std()
    coarse = ImageGeometry((50, 50, 50), (1.0, 1.0, 1.0), (-25.0, -25.0, -25.0), np.eye(3))
    noise = noise[::2, ::2, ::2].copy()
    np.testing.assert_array_equal(straighten((noise, coarse), curve, 1.0, (10.0, 10.0), anti_alias=True).volume,
                                  straighten((noise, coarse), curve, 1.0, (10.0, 10.0)).volume)
