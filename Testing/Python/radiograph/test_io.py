"""read_radiograph / is_radiograph on real files written here: PNG (grey, RGB, with and without
pHYs), JPEG, DICOM with PixelSpacing / ImagerPixelSpacing / Estimated Radiographic Magnification
Factor / MONOCHROME1 (written with pydicom as a DX image), NIfTI volumes."""

import numpy as np
import pytest
import SimpleITK as sitk

from VertebralFractureLib.io.images import ImageReadError
from VertebralFractureLib.radiograph.reading import (
    FROM_IMAGER_AND_MAGNIFICATION,
    FROM_IMAGER_AT_DETECTOR,
    FROM_PIXEL_SPACING,
    NO_PIXEL_SIZE,
    _dicom_spacing,
    bone_bright,
    is_radiograph,
    read_radiograph,
    read_radiograph_pixel_size,
)
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


def test_the_spacing_itk_writes_when_none_was_set_is_no_pixel_size(tmp_path):
    """``GetImageFromArray`` + ``WriteImage`` puts sCAL 1 x 1 into a PNG (and 1 x 1 into a NIfTI header): not mm."""
    sitk.WriteImage(sitk.GetImageFromArray(_picture()), str(tmp_path / "export.png"))
    assert b"sCAL" in (tmp_path / "export.png").read_bytes()  # the chunk is there ...
    _, size = read_radiograph_pixel_size(tmp_path / "export.png")
    assert size.spacing is None and size.source == NO_PIXEL_SIZE  # ... and is not taken for a measurement
    sitk.WriteImage(sitk.GetImageFromArray(_picture()[None].astype(np.int16)), str(tmp_path / "slice.nii.gz"))
    assert read_radiograph_pixel_size(tmp_path / "slice.nii.gz")[1].spacing is None
    measured = sitk.GetImageFromArray(_picture())
    measured.SetSpacing((1.0, 0.8))  # a real spacing, even with one side 1 mm, is kept
    sitk.WriteImage(measured, str(tmp_path / "measured.png"))
    assert read_radiograph_pixel_size(tmp_path / "measured.png")[1].spacing == pytest.approx((1.0, 0.8), abs=1e-3)


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


@pytest.mark.parametrize(
    ("attributes", "spacing", "source"),
    [
        # Pixel Spacing (0028,0030) wins whatever else is there (PS3.3 10.7.1.3)
        ({"pixel_spacing": (0.1, 0.12)}, (0.12, 0.1), FROM_PIXEL_SPACING),
        ({"pixel_spacing": (0.1, 0.12), "imager_pixel_spacing": (0.15, 0.2), "magnification": 1.25},
         (0.12, 0.1), FROM_PIXEL_SPACING),
        # Imager Pixel Spacing at the detector / magnification SID/SOD = spacing in the patient (PS3.3 C.8.11.5)
        ({"imager_pixel_spacing": (0.15, 0.2), "magnification": 1.25}, (0.16, 0.12), FROM_IMAGER_AND_MAGNIFICATION),
        # no magnification factor: detector plane, said so
        ({"imager_pixel_spacing": (0.15, 0.2)}, (0.2, 0.15), FROM_IMAGER_AT_DETECTOR),
        # a factor below 1 (object behind the detector) is not geometry: ignored, detector plane
        ({"imager_pixel_spacing": (0.15, 0.2), "magnification": 0.5}, (0.2, 0.15), FROM_IMAGER_AT_DETECTOR),
        # nothing: heights in pixels
        ({}, None, NO_PIXEL_SIZE),
        ({"magnification": 1.2}, None, NO_PIXEL_SIZE),
    ],
)
def test_dicom_pixel_size_from_each_combination(tmp_path, dx_file, attributes, spacing, source):
    path = dx_file(tmp_path / "dx.dcm", **attributes)
    image, size = read_radiograph_pixel_size(path)
    assert image.shape == (40, 50) and size.source == source
    _, plain = read_radiograph(path)
    if spacing is None:
        assert size.spacing is None and plain is None and size.unit == "pixel"
        assert "heights in pixels" in size.note()
    else:
        assert size.spacing == pytest.approx(spacing) and plain == pytest.approx(spacing) and size.unit == "mm"
    assert size.at_detector == (source == FROM_IMAGER_AT_DETECTOR)
    if size.at_detector:
        assert "detector plane" in size.note()
    if source == FROM_IMAGER_AND_MAGNIFICATION:
        assert size.magnification == pytest.approx(1.25) and size.note() is None


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
    (tmp_path / "text.png").write_text("a note, not a picture")  # no reader knows it: SimpleITK's reason, no internals
    with pytest.raises(ImageReadError) as caught:
        read_radiograph(tmp_path / "text.png")
    assert str(caught.value) == (f"{tmp_path / 'text.png'}: cannot read this image (truncated, corrupt or not an "
                                 "image): Unable to determine ImageIO reader")


def test_a_grey_png_with_an_alpha_channel_is_read_as_its_grey(tmp_path):
    """SimpleITK reads no grey + alpha PNG (a browser's or an editor's export with transparency): Pillow does."""
    from PIL import Image

    Image.fromarray(_picture()).convert("LA").save(tmp_path / "la.png")
    Image.fromarray(_picture()).convert("P").save(tmp_path / "palette.png")
    for name in ("la.png", "palette.png"):
        array, spacing = read_radiograph(tmp_path / name)
        assert spacing is None and np.array_equal(array, _picture().astype(np.float32))
    cut = tmp_path / "cut_la.png"
    cut.write_bytes((tmp_path / "la.png").read_bytes()[:60])
    with pytest.raises(ImageReadError, match=r"cut_la\.png: cannot read this image \(truncated, corrupt"):
        read_radiograph(cut)  # Pillow cannot read it either: the reader's error stands


def test_a_truncated_png_is_named_in_one_line_without_the_reader_s_internals(tmp_path):
    from PIL import Image

    whole = tmp_path / "whole.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200), dtype=np.uint8)).save(whole)
    cut = tmp_path / "cut.png"
    cut.write_bytes(whole.read_bytes()[:3000])
    with pytest.raises(ImageReadError) as caught:
        read_radiograph(cut)
    message = str(caught.value)
    assert message.startswith(f"{cut}: cannot read this image") and "\n" not in message
    assert "PNGImageIO: Error while reading file" in message
    assert ".cxx" not in message and "0x" not in message and message.count(str(cut)) == 1
