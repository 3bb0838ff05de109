import numpy as np
import pytest

from VertebralFractureLib.geometry import ImageGeometry
from VertebralFractureLib.validation import InputError, check_ct, check_radiograph


def _geometry(shape, spacing=(1.0, 1.0, 1.0)):
    return ImageGeometry(tuple(reversed(shape)), spacing, (0, 0, 0), np.eye(3))


def _ct(shape=(20, 30, 30)):
    array = np.full(shape, -1000, np.int16)
    array[:, 10:20, 10:20] = 40
    array[:, 12:16, 12:16] = 700
    return array


def test_a_plausible_ct_passes_and_thick_slices_warn():
    check = check_ct(_ct(), _geometry((20, 30, 30)))
    assert check.hu_min == -1000 and check.hu_max == 700 and check.warnings == []
    thick = check_ct(_ct(), _geometry((20, 30, 30), (0.8, 0.8, 5.0)))
    assert "thick" in thick.warnings[0]


@pytest.mark.parametrize(
    ("array", "spacing", "message"),
    [
        (np.zeros((1, 30, 30)), (1, 1, 1), "2D image"),
        (_ct((4, 30, 30)), (1, 1, 1), "fewer than 8 voxels"),
        (_ct(), (1, 1, 50), "spacing"),
        (np.full((20, 30, 30), 12.0), (1, 1, 1), "constant"),
        (np.random.default_rng(0).random((20, 30, 30)), (1, 1, 1), "normalised"),
        (np.random.default_rng(0).integers(0, 3000, (20, 30, 30)), (1, 1, 1), "MR"),
        (np.where(_ct() > 0, -50, -1000).astype(np.int16), (1, 1, 1), "no bone"),
    ],
)
def test_bad_inputs_name_the_problem(array, spacing, message):
    with pytest.raises(InputError, match=message):
        check_ct(array, _geometry(array.shape, spacing), "case.nii.gz")


def test_non_finite_values_are_refused():
    array = _ct().astype(np.float32)
    array[3, 4, 5] = np.nan
    with pytest.raises(InputError, match="NaN"):
        check_ct(array, _geometry(array.shape))


def test_radiograph_checks():
    check_radiograph(np.random.default_rng(1).random((300, 200)))
    with pytest.raises(InputError, match="3D volume"):
        check_radiograph(np.zeros((40, 300, 200)))
    with pytest.raises(InputError, match="constant"):
        check_radiograph(np.ones((300, 200)))
