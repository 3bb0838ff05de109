import pytest
import SimpleITK as sitk

from VertebralFractureLib.io import images
from VertebralFractureLib.io.atomic import ExistingFileError, atomic_path, atomic_write


def listing(folder):
    return sorted(p.name for p in folder.iterdir())


def test_writes_text_bytes_and_callables(tmp_path):
    assert atomic_write(tmp_path / "a.txt", "héllo").read_text(encoding="utf-8") == "héllo"
    assert atomic_write(tmp_path / "b.bin", b"\x00\x01").read_bytes() == b"\x00\x01"
    assert atomic_write(tmp_path / "c.json", lambda p: p.write_text("{}")).read_text() == "{}"
    assert atomic_write(tmp_path / "sub" / "dir" / "d.txt", "x").read_text() == "x"
    assert listing(tmp_path) == ["a.txt", "b.bin", "c.json", "sub"]


def test_refuses_overwrite_unless_asked(tmp_path):
    target = atomic_write(tmp_path / "a.txt", "first")
    with pytest.raises(ExistingFileError, match="refusing to overwrite"):
        atomic_write(target, "second")
    assert target.read_text() == "first"
    atomic_write(target, "second", overwrite=True)
    assert target.read_text() == "second"
    assert isinstance(ExistingFileError("x"), FileExistsError)


def test_writer_failing_mid_write_leaves_old_file_and_no_temporaries(tmp_path):
    target = atomic_write(tmp_path / "result.json", '{"result": "old"}')  # valid JSON: files are read back

    def half_then_crash(path):
        with open(path, "w") as handle:
            handle.write("{ partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, half_then_crash, overwrite=True)
    assert target.read_text() == '{"result": "old"}'
    assert listing(tmp_path) == ["result.json"]
    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(tmp_path / "new.json", half_then_crash)
    assert listing(tmp_path) == ["result.json"]


def test_writer_producing_nothing_is_an_error(tmp_path):
    with pytest.raises(OSError, match="produced no data"):
        atomic_write(tmp_path / "empty.txt", lambda path: None)
    with pytest.raises(OSError, match="produced no data"):
        atomic_write(tmp_path / "empty.txt", "")
    assert listing(tmp_path) == []


def test_temporary_keeps_suffixes_and_sits_beside_target(tmp_path):
    with atomic_path(tmp_path / "mask.seg.nrrd") as temporary:
        assert temporary.parent == tmp_path
        assert temporary.name.endswith(".seg.nrrd")
        assert temporary.name.startswith(".vf-tmp-mask-")  # hidden, and removed by recover()
        sitk.WriteImage(sitk.Image(4, 4, 2, sitk.sitkUInt8), str(temporary))  # read back before the rename
    assert listing(tmp_path) == ["mask.seg.nrrd"]
    assert sitk.ReadImage(str(tmp_path / "mask.seg.nrrd")).GetSize() == (4, 4, 2)


def test_image_writer_crash_leaves_no_partial_image(tmp_path, monkeypatch):
    image = sitk.Image(8, 8, 4, sitk.sitkInt16)
    target = images.write_image(image, tmp_path / "ct.nii.gz")
    before = target.read_bytes()
    real_write = sitk.WriteImage

    def crash_after_writing(img, path, *args):
        real_write(img, path, *args)
        with open(path, "r+b") as handle:
            handle.truncate(10)
        raise RuntimeError("killed while writing")

    monkeypatch.setattr(sitk, "WriteImage", crash_after_writing)
    with pytest.raises(RuntimeError, match="killed"):
        images.write_image(sitk.Image(9, 9, 9, sitk.sitkUInt8), target, overwrite=True)
    assert target.read_bytes() == before
    assert listing(tmp_path) == ["ct.nii.gz"]
