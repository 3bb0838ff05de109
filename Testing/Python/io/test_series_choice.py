"""A study folder as PACS exports it: which series is analysed, and what is refused.

The series are the bundled real sample CT (TotalSegmentator example, 3 mm) written with pydicom
(``testdata.write_ct_series``): the 3 mm axial series, a 6 mm series of every other slice, a localizer, a
Secondary Capture, all under one study; the analysis is the real one.
"""

from __future__ import annotations

import csv

import pytest
import SimpleITK as sitk
from pydicom.uid import SecondaryCaptureImageStorage, generate_uid
from testdata import real, write_ct_series

from VertebralFractureLib.cli import main
from VertebralFractureLib.io.images import SERIES_CHOICE_KEY, ImageReadError, dicom_series_in, read_image
from VertebralFractureLib.io.series_choice import choose_series

SAMPLE = real("totalsegmentator", "example_ct.nii.gz")
STUDY = generate_uid(prefix="1.2.826.0.1.3680043.8.498.")
THIN, THICK, LOCALIZER, CAPTURE = (generate_uid(prefix="1.2.826.0.1.3680043.8.498.") for _ in range(4))


def _study(folder, thin=True, patient="SYNTH-0042", study=STUDY):
    """The sample CT's study: localizer (#1), 6 mm (#2), 3 mm (#3, when ``thin``), a screenshot (#9)."""
    sample = sitk.ReadImage(str(SAMPLE))
    write_ct_series(sample[:, :, 50:52], folder / "1", study_uid=study, series_uid=LOCALIZER, patient_id=patient,
                    series_number=1, description="Topogram", image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"))
    write_ct_series(sample, folder / "2", study_uid=study, series_uid=THICK, patient_id=patient, series_number=2,
                    description="Abdomen 6.0 B30f", every=2)
    if thin:
        write_ct_series(sample, folder / "3", study_uid=study, series_uid=THIN, patient_id=patient, series_number=3,
                        description="Abdomen 3.0 B30f")
    write_ct_series(sample[:, :, 60:61], folder / "9", study_uid=study, series_uid=CAPTURE, patient_id=patient,
                    series_number=9, description="Key image", image_type=("DERIVED", "SECONDARY"),
                    sop_class=SecondaryCaptureImageStorage)
    return folder


def test_the_thin_axial_ct_is_chosen_and_the_line_names_every_other_series(tmp_path):
    folder = _study(tmp_path / "study")
    uid, line = choose_series(folder, dicom_series_in(folder))
    assert uid == THIN
    assert line == ("analysed series #3 'Abdomen 3.0 B30f' (112 axial slices, 3 mm thick) of the folder's 4 series "
                    "(axial first, then the thinnest slices, then the most); also CT volumes, not analysed: series #2 "
                    "'Abdomen 6.0 B30f' (choose one with --series UID); set aside: series #1 'Topogram' (a "
                    "localizer); series #9 'Key image' (a picture or a report, not CT slices)")
    image = read_image(folder)
    assert image.GetSize() == (122, 101, 112) and image.GetSpacing()[2] == pytest.approx(3.0)
    assert image.GetMetaData("0020|000e") == THIN and image.GetMetaData(SERIES_CHOICE_KEY) == line


def test_without_the_thin_series_the_6_mm_one_is_read_and_an_explicit_uid_still_wins(tmp_path):
    folder = _study(tmp_path / "study", thin=False)
    image = read_image(folder)
    assert image.GetMetaData("0020|000e") == THICK and image.GetSize()[2] == 56
    assert image.GetSpacing()[2] == pytest.approx(6.0)
    assert "set aside: series #1 'Topogram' (a localizer)" in image.GetMetaData(SERIES_CHOICE_KEY)
    assert read_image(folder, LOCALIZER).GetSize()[2] == 2  # a series named by hand is read as asked
    assert not read_image(_study(tmp_path / "again"), THICK).HasMetaDataKey(SERIES_CHOICE_KEY)


def test_series_of_two_patients_or_two_studies_are_never_chosen_between(tmp_path):
    folder = _study(tmp_path / "mixed", thin=False)
    write_ct_series(sitk.ReadImage(str(SAMPLE)), folder / "3", study_uid=STUDY, series_uid=THIN,
                    patient_id="OTHER-7", series_number=3)
    with pytest.raises(ImageReadError, match=r"mixed: the folder holds DICOM series of 2 patients; give each exam its "
                                             r"own folder or choose one series with --series UID: "):
        read_image(folder)
    prior = _study(tmp_path / "prior", thin=False)
    write_ct_series(sitk.ReadImage(str(SAMPLE)), prior / "3", study_uid=generate_uid(), series_uid=THIN,
                    series_number=3)
    with pytest.raises(ImageReadError, match=r"prior: the folder holds DICOM series of 2 studies"):
        read_image(prior)


def test_a_folder_of_a_localizer_and_a_screenshot_names_both_reasons(tmp_path):
    folder = _study(tmp_path / "scouts", thin=False)
    for path in (folder / "2").iterdir():
        path.unlink()
    (folder / "2").rmdir()
    with pytest.raises(ImageReadError) as error:
        read_image(folder)
    assert str(error.value) == (f"{folder}: none of its 2 DICOM series is a CT volume: series #1 'Topogram' (a "
                                "localizer); series #9 'Key image' (a picture or a report, not CT slices)")


def test_batch_screens_a_study_folder_on_its_thin_series_and_says_so(tmp_path, capsys):
    _study(tmp_path / "in" / "exam1")
    assert main(["batch", str(tmp_path / "in"), "--out", str(tmp_path / "out")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "out" / "summary.csv")))
    assert [(row["case"], row["status"]) for row in rows] == [("exam1", "ok")]
    assert rows[0]["note"].startswith("analysed series #3 'Abdomen 3.0 B30f' (112 axial slices, 3 mm thick)")
    assert int(rows[0]["n_vertebrae"]) >= 5
    results = (tmp_path / "out" / "exam1" / "results.json").read_text()
    assert f'"series_uid": "{THIN}"' in results and "set aside: series #1 'Topogram'" in results


