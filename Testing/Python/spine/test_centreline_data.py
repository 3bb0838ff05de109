import numpy as np
import SimpleITK as sitk

from VertebralFractureLib.geometry import ImageGeometry
from VertebralFractureLib.io.images import image_from_array
from VertebralFractureLib.training.centreline.data import CachedCase, prepare_volume, slice_targets


def test_slice_targets_interpolate_the_curve_and_flag_presence():
    geometry = ImageGeometry((20, 20, 10), (3.0, 3.0, 3.0), (-30.0, -30.0, 0.0), np.eye(3))
    curve = np.array([[0.0, 0.0, 20.0], [6.0, -3.0, 8.0]])  # z 8 .. 20
    targets, present = slice_targets(curve, geometry, 10)
    z = np.arange(10) * 3.0
    assert np.array_equal(present, ((z >= 8) & (z <= 20)).astype(np.float32))
    # slice k = 4 (z = 12): x = 4, y = -2 -> i = (4 + 30) / 3, j = (-2 + 30) / 3
    assert np.allclose(targets[4], [28 / 3, 34 / 3], atol=1e-5)
    _, with_margin = slice_targets(curve, geometry, 10, end_margin_mm=3.0)
    assert with_margin.sum() == present.sum() + 2


def test_prepare_volume_is_orientation_independent():
    rng = np.random.default_rng(0)
    array = rng.integers(-1000, 1500, size=(30, 24, 20)).astype(np.int16)
    image = image_from_array(array, ImageGeometry((20, 24, 30), (1.5, 1.5, 1.0), (-15.0, -18.0, 5.0), np.eye(3)))
    lps, geometry = prepare_volume(image)
    ras, geometry_ras = prepare_volume(sitk.DICOMOrient(image, "RAS"))
    assert lps.dtype == np.int16 and geometry.spacing == (3.0, 3.0, 3.0)
    assert np.allclose(geometry.direction, np.eye(3)) and np.allclose(geometry_ras.direction, np.eye(3))
    assert np.allclose(geometry.origin, geometry_ras.origin, atol=1e-4)
    assert np.abs(lps.astype(int) - ras.astype(int)).max() <= 1
    # box averaging: the mean intensity is kept
    assert abs(float(lps.mean()) - float(array.mean())) < 30


def test_cached_case_round_trip(tmp_path):
    geometry = ImageGeometry((4, 5, 6), (3.0, 3.0, 3.0), (1.0, 2.0, 3.0), np.eye(3))
    case = CachedCase(np.zeros((6, 5, 4), np.int16), geometry, np.zeros((3, 3)), np.ones((2, 3)),
                      np.array([0, 2]), ["L1", "L2"], "x")  # fmt: skip
    loaded = CachedCase.load(case.save(tmp_path / "x.npz"))
    assert loaded.geometry.same_grid(geometry)
    assert loaded.labels == ["L1", "L2"] and loaded.name == "x" and loaded.grades.tolist() == [0, 2]


def test_hospital_cases_are_cached_under_their_own_name(tmp_path):
    """``train centreline --realism hospital``: the generator's hospital profile, never mixed with a v1 file."""
    from VertebralFractureLib.training.centreline.data import build_synthetic_cache

    seed = 1  # preset "chest" (SYNTH_PRESETS[1]): the heart is in the field of view
    [plain] = build_synthetic_cache([seed], tmp_path, log=None)
    [hospital] = build_synthetic_cache([seed], tmp_path, log=None, realism="hospital")
    assert plain.name == "synth-chest-00001.npz" and hospital.name == "synth-chest-00001-hospital.npz"
    v1, hosp = CachedCase.load(plain), CachedCase.load(hospital)
    assert v1.labels == hosp.labels  # the same levels in view (the hospital profile also varies the patient size)
    # the same seed drawn with the hospital profile (its own noise, kernels, organs, patient size): a different CT
    assert v1.hu.shape != hosp.hu.shape or np.abs(v1.hu.astype(int) - hosp.hu.astype(int)).mean() > 5
