import gzip
import time

import numpy as np
import pytest
import SimpleITK as sitk
from testdata import real

from VertebralFractureLib.geometry import ImageGeometry
from VertebralFractureLib.io.atomic import ExistingFileError
from VertebralFractureLib.io.images import (
    ImageReadError,
    geometry_of,
    image_from_array,
    read_image,
    resample_like,
    resample_spacing,
    to_canonical,
    write_image,
)


def rotation(a, b, c):
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rx @ ry @ rz


OBLIQUE = rotation(0.3, -0.2, 0.5)
RAS = np.diag([-1.0, -1.0, 1.0])
PIR = np.array([[0, 0, -1], [1, 0, 0], [0, -1, 0]], float)  # columns: i -> P, j -> I, k -> R


def make_image(direction, size=(7, 6, 5), spacing=(0.8, 1.3, 2.1), origin=(12.5, -40.25, 310.0), dtype=np.int16):
    geometry = ImageGeometry(size, spacing, origin, direction)
    array = np.arange(np.prod(size), dtype=dtype).reshape(tuple(reversed(size)))
    return image_from_array(array, geometry)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
@pytest.mark.parametrize("direction", [np.eye(3), RAS, PIR, OBLIQUE], ids=["LPS", "RAS", "PIR", "oblique"])
def test_volume_round_trip_keeps_geometry_and_values(tmp_path, suffix, direction):
    image = make_image(direction)
    path = write_image(image, tmp_path / f"volume{suffix}")
    back = read_image(path)
    assert back.GetSize() == image.GetSize()
    # NIfTI stores the geometry as float32 (quaternion + offsets); NRRD and MHA as decimal text
    tolerance = 1e-5 if suffix == ".nii.gz" else 1e-12
    np.testing.assert_allclose(back.GetSpacing(), image.GetSpacing(), atol=tolerance)
    np.testing.assert_allclose(back.GetOrigin(), image.GetOrigin(), atol=tolerance * 400)
    np.testing.assert_allclose(back.GetDirection(), image.GetDirection(), atol=tolerance)
    assert np.array_equal(sitk.GetArrayViewFromImage(back), sitk.GetArrayViewFromImage(image))
    assert geometry_of(back).orientation_code == geometry_of(image).orientation_code


def test_write_refuses_overwrite(tmp_path):
    path = write_image(make_image(np.eye(3)), tmp_path / "v.mha")
    before = path.read_bytes()
    with pytest.raises(ExistingFileError, match=r"v\.mha exists; refusing to overwrite"):
        write_image(make_image(RAS), path)
    assert path.read_bytes() == before
    write_image(make_image(RAS), path, overwrite=True)
    assert geometry_of(read_image(path)).orientation_code == "RAS"


def write_dicom_series(folder, image, slice_thickness=None):
    """One file per slice with the tags SimpleITK's DicomSeriesFromArray example sets (and Slice Thickness)."""
    folder.mkdir()
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    now = time.strftime("%Y%m%d"), time.strftime("%H%M%S")
    direction = image.GetDirection()
    series_tags = [
        ("0008|0031", now[1]),
        ("0008|0021", now[0]),
        ("0008|0008", "DERIVED\\SECONDARY"),
        ("0020|000e", "1.2.826.0.1.3680043.2.1125." + now[0] + ".1" + now[1]),
        ("0020|0037", "\\".join(map(str, direction[0:7:3] + direction[1:8:3]))),
        ("0008|103e", "test series"),
        ("0010|0010", "Test^Patient"),
    ]
    for k in range(image.GetDepth()):
        slice_image = image[:, :, k]
        for tag, value in series_tags:
            slice_image.SetMetaData(tag, value)
        slice_image.SetMetaData("0008|0060", "CT")
        slice_image.SetMetaData("0020|0032", "\\".join(map(str, image.TransformIndexToPhysicalPoint((0, 0, k)))))
        slice_image.SetMetaData("0020|0013", str(k + 1))
        slice_image.SetMetaData("0028|1053", "1")
        slice_image.SetMetaData("0028|1052", "0")
        if slice_thickness is not None:
            slice_image.SetMetaData("0018|0050", str(slice_thickness))
        writer.SetFileName(str(folder / f"slice{k:03d}.dcm"))
        writer.Execute(slice_image)