def test_analyze_on_a_study_folder_prints_the_choice_and_its_sr_references_the_measured_series(tmp_path, capsys):
    import pydicom

    folder = _study(tmp_path / "study")
    assert main(["analyze", str(folder), "--out", str(tmp_path / "out"), "--dicom-out", str(tmp_path / "dicom"),
                 "--quiet"]) == 0
    printed = capsys.readouterr()
    assert "study: analysed series #3 'Abdomen 3.0 B30f' (112 axial slices, 3 mm thick)" in printed.out + printed.err
    written = [pydicom.dcmread(path) for path in (tmp_path / "dicom").iterdir()]
    sr = next(dataset for dataset in written if dataset.Modality == "SR")
    evidence = {series.SeriesInstanceUID for study in sr.CurrentRequestedProcedureEvidenceSequence
                for series in study.ReferencedSeriesSequence}
    assert THIN in evidence and not evidence & {THICK, LOCALIZER, CAPTURE}


def test_info_on_a_study_folder_says_which_series_it_read(tmp_path, capsys):
    import json

    folder = _study(tmp_path / "study")
    capsys.readouterr()
    assert main(["info", str(folder)]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["series_uid"] == THIN and described["size"] == [122, 101, 112]
    assert described["series_choice"].startswith("analysed series #3 'Abdomen 3.0 B30f'")


def test_a_study_folder_of_a_frontal_and_a_lateral_film_names_the_lateral_file_to_give(tmp_path, capsys):
    """A spine study of radiographs (one DX series each for the frontal and the lateral film, real slice pixels): no CT
    volume, so the folder is refused; the line names the file whose Patient Orientation says it is lateral, which the
    radiograph analysis takes, and not the frontal one."""
    import numpy as np
    import pydicom
    from testdata import write_dx

    pixels = np.clip(np.rint(sitk.GetArrayFromImage(sitk.ReadImage(str(
        real("covid_sagittal", "A058062_19010108-077.nii.gz")))).squeeze() + 1024.0), 0, 4095).astype(np.uint16)
    folder = tmp_path / "study"
    folder.mkdir()
    for name, orientation in (("ap.dcm", ("R", "F")), ("lat.dcm", ("P", "F"))):
        write_dx(folder / name, pixel_spacing=(0.8, 0.8), rows=pixels.shape[0], cols=pixels.shape[1], pixels=pixels,
                 patient_orientation=orientation)
        film = pydicom.dcmread(folder / name)
        film.StudyInstanceUID, film.PatientID = STUDY, "SYNTH-0042"
        film.save_as(folder / name)
    assert main(["analyze", str(folder), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "none of its 2 DICOM series is a CT volume" in error[0]
    lateral = folder / "lat.dcm"
    assert error[0].endswith(f"the lateral radiograph among them is analysed when given as a file: {lateral}")
    assert main(["analyze", str(folder / "lat.dcm"), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    with pytest.raises(ImageReadError, match="none of its 2 DICOM series"):
        choose_series(folder, dicom_series_in(folder))
