"""Which plane a DICOM picture lies in (``radiograph/view_plane.py``), and a CT slice's padding read as air.

The pictures are the real sagittal CT slices of ``covid_sagittal`` (``Testing/Data/real``) and a coronal slice of the
real TotalSegmentator CT, written as the DICOM files a user loads: a CT slice with Image Orientation (Patient) and the
scanner's padding outside the reconstructed field, a DX film with Patient Orientation or View Position.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from VertebralFractureLib.radiograph.analyze import analyze_radiograph
from VertebralFractureLib.radiograph.reading import padding_as_air
from VertebralFractureLib.radiograph.view_plane import header_view
from VertebralFractureLib.validation import InputError

ROOT = Path(__file__).resolve().parents[2] / "Data" / "real"
ENTRIES = {Path(e["image"]).name[: -len(".nii.gz")]: e
           for e in json.loads((ROOT / "reference" / "covid_sagittal.json").read_text())["images"]}
#: Image Orientation (Patient) of the real DICOM file of A002304_19001231-080 (a sagittal reformat, rows running
#: backwards: the patient faces left), as its header has it.
REAL_SAGITTAL_IOP = "-0.010638\\0.999943\\0.000000\\0.000000\\0.000000\\-1.000000"


def _header(**tags) -> sitk.Image:
    image = sitk.Image(4, 4, sitk.sitkUInt8)
    names = {"iop": "0020|0037", "po": "0020|0020", "vp": "0018|5101"}
    for key, value in tags.items():
        image.SetMetaData(names[key], value)
    return image


def _rotated_iop(degrees: float) -> str:
    """A sagittal plane turned ``degrees`` about the head-foot axis (rows towards the back, columns to the feet)."""
    angle = np.radians(degrees)
    row = (np.sin(angle), np.cos(angle), 0.0)
    return "\\".join(f"{v:.6f}" for v in (*row, 0.0, 0.0, -1.0))


@pytest.mark.parametrize("iop, plane, facing", [
    (REAL_SAGITTAL_IOP, "lateral", "left"),
    ("0\\-1\\0\\0\\0\\-1", "lateral", "right"),  # rows running forwards: the front on the right
    (_rotated_iop(25.0), "lateral", "left"),
    (_rotated_iop(40.0), "oblique", None),
    ("1\\0\\0\\0\\0\\-1", "frontal", None),  # a coronal slice
    ("1\\0\\0\\0\\1\\0", "axial", None),
])
def test_the_plane_and_the_facing_from_image_orientation_patient(iop, plane, facing):
    view = header_view(_header(iop=iop))
    assert (view.plane, view.facing) == (plane, facing)
    assert view.tag == "Image Orientation (Patient) (0020,0037)" and view.value == iop


@pytest.mark.parametrize("tags, plane, facing, tag", [
    ({"po": "A\\F"}, "lateral", "right", "Patient Orientation (0020,0020)"),
    ({"po": "P\\FA"}, "lateral", "left", "Patient Orientation (0020,0020)"),
    ({"po": "H\\A"}, "lateral", None, "Patient Orientation (0020,0020)"),  # turned a quarter: rows to the head
    ({"po": "L\\F"}, "frontal", None, "Patient Orientation (0020,0020)"),
    ({"po": "R\\H"}, "frontal", None, "Patient Orientation (0020,0020)"),
    ({"vp": "AP"}, "frontal", None, "View Position (0018,5101)"),
    ({"vp": "PA"}, "frontal", None, "View Position (0018,5101)"),
    ({"vp": "LL"}, "lateral", None, "View Position (0018,5101)"),
    ({"vp": "RLO"}, "oblique", None, "View Position (0018,5101)"),
    # the geometric attributes say more than the view's name: Patient Orientation before View Position, and
    # Image Orientation (Patient) before both
    ({"po": "P\\F", "vp": "AP"}, "lateral", "left", "Patient Orientation (0020,0020)"),
    ({"iop": "1\\0\\0\\0\\0\\-1", "po": "P\\F"}, "frontal", None, "Image Orientation (Patient) (0020,0037)"),
])
def test_the_plane_from_patient_orientation_and_view_position(tags, plane, facing, tag):
    view = header_view(_header(**tags))
    assert (view.plane, view.facing, view.tag) == (plane, facing, tag)


@pytest.mark.parametrize("tags", [{}, {"vp": "RLD"}, {"vp": ""}, {"po": "\\"}, {"iop": "1\\0\\0\\1\\0\\0"},
                                  {"iop": "not\\numbers"}])
def test_a_header_that_does_not_say_leaves_the_picture_to_the_image(tags):
    assert header_view(_header(**tags)) is None


def _hu(name: str) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(ROOT / ENTRIES[name]["image"]))).squeeze()


def _write_ct_slice(path: Path, hu: np.ndarray, spacing_mm: float, direction) -> Path:
    """One CT slice as a DICOM file (GDCM writes Image Orientation (Patient) from the direction's columns)."""
    image = sitk.GetImageFromArray(np.asarray(hu, dtype=np.int16)[None])
    image.SetSpacing((spacing_mm, spacing_mm, 1.0))
    image.SetDirection(direction)
    for key, value in {"0008|0060": "CT", "0028|1052": "0", "0028|1053": "1"}.items():
        image.SetMetaData(key, value)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    writer.SetFileName(str(path))
    writer.Execute(image)
    return path


#: Rows towards the back (LPS +y), columns to the feet (-z): a sagittal reformat, as the real files are.
SAGITTAL = (0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0)
#: Rows to the patient's left (+x), columns to the feet: a coronal reformat.
CORONAL = (1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, -1.0, 0.0)


def test_a_real_ct_slice_as_its_dicom_file_faces_as_its_header_says_with_its_padding_read_as_air(tmp_path):
    """A067967_19001231 as its DICOM file has it: a sagittal reformat padded with -2048 outside the reconstructed
    field (11 % of the slice). The stored NIfTI copy was made with the padding clipped to -1024, and -1024 marks
    exactly the padding there (36 635 pixels against the DICOM file's 36 631), so the file's pixels are restored by
    writing -2048 back. The analysis takes the facing from Image Orientation (Patient) without trying the mirrored
    picture and names the same bodies as on the copy; with the padding counted as the darkest tissue it named
    T1-T10 (uncertain) where the slice shows T9-S1."""
    name = "A067967_19001231-076"
    hu = _hu(name).astype(np.int16)
    hu[hu == -1024] = -2048
    path = _write_ct_slice(tmp_path / "slice.dcm", hu, ENTRIES[name]["spacing_mm"][0], SAGITTAL)
    result = analyze_radiograph(path).result
    expected = analyze_radiograph(ROOT / ENTRIES[name]["image"]).result
    assert result.input["facing"] == "left"
    assert result.input["facing_source"] == "Image Orientation (Patient) (0020,0037)"
    assert result.input["view_plane"] == "lateral (Image Orientation (Patient) (0020,0037) is '0\\1\\0\\0\\0\\-1')"
    assert expected.input["facing_source"] == "image"
    assert expected.input["view_plane"] == "not stated by the file: analysed as a lateral view"
    assert result.labels == expected.labels and "S1" in result.labels
    assert [v.status for v in result.vertebrae] == [v.status for v in expected.vertebrae]
    np.testing.assert_allclose([v.centroid for v in result.vertebrae], [v.centroid for v in expected.vertebrae],
                               atol=1e-6)


def test_padding_below_air_is_air_only_in_a_picture_that_holds_ct_air():
    slice_hu = np.full((10, 10), 40.0, dtype=np.float32)
    slice_hu[:2] = -1000.0  # air in the field of view
    slice_hu[:, :2] = -3024.0  # padding
    assert padding_as_air(slice_hu).min() == -1024.0 and padding_as_air(slice_hu)[5, 5] == 40.0
    # a signed picture with no CT air (-1024 ... -900) in it is not a CT slice in HU: left as it is
    signed = np.concatenate([np.linspace(-3000.0, -1100.0, 50), np.linspace(0.0, 3000.0, 50)]).astype(np.float32)
    signed = signed.reshape(10, 10)
    np.testing.assert_array_equal(padding_as_air(signed), signed)


def test_a_real_coronal_ct_slice_is_refused_with_one_line_naming_the_attribute(tmp_path, capsys):
    """A coronal reformat of the real TotalSegmentator CT through its vertebral bodies, written as a CT slice: a
    frontal view, whose "heights" would be the bodies' left, middle and right ones. The CLI refuses it with one line
    naming the file and Image Orientation (Patient) and writes nothing; the sagittal reformat of the same CT through
    the same bodies is not refused for its plane."""
    from VertebralFractureLib.cli import main
    from VertebralFractureLib.io.images import read_image, to_canonical

    volume = to_canonical(read_image(str(ROOT / "totalsegmentator" / "example_ct.nii.gz")))
    hu = sitk.GetArrayFromImage(volume)  # [z, y, x], LPS
    spacing = volume.GetSpacing()[0]
    coronal = _write_ct_slice(tmp_path / "coronal.dcm", hu[::-1, hu.shape[1] // 2 + 8, :], spacing, CORONAL)
    assert main(["analyze", str(coronal), "--out", str(tmp_path / "out"), "--quiet"]) != 0
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "coronal.dcm" in error[0] and "a frontal (AP / PA) view" in error[0]
    assert "Image Orientation (Patient) (0020,0037)" in error[0] and "lateral view" in error[0]
    assert not (tmp_path / "out" / "results.json").exists()
    assert main(["info", str(coronal)]) == 0  # info says what the header names
    described = json.loads(capsys.readouterr().out)
    assert described["view_plane"]["plane"] == "frontal"
    assert described["view_plane"]["tag"] == "Image Orientation (Patient) (0020,0037)"
    sagittal = _write_ct_slice(tmp_path / "sagittal.dcm", hu[::-1, :, hu.shape[2] // 2], spacing, SAGITTAL)
    try:
        analyze_radiograph(sagittal)
    except InputError as error:  # a 3 mm abdominal CT's mid-sagittal slice may show too little: not its plane
        assert "frontal" not in str(error) and "oblique" not in str(error)


@pytest.mark.parametrize("tags, said", [
    ({"patient_orientation": ("L", "F")}, "a frontal (AP / PA) view (Patient Orientation (0020,0020)"),
    ({"view_position": "PA"}, "a frontal (AP / PA) view (View Position (0018,5101) is 'PA')"),
    ({"view_position": "LLO"}, "an oblique view (View Position (0018,5101) is 'LLO')"),
])
def test_a_dx_film_that_says_it_is_not_lateral_is_refused(tmp_path, dx_file, tags, said):
    """Real pixels (A058062_19010108, analysed as a lateral film elsewhere) in a DX file whose header names another
    view: refused before anything is measured."""
    name = "A058062_19010108-077"
    pixels = np.clip(np.rint(_hu(name) + 1024.0), 0, 4095).astype(np.uint16)
    row_mm = ENTRIES[name]["spacing_mm"][1]
    film = dx_file(tmp_path / "film.dcm", pixel_spacing=(row_mm, row_mm), rows=pixels.shape[0], cols=pixels.shape[1],
                   pixels=pixels, **tags)
    with pytest.raises(InputError) as refused:
        analyze_radiograph(film)
    assert str(refused.value).startswith(f"film.dcm: {said}")
    lateral = dx_file(tmp_path / "lateral.dcm", pixel_spacing=(row_mm, row_mm), rows=pixels.shape[0],
                      cols=pixels.shape[1], pixels=pixels, view_position="LL")
    assert "L5" in analyze_radiograph(lateral).result.labels
