from pathlib import Path

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


def _real_ct(relative: str):
    from pathlib import Path

    import SimpleITK as sitk

    from VertebralFractureLib.io.images import geometry_of

    image = sitk.ReadImage(str(Path(__file__).resolve().parents[1] / "Data" / "real" / relative))
    return sitk.GetArrayFromImage(image), geometry_of(image)


def test_a_masked_ct_is_refused_with_its_fill_value_and_real_cts_pass():
    """The real VerSe crop is masked to the bone (92 % of voxels exactly 0); real unmasked CTs are not refused."""
    array, geometry = _real_ct("verse004_L2_crop/sub-verse004_0000_vertebra_21_im.nii.gz")
    with pytest.raises(InputError, match=r"crop\.nii\.gz: 92% of the voxels hold exactly 0: the CT looks masked"):
        check_ct(array, geometry, "crop.nii.gz")
    ct, geometry = _real_ct("tptbox/sub-ct_label-22_ct.nii.gz")
    assert check_ct(ct, geometry, "tptbox.nii.gz").hu_min == -1030
    # the same real crop masked to its bone and shifted like the VerSe crop's calibration (its bone reaches -250)
    masked = np.where(ct > 200, ct - 450, 0)
    with pytest.raises(InputError, match="looks masked"):
        check_ct(masked, geometry, "tptbox_masked.nii.gz")
    padded = np.where(ct > 200, ct, -1024)  # a large fill at air / padding values is not called a mask
    assert check_ct(padded, geometry).hu_max == ct.max()


def test_the_pipeline_refuses_a_ct_masked_to_more_than_one_vertebra_before_any_model_runs(tmp_path):
    """A CT masked to one vertebra is measured (Testing/Python/shape/test_masked_ct.py); masked to several, refused."""
    import SimpleITK as sitk

    from VertebralFractureLib.pipeline import analyze

    real = Path(__file__).resolve().parents[1] / "Data" / "real"
    ct = sitk.ReadImage(str(real / "tptbox" / "sub-ct_label-22_ct.nii.gz"))
    array = sitk.GetArrayFromImage(ct)
    masked = sitk.GetImageFromArray(np.where(array > 200, array - 450, 0).astype(np.int16))
    masked.CopyInformation(ct)
    sitk.WriteImage(masked, str(tmp_path / "bone_only.nii.gz"))
    with pytest.raises(InputError, match=r"^bone_only\.nii\.gz: \d+% of the voxels hold exactly 0: the CT looks"):
        analyze(tmp_path / "bone_only.nii.gz")