@pytest.mark.parametrize("direction", [np.eye(3), rotation(0.0, 0.0, 0.4), rotation(0.25, 0.1, 0.0)])
def test_dicom_series_folder_round_trip_keeps_orientation(tmp_path, direction):
    image = make_image(direction, size=(8, 6, 4), spacing=(0.7, 0.9, 2.5))
    write_dicom_series(tmp_path / "series", image)
    back = read_image(tmp_path / "series")
    assert back.GetSize() == image.GetSize()
    np.testing.assert_allclose(back.GetSpacing(), image.GetSpacing(), atol=1e-4)
    np.testing.assert_allclose(back.GetOrigin(), image.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(back.GetDirection(), image.GetDirection(), atol=1e-4)
    assert np.array_equal(sitk.GetArrayViewFromImage(back), sitk.GetArrayViewFromImage(image))


def test_dicom_folder_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ImageReadError, match="no DICOM series"):
        read_image(empty)
    image = make_image(np.eye(3), size=(4, 4, 1))
    write_dicom_series(tmp_path / "single", image)
    with pytest.raises(ImageReadError, match="only 1 slice"):
        read_image(tmp_path / "single")


def test_a_folder_of_other_files_gives_one_line_and_nothing_from_gdcm(tmp_path, capfd):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "report.txt").write_text("no images here")
    (tmp_path / "scan.png").write_bytes(b"not a dicom")
    capfd.readouterr()
    with pytest.raises(ImageReadError, match="no DICOM series found in this folder or its sub-folders"):
        read_image(tmp_path)
    assert capfd.readouterr().err == ""  # GDCM's "No Series were found" for each folder is not shown
    assert sitk.ProcessObject.GetGlobalWarningDisplay()  # and ITK's warnings are on again afterwards


def physical_values_agree(original, canonical):
    """Every voxel of ``original`` has the same value at the same place in ``canonical``."""
    g, c = geometry_of(original), geometry_of(canonical)
    a, b = sitk.GetArrayViewFromImage(original), sitk.GetArrayViewFromImage(canonical)
    index = np.stack(np.meshgrid(*[np.arange(s) for s in g.size], indexing="ij"), -1).reshape(-1, 3)
    target = c.lps_to_index(g.index_to_lps(index))
    np.testing.assert_allclose(target, np.round(target), atol=1e-6)
    target = np.round(target).astype(int)
    return np.array_equal(a[index[:, 2], index[:, 1], index[:, 0]], b[target[:, 2], target[:, 1], target[:, 0]])


@pytest.mark.parametrize("direction", [RAS, PIR, np.eye(3)], ids=["RAS", "PIR", "LPS"])
def test_to_canonical_axis_aligned_keeps_physical_positions(direction):
    image = make_image(direction)
    canonical = to_canonical(image)
    assert np.allclose(canonical.GetDirection(), np.eye(3).ravel())
    assert physical_values_agree(image, canonical)


@pytest.mark.parametrize("name", ["sub-ct_label-22_ct.nii.gz", "sub-ct_seg-vert_label-22_msk.nii.gz"])
def test_to_canonical_real_pir_images_keep_voxels(name):
    image = read_image(real("tptbox", name))
    assert geometry_of(image).orientation_code == "PIR"
    canonical = to_canonical(image)
    assert geometry_of(canonical).orientation_code == "LPS"
    assert canonical.GetPixelID() == image.GetPixelID()
    assert physical_values_agree(image, canonical)


def test_to_canonical_oblique_resamples_a_linear_field():
    geometry = ImageGeometry((12, 14, 10), (1.0, 1.5, 2.0), (5.0, -3.0, 20.0), OBLIQUE)
    index = np.stack(np.meshgrid(*[np.arange(s) for s in geometry.size], indexing="ij"), -1)
    lps = geometry.index_to_lps(index)
    field = lps @ np.array([1.0, 2.0, -0.5])  # linear in space, so linear interpolation is exact
    image = image_from_array(np.transpose(field, (2, 1, 0)).astype(np.float64), geometry)
    canonical = to_canonical(image)
    c = geometry_of(canonical)
    assert np.allclose(c.direction, np.eye(3))
    values = sitk.GetArrayViewFromImage(canonical)
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in c.size], indexing="ij"), -1).reshape(-1, 3)
    points = c.index_to_lps(grid)
    inside = geometry.contains(points, margin=-0.01)
    assert inside.sum() > 500
    got = values[grid[inside, 2], grid[inside, 1], grid[inside, 0]]
    np.testing.assert_allclose(got, points[inside] @ np.array([1.0, 2.0, -0.5]), atol=1e-6)
    # and back onto the original grid
    back = resample_like(canonical, image)
    inner = sitk.GetArrayViewFromImage(back)[2:-2, 2:-2, 2:-2]
    np.testing.assert_allclose(inner, np.transpose(field, (2, 1, 0))[2:-2, 2:-2, 2:-2], atol=1e-6)


