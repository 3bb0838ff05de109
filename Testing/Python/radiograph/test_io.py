"""read_radiograph / is_radiograph on real files written here: PNG (grey, RGB, with and without
pHYs), JPEG, DICOM with PixelSpacing / ImagerPixelSpacing / MONOCHROME1, NIfTI volumes."""

import numpy as np
import pytest
import SimpleITK as sitk

from VertebralFractureLib.io.images import ImageReadError
from VertebralFractureLib.radiograph.reading import _dicom_spacing, bone_bright, is_radiograph, read_radiograph
from VertebralFractureLib.validation import InputError


def _picture(rows=40, cols=50):
    return (np.arange(rows * cols).reshape(rows, cols) % 251).astype(np.uint8)


def test_png_with_physical_size_gives_spacing(tmp_path):
    image = sitk.GetImageFromArray(_picture())
    image.SetSpacing((0.7, 0.7))
    sitk.WriteImage(image, str(tmp_path / "a.png"))
    array, spacing = read_radiograph(tmp_path / "a.png")
    assert array.shape == (40, 50) and array.dtype == np.float32
    assert array[1, 2] == _picture()[1, 2]
    assert spacing == pytest.approx((0.7, 0.7), abs=1e-3)


def test_png_without_physical_size_has_unknown_spacing(tmp_path):
    from skimage.io import imsave

    imsave(tmp_path / "b.png", _picture(), check_contrast=False)
    _, spacing = read_radiograph(tmp_path / "b.png")
    assert spacing is None


def test_rgb_png_and_jpeg_become_grey(tmp_path):
    from skimage.io import imsave

    rgb = np.stack([_picture(), _picture() // 2, np.zeros((40, 50), np.uint8)], axis=-1)
    imsave(tmp_path / "c.png", rgb, check_contrast=False)
    array, _ = read_radiograph(tmp_path / "c.png")
    assert array.shape == (40, 50)
    assert array[3, 7] == pytest.approx((int(_picture()[3, 7]) + int(_picture()[3, 7] // 2)) / 3)
    assert is_radiograph(tmp_path / "c.png")
    imsave(tmp_path / "d.jpg", _picture(), check_contrast=False)
    array, spacing = read_radiograph(tmp_path / "d.jpg")
    assert array.shape == (40, 50) and spacing is None


def _dicom(path, tags):
    image = sitk.GetImageFromArray(_picture().astype(np.uint16))
    for key, value in tags.items():
        image.SetMetaData(key, value)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    writer.SetFileName(str(path))
    writer.Execute(image)


def test_dicom_pixel_spacing_is_row_then_column(tmp_path):
    _dicom(tmp_path / "a.dcm", {"0028|0030": "0.15\\0.2", "0008|0060": "DX"})
    array, spacing = read_radiograph(tmp_path / "a.dcm")
    assert array.shape == (40, 50)
    assert spacing == pytest.approx((0.2, 0.15))  # (column_mm, row_mm)
    assert is_radiograph(tmp_path / "a.dcm")


class _Header:
    def __init__(self, tags):
        self.tags = tags

    def HasMetaDataKey(self, key):  # noqa: N802 (SimpleITK's spelling)
        return key in self.tags

    def GetMetaData(self, key):  # noqa: N802
        return self.tags[key]


def test_imager_pixel_spacing_is_the_fallback():
    assert _dicom_spacing(_Header({"0018|1164": "0.143\\0.15"})) == pytest.approx((0.15, 0.143))
    assert _dicom_spacing(_Header({"0028|0030": "0.1\\0.1", "0018|1164": "0.143\\0.15"})) == pytest.approx((0.1, 0.1))
    assert _dicom_spacing(_Header({"0028|0030": "garbage"})) is None


def test_monochrome1_is_inverted_monochrome2_kept():
    picture = _picture().astype(np.float32)
    inverted = bone_bright(picture, _Header({"0028|0004": "MONOCHROME1 "}))
    assert inverted[0, 0] == pytest.approx(picture.max() + picture.min() - picture[0, 0])
    assert bone_bright(picture, _Header({"0028|0004": "MONOCHROME2"})) is picture


def test_volumes_and_single_slices(tmp_path):
    volume = sitk.GetImageFromArray(np.zeros((20, 30, 30), np.int16))
    sitk.WriteImage(volume, str(tmp_path / "ct.nii.gz"))
    single = sitk.GetImageFromArray(_picture()[None].astype(np.int16))
    single.SetSpacing((0.5, 0.4, 3.0))
    sitk.WriteImage(single, str(tmp_path / "one.nii.gz"))
    assert not is_radiograph(tmp_path / "ct.nii.gz")
    assert not is_radiograph(tmp_path)  # a folder is a DICOM series (CT)
    assert is_radiograph(tmp_path / "one.nii.gz")
    array, spacing = read_radiograph(tmp_path / "one.nii.gz")
    assert array.shape == (40, 50) and spacing == pytest.approx((0.5, 0.4))
    with pytest.raises(InputError, match="20 slices"):
        read_radiograph(tmp_path / "ct.nii.gz")


def test_arrays_and_images():
    assert is_radiograph(np.zeros((64, 64)))
    assert is_radiograph(np.zeros((64, 64, 3)))
    assert not is_radiograph(np.zeros((10, 64, 64)))
    assert is_radiograph(sitk.Image(64, 64, sitk.sitkUInt8))
    assert not is_radiograph(sitk.Image(64, 64, 20, sitk.sitkInt16))


def test_missing_and_corrupt_files(tmp_path):
    assert not is_radiograph(tmp_path / "nothing.png")
    with pytest.raises(ImageReadError, match="no such file"):
        read_radiograph(tmp_path / "nothing.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(ImageReadError, match="bad.png: cannot read this image"):
        read_radiograph(tmp_path / "bad.png")
