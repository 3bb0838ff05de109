"""Bad inputs through the user's entry points: one clear line naming the problem, never a traceback.

Each case is run through ``vertebral-fracture analyze`` (``cli.main``): exit code 2 and one line
``vertebral-fracture analyze: error: <file>: <problem>`` on stderr. Cases already covered at the
reader level (Testing/Python/io/test_images.py, test_validation.py) are checked here only where
the user meets them, at the command line.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from hardhelpers import ct_like, image, keypoint_weights_missing

from VertebralFractureLib.cli import main
from VertebralFractureLib.io.images import ImageReadError, read_image
from VertebralFractureLib.validation import MAX_VOXELS, InputError, check_ct

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "io"))
from test_images import write_dicom_series  # noqa: E402


def run_cli(capsys, *argv) -> str:
    """Run the command; assert exit code 2 and a single error line; return that line."""
    code = main(list(argv))
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"vertebral-fracture {argv[0]}: error: ")
    return lines[0]


def _write(array, spacing=(1.0, 1.0, 1.0), suffix=".nii.gz"):
    def writer(folder: Path) -> Path:
        path = folder / f"input{suffix}"
        sitk.WriteImage(image(array, spacing), str(path))
        return path

    return writer


def _garbage(content: bytes, suffix: str):
    def writer(folder: Path) -> Path:
        path = folder / f"input{suffix}"
        path.write_bytes(content)
        return path

    return writer


def _truncated(folder: Path) -> Path:
    path = folder / "input.nii.gz"
    sitk.WriteImage(image(ct_like()), str(path))
    path.write_bytes(path.read_bytes()[:300])
    return path


def _colour(folder: Path) -> Path:
    path = folder / "input.png"
    grey = image(np.linspace(0, 255, 64 * 64).reshape(64, 64).astype(np.uint8))
    sitk.WriteImage(sitk.Compose([grey] * 3), str(path))
    return path


rng = np.random.default_rng(0)
#: (id, writer, message fragment the user sees)
BAD_FILES = [
    # a 2D input takes the radiograph path (issue 10); a tiny one is refused there
    ("2D image", _write(ct_like()[8]), "input.nii.gz: a lateral radiograph of at least 64 x 64 pixels is expected"),
    ("1-voxel axis", _write(ct_like()[:1]), "a lateral radiograph of at least 64 x 64 pixels is expected"),
    ("thin axis", _write(ct_like()[:4]), "axis k has fewer than 8 voxels"),
    ("constant", _write(np.zeros((16, 32, 32), np.int16)), "the volume is constant (every voxel is 0)"),
    ("MR-like", _write(rng.uniform(0, 900, (16, 32, 32)).astype(np.float32)), "this looks like MR or data already"),
    ("normalised", _write(rng.normal(0, 1, (16, 32, 32)).astype(np.float32)), "this looks like normalised data"),
    ("no bone", _write(np.clip(ct_like(), -1000, 100)), "no bone is in view"),
    ("spacing 0.001 mm", _write(ct_like(), (0.001, 1.0, 1.0)), "outside the plausible CT range 0.1-10.0 mm"),
    ("spacing 50 mm", _write(ct_like(), (1.0, 1.0, 50.0)), "voxel spacing (1.0, 1.0, 50.0) mm is outside"),
    # NIfTI readers drop NaN; NRRD keeps them
    ("NaN values", _write(np.where(ct_like() > 1000, np.nan, ct_like()).astype(np.float32), suffix=".nrrd"),
     "the volume contains NaN or infinite values"),
    ("truncated NIfTI", _truncated, "the NIfTI file is truncated or corrupt"),
    ("empty file", _garbage(b"", ".nrrd"), "input.nrrd: the file is empty"),
    ("garbage NRRD", _garbage(b"NRRD0004\ntype: what\n\n" + bytes(100), ".nrrd"), "cannot read this image"),
    ("not an image", _garbage(b"hello, world\n" * 20, ".mha"), "cannot read this image"),
]


@pytest.mark.parametrize("writer, message", [case[1:] for case in BAD_FILES], ids=[case[0] for case in BAD_FILES])
def test_bad_volume_files_give_one_clear_line(tmp_path, capsys, writer, message):
    path = writer(tmp_path)
    line = run_cli(capsys, "analyze", str(path), "--out", str(tmp_path / "out"), "--quiet")
    assert message in line
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_missing_input(tmp_path, capsys):
    line = run_cli(capsys, "analyze", str(tmp_path / "nope.nii.gz"), "--out", str(tmp_path / "out"), "--quiet")
    assert line.endswith("nope.nii.gz: no such file or folder")


def test_info_on_a_corrupt_file_is_one_line(tmp_path, capsys):
    path = tmp_path / "broken.mha"
    path.write_bytes(b"ObjectType = Image\nNDims = 3\nDimSize = 10 10 10\nElementType = MET_SHORT\n"
                     b"ElementDataFile = LOCAL\n" + bytes(20))
    line = run_cli(capsys, "info", str(path))
    assert "broken.mha: cannot read this image" in line


def test_a_ct_given_where_a_radiograph_is_expected(tmp_path):
    from VertebralFractureLib.radiograph.analyze import analyze_radiograph

    path = tmp_path / "ct.nii.gz"
    sitk.WriteImage(image(ct_like()), str(path))
    with pytest.raises(InputError, match="ct.nii.gz: a volume of 16 slices; a single lateral radiograph is expected"):
        analyze_radiograph(path)


# ----------------------------------------------------------------------------- huge volumes
def test_huge_volume_refused_from_the_header_before_reading(tmp_path, capsys):
    """A detached NRRD header announcing 1.6 G voxels: refused from the header, its data never read."""
    header = tmp_path / "huge.nhdr"
    header.write_text("NRRD0004\ntype: short\ndimension: 3\nsizes: 2000 2000 400\nspacings: 0.5 0.5 0.5\n"
                      "encoding: raw\nendian: little\ndata file: huge.raw\n")
    (tmp_path / "huge.raw").write_bytes(bytes(64))  # the data is not there at all: reading it would fail
    with pytest.raises(ImageReadError, match=r"1600 million voxels \(size \(2000, 2000, 400\)\) is more than the"):
        read_image(header)
    line = run_cli(capsys, "analyze", str(header), "--out", str(tmp_path / "out"), "--quiet")
    assert "crop the volume to the spine or resample it" in line


def test_huge_array_refused_by_the_check_without_allocating():
    from VertebralFractureLib.geometry import ImageGeometry

    shape = (1300, 1024, 1024)  # a zero-stride view: no memory is allocated
    array = np.broadcast_to(np.int16(0), shape)
    assert array.size > MAX_VOXELS
    geometry = ImageGeometry(tuple(reversed(shape)), (0.5, 0.5, 0.5), (0.0, 0.0, 0.0), np.eye(3))
    with pytest.raises(InputError, match="1363 million voxels is more than the 1258 million"):
        check_ct(array, geometry, "big.nii.gz")


# ----------------------------------------------------------------------------- DICOM folders
def _series(seed: int = 0) -> sitk.Image:
    result = image(ct_like((12, 32, 32), seed), (0.8, 0.8, 2.0))
    result.SetOrigin((10.0, -20.0, 30.0 + 100 * seed))
    return result


def _retag(folder: Path, uid: str) -> None:
    """Give every file of a written series another SeriesInstanceUID."""
    reader = sitk.ImageFileReader()
    for path in sorted(folder.glob("*.dcm")):
        reader.SetFileName(str(path))
        data = reader.Execute()
        for key in reader.GetMetaDataKeys():
            data.SetMetaData(key, reader.GetMetaData(key))
        data.SetMetaData("0020|000e", uid)
        writer = sitk.ImageFileWriter()
        writer.KeepOriginalImageUIDOn()
        writer.SetFileName(str(path))
        writer.Execute(data)


def test_dicom_folder_with_two_series(tmp_path, capsys):
    write_dicom_series(tmp_path / "a", _series(0))
    write_dicom_series(tmp_path / "b", _series(1))
    _retag(tmp_path / "b", "1.2.826.0.1.3680043.2.1125.99")
    folder = tmp_path / "both"
    folder.mkdir()
    for path in [*(tmp_path / "a").iterdir()]:
        path.rename(folder / f"a_{path.name}")
    for path in [*(tmp_path / "b").iterdir()]:
        path.rename(folder / f"b_{path.name}")
    line = run_cli(capsys, "analyze", str(folder), "--out", str(tmp_path / "out"), "--quiet")
    assert "the folder holds DICOM series of 2 studies" in line  # written without a study, SimpleITK makes one each
    assert "12 files" in line and "choose one series with --series UID" in line


def test_dicom_series_with_a_missing_slice(tmp_path, capsys):
    """Refused (not warned): SimpleITK would stack 11 slices at 2.2 mm and stretch every height by 10 %."""
    write_dicom_series(tmp_path / "gap", _series())
    (tmp_path / "gap" / "slice005.dcm").unlink()
    line = run_cli(capsys, "analyze", str(tmp_path / "gap"), "--out", str(tmp_path / "out"), "--quiet")
    assert ("uneven slice gaps in the DICOM series: 4.00 mm between slices 5 and 6 where 2.00 mm is usual "
            "(1 slice missing?)") in line


def test_dicom_series_with_a_truncated_slice(tmp_path, capsys):
    write_dicom_series(tmp_path / "trunc", _series())
    path = tmp_path / "trunc" / "slice007.dcm"
    path.write_bytes(path.read_bytes()[:600])
    line = run_cli(capsys, "analyze", str(tmp_path / "trunc"), "--out", str(tmp_path / "out"), "--quiet")
    assert "uneven slice gaps" in line or "truncated or corrupt" in line


def test_dicom_series_beside_other_files_is_read(tmp_path):
    write_dicom_series(tmp_path / "mixed", _series())
    (tmp_path / "mixed" / "notes.txt").write_text("report of the referring physician\n")
    (tmp_path / "mixed" / "thumbnail.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    (tmp_path / "mixed" / "DICOMDIR").write_bytes(bytes(200))
    back = read_image(tmp_path / "mixed")
    assert back.GetSize() == (32, 32, 12)
    np.testing.assert_allclose(back.GetSpacing(), (0.8, 0.8, 2.0), atol=1e-4)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(back), ct_like((12, 32, 32), 0))


def test_unknown_segmentation_file_is_one_line(tmp_path, capsys):
    ct = tmp_path / "ct.nii.gz"
    sitk.WriteImage(image(ct_like()), str(ct))
    line = run_cli(capsys, "analyze", str(ct), "--segmentation", str(tmp_path / "none.nii.gz"),
                   "--out", str(tmp_path / "out"), "--quiet")
    assert "none.nii.gz: no such file or folder" in line


# ----------------------------------------------------------------------------- no spine in view
def test_a_ct_without_a_spine_is_one_clear_line(tmp_path, capsys):
    """Soft tissue and air with one bright speck: HU plausible, bone present, no vertebra anywhere.

    The soft tissue carries CT noise (SD 15 HU): a volume in which nine voxels in ten hold exactly one value is
    refused as masked (``validation.masked_fill``) before the spine is looked for.
    """
    array = (40 + np.random.default_rng(0).normal(0, 15, (60, 100, 100))).astype(np.int16)
    array[:, :, :10] = -1000
    array[30, 50, 50] = 800
    path = tmp_path / "abdomen.nii.gz"
    sitk.WriteImage(image(array, (2.0, 2.0, 2.0)), str(path))
    line = run_cli(capsys, "analyze", str(path), "--out", str(tmp_path / "out"), "--quiet", "--device", "cpu")
    assert "abdomen.nii.gz: no spine found in the image" in line


@pytest.mark.skipif(keypoint_weights_missing(), reason="keypoint detector weights (weights/keypoints.pt) not shipped")
def test_a_ct_of_the_flank_says_no_vertebra_was_found(synthetic_case, tmp_path, capsys):
    """The left quarter of an abdomen (ribs and muscle, no spine): no vertebra, said as a warning."""
    flank = tmp_path / "flank.nii.gz"
    sitk.WriteImage(synthetic_case.ct[: synthetic_case.ct.GetSize()[0] // 4, :, :], str(flank))
    assert main(["analyze", str(flank), "--out", str(tmp_path / "out"), "--quiet", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("0 vertebrae (none)")
    assert "warning: flank.nii.gz: no vertebra was found; is the spine in view?" in captured.err


def test_a_colour_picture_without_a_spine_takes_the_radiograph_path_and_is_refused(tmp_path, capsys):
    path = _colour(tmp_path)
    assert main(["analyze", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    captured = capsys.readouterr()
    # one line naming the file: no vertebra / no vertebral body in a spine column (at any working scale: the
    # picture has no pixel size, ITK's default 1 x 1 sCAL is not one)
    assert "input.png: no vertebra" in captured.err and captured.err.count("\n") == 1
    assert not (tmp_path / "out" / "results.json").exists()