@pytest.mark.parametrize("suffix", [".nrrd", ".mha"])
def test_truncated_files_give_image_read_error(tmp_path, suffix):
    image = read_image(real("tptbox", "sub-ct_seg-vert_label-22_msk.nii.gz"))
    whole = write_image(image, tmp_path / f"whole{suffix}").read_bytes()
    truncated = tmp_path / f"truncated{suffix}"
    truncated.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ImageReadError, match=f"truncated{suffix}"):
        read_image(truncated)


@pytest.mark.parametrize("compressed", [True, False])
def test_truncated_nifti_gives_image_read_error(tmp_path, compressed):
    source = real("tptbox", "sub-ct_seg-vert_label-22_msk.nii.gz")
    data = source.read_bytes() if compressed else gzip.decompress(source.read_bytes())
    truncated = tmp_path / ("truncated.nii.gz" if compressed else "truncated.nii")
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="truncated.nii"):
        read_image(truncated)


def test_nifti_gz_with_a_damaged_checksum_gives_image_read_error(tmp_path):
    data = bytearray(real("tptbox", "sub-ct_seg-vert_label-22_msk.nii.gz").read_bytes())
    data[-6] ^= 0xFF  # the CRC-32 in the gzip trailer: every voxel byte is there
    damaged = tmp_path / "damaged.nii.gz"
    damaged.write_bytes(bytes(data))
    with pytest.raises(ImageReadError, match="damaged.nii.gz: the NIfTI file is truncated or corrupt"):
        read_image(damaged)


def test_multi_member_nifti_gz_reads_like_the_single_stream(tmp_path):
    source = real("tptbox", "sub-ct_seg-vert_label-22_msk.nii.gz")
    plain = gzip.decompress(source.read_bytes())
    split = tmp_path / "bgzip_like.nii.gz"  # bgzip and concatenated gzip files hold several members
    split.write_bytes(gzip.compress(plain[:1000]) + gzip.compress(plain[1000:50000]) + gzip.compress(plain[50000:]))
    expected = sitk.GetArrayFromImage(read_image(source))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(read_image(split)), expected)
    one_member = tmp_path / "one_member_missing.nii.gz"  # the last member cut away: voxels are missing
    one_member.write_bytes(gzip.compress(plain[:1000]) + gzip.compress(plain[1000:50000]))
    with pytest.raises(ImageReadError, match="one_member_missing.nii.gz: the NIfTI file is truncated"):
        read_image(one_member)


def test_to_canonical_keeps_labels_of_an_oblique_mask_with_nearest():
    mask = read_image(real("verse", "sub-verse004_seg-vert_msk.nii.gz"))
    canonical = to_canonical(mask, nearest=True)
    values = set(np.unique(sitk.GetArrayViewFromImage(canonical)).tolist())
    assert values == set(np.unique(sitk.GetArrayViewFromImage(mask)).tolist())
    assert np.allclose(canonical.GetDirection(), np.eye(3).flatten())


def test_empty_garbage_and_missing_files(tmp_path):
    empty = tmp_path / "empty.nrrd"
    empty.write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty"):
        read_image(empty)
    garbage = tmp_path / "garbage.mha"
    garbage.write_text("not an image at all")
    with pytest.raises(ImageReadError, match="garbage.mha"):
        read_image(garbage)
    header_only = tmp_path / "header.nii.gz"
    header_only.write_bytes(real("tptbox", "sub-ct_seg-vert_label-22_msk.nii.gz").read_bytes()[:40])
    with pytest.raises(ImageReadError, match="header.nii.gz"):
        read_image(header_only)
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "missing.nii.gz")


def test_a_dicom_file_without_pixels_is_named_for_what_it_is(tmp_path):
    """A dose report or a structured report given instead of the CT: one line saying what the file is."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    report = Dataset()
    report.file_meta = FileMetaDataset()
    report.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.67"  # X-Ray Radiation Dose SR
    report.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    report.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    report.SOPClassUID, report.SOPInstanceUID = report.file_meta.MediaStorageSOPClassUID, generate_uid()
    report.Modality, report.StudyInstanceUID, report.SeriesInstanceUID = "SR", generate_uid(), generate_uid()
    report.save_as(tmp_path / "dose.dcm", enforce_file_format=True)
    with pytest.raises(ImageReadError) as caught:
        read_image(tmp_path / "dose.dcm")
    assert str(caught.value) == (f"{tmp_path / 'dose.dcm'}: a DICOM X-Ray Radiation Dose SR Storage "
                                 "(1.2.840.10008.5.1.4.1.1.88.67, modality SR) holds no pixels: it is not an image; "
                                 "give the CT series folder or the radiograph")
    (tmp_path / "note.dcm").write_text("not DICOM at all")  # not DICOM: the reader's own reason
    with pytest.raises(ImageReadError, match=r"note\.dcm: cannot read this image \(truncated, corrupt or not an "
                                             r"image\): Unable to determine ImageIO reader$"):
        read_image(tmp_path / "note.dcm")


def test_real_ct_geometry():
    image = read_image(real("totalsegmentator", "example_ct.nii.gz"))
    assert image.GetSize() == (122, 101, 112)
    np.testing.assert_allclose(image.GetSpacing(), (3.0, 3.0, 3.0), atol=1e-4)


@pytest.mark.parametrize("direction", [np.eye(3), PIR], ids=["axial", "sagittal slices"])
def test_slices_thicker_than_their_spacing_are_read_as_what_the_image_resolves(tmp_path, direction):
    """An overlapping reconstruction (5 mm slices every 2.5 mm): the refinement and the quality gate must work at 5 mm
    across the slices, whatever the grid is reoriented or resampled to."""
    image = make_image(direction, size=(8, 6, 5), spacing=(0.7, 0.7, 2.5))
    write_dicom_series(tmp_path / "series", image, slice_thickness=5.0)
    read = read_image(tmp_path / "series")
    geometry = geometry_of(read)
    np.testing.assert_allclose(geometry.resolution, (0.7, 0.7, 5.0), atol=1e-4)
    normal = geometry.direction[:, 2]
    assert abs(geometry.voxel_extent_along(normal) - 5.0) < 1e-3
    canonical = geometry_of(to_canonical(read))
    assert abs(canonical.voxel_extent_along(normal) - 5.0) < 1e-3  # on whichever canonical axis the normal went
    assert abs(canonical.voxel_extent_along(geometry.direction[:, 0]) - 0.7) < 1e-3
    finer = geometry_of(resample_spacing(read, 1.0))
    assert abs(finer.voxel_extent_along(normal) - 5.0) < 1e-3  # resampling adds no resolution
    # slices as thick as their spacing (or no thickness) leave the spacing as the resolution
    write_dicom_series(tmp_path / "plain", image, slice_thickness=2.5)
    assert geometry_of(read_image(tmp_path / "plain")).resolution is None
    write_dicom_series(tmp_path / "untagged", image)
    assert geometry_of(read_image(tmp_path / "untagged")).resolution is None


def test_an_oblique_series_put_on_the_canonical_grid_keeps_its_slice_resolution():
    """The canonical grid of an oblique image is at its finest spacing; across its 3 mm slices it still resolves 3."""
    image = make_image(OBLIQUE, size=(20, 20, 8), spacing=(0.7, 0.7, 3.0))
    normal = geometry_of(image).direction[:, 2]
    canonical = geometry_of(to_canonical(image))
    assert max(canonical.spacing) < 1.0
    assert canonical.voxel_extent_along(normal) >= 3.0 - 1e-6


def test_a_nifti_s_json_sidecar_gives_the_slice_thickness(tmp_path):
    """dcm2niix writes the DICOM Slice Thickness into ``<name>.json``; the NIfTI header keeps only the spacing."""
    import json

    image = make_image(np.eye(3), size=(8, 6, 5), spacing=(0.7, 0.7, 2.5))
    path = tmp_path / "ct.nii.gz"
    write_image(image, path)
    assert geometry_of(read_image(path)).resolution is None
    (tmp_path / "ct.json").write_text(json.dumps({"SliceThickness": 5, "SpacingBetweenSlices": 2.5}))
    np.testing.assert_allclose(geometry_of(read_image(path)).resolution, (0.7, 0.7, 5.0), atol=1e-6)
    for broken in ("{not json", "[5]", json.dumps({"SliceThickness": "thick"}), json.dumps({"SliceThickness": 0}),
                   json.dumps({"SliceThickness": 500})):  # unreadable, not a mapping, not a number, none, absurd
        (tmp_path / "ct.json").write_text(broken)
        assert geometry_of(read_image(path)).resolution is None, broken
