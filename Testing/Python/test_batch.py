import csv

import numpy as np
import SimpleITK as sitk

from VertebralFractureLib.batch_runner import find_cases, run_batch


def _write(path, array, spacing=(1.0, 1.0, 1.0)):
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path))


def test_find_cases_lists_volumes_and_skips_masks_and_hidden(tmp_path):
    _write(tmp_path / "a.nii.gz", np.zeros((9, 9, 9), np.int16))
    _write(tmp_path / "sub" / "b.nrrd", np.zeros((9, 9, 9), np.int16))
    _write(tmp_path / "a_msk.nii.gz", np.zeros((9, 9, 9), np.uint8))
    _write(tmp_path / ".hidden" / "c.nii.gz", np.zeros((9, 9, 9), np.int16))
    (tmp_path / "notes.txt").write_text("x")
    found = [(c.name, c.path.name) for c in find_cases(tmp_path)]
    assert found == [("a.nii.gz", "a.nii.gz"), ("sub__b.nrrd", "b.nrrd")]


def test_series_folders_of_one_study_are_one_case_and_of_two_studies_stay_apart(tmp_path):
    from pydicom.uid import generate_uid
    from testdata import write_ct_series

    image = sitk.GetImageFromArray(np.zeros((9, 9, 9), np.int16))

    def series(folder, study):
        write_ct_series(image, tmp_path / folder, study_uid=study, series_uid=generate_uid())

    first, second, third = generate_uid(), generate_uid(), generate_uid()
    series("pat1/exam_a/SE1", first)  # an export: one folder per series of each exam
    series("pat1/exam_a/SE2", first)
    series("pat1/exam_b/SE1", second)
    series("pat2/SE1", third)  # two exams' series side by side in one folder
    series("pat2/SE2", generate_uid())
    series("flat1", first)  # series folders straight under the batch folder
    series("flat2", first)
    found = [(c.name, c.path.relative_to(tmp_path).as_posix()) for c in find_cases(tmp_path)]
    assert found == [("flat1", "flat1"), ("flat2", "flat2"), ("pat1__exam_a", "pat1/exam_a"),
                     ("pat1__exam_b__SE1", "pat1/exam_b/SE1"), ("pat2__SE1", "pat2/SE1"), ("pat2__SE2", "pat2/SE2")]


def test_a_series_written_without_the_dicom_preamble_is_found_and_notes_are_not(tmp_path):
    import pydicom
    from pydicom.uid import generate_uid
    from testdata import write_ct_series

    write_ct_series(sitk.GetImageFromArray(np.zeros((9, 9, 9), np.int16)), tmp_path / "export" / "old",
                    study_uid=generate_uid(), series_uid=generate_uid())
    for path in (tmp_path / "export" / "old").iterdir():  # the bare data set, as older exports write it
        dataset = pydicom.dcmread(path)
        dataset.preamble = None
        del dataset.file_meta
        dataset.save_as(path, implicit_vr=True, little_endian=True, enforce_file_format=False)
        assert path.read_bytes()[128:132] != b"DICM"
    (tmp_path / "export" / "notes").mkdir()
    (tmp_path / "export" / "notes" / "report").write_text("1.2.3 is not a series\n")
    (tmp_path / "export" / "notes" / "data.bin").write_bytes(bytes(range(256)) * 8)
    assert [(c.name, c.path.name) for c in find_cases(tmp_path / "export")] == [("old", "old")]


def test_broken_and_non_ct_files_are_reported_and_never_stop_the_batch(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "broken.nii.gz").write_bytes(b"\x1f\x8b not really gzip")
    _write(inputs / "mr.nii.gz", np.random.default_rng(0).integers(0, 3000, (20, 20, 20)).astype(np.int16))
    rows = run_batch(inputs, tmp_path / "out")
    by_case = {r["case"]: r for r in rows}
    assert by_case["broken.nii.gz"]["status"] == "error" and "broken.nii.gz" in by_case["broken.nii.gz"]["error"]
    assert by_case["mr.nii.gz"]["status"] == "error" and "MR" in by_case["mr.nii.gz"]["error"]
    assert (tmp_path / "out" / "mr.nii.gz" / "error.txt").read_text().startswith("InputError")
    with open(tmp_path / "out" / "summary.csv") as handle:
        summary = list(csv.DictReader(handle))
    assert sorted(r["case"] for r in summary) == ["broken.nii.gz", "mr.nii.gz"]
    assert {r["status"] for r in summary} == {"error"}
    assert not list((tmp_path / "out").glob(".*partial"))


def test_a_folder_with_a_real_ct_a_broken_file_and_a_non_ct(tmp_path):
    import shutil

    from VertebralFractureLib.data import sample_ct_path

    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(sample_ct_path(), inputs / "patient1.nii.gz")
    (inputs / "broken.nrrd").write_text("NRRD0004\ntype: short\ndimension: 3\nsizes: 10 10 10\n")
    (inputs / "notes.mha").write_text("not an image")
    rows = {r["case"]: r for r in run_batch(inputs, tmp_path / "out")}
    assert rows["patient1.nii.gz"]["status"] == "ok" and rows["patient1.nii.gz"]["n_vertebrae"] >= 4
    assert rows["broken.nrrd"]["status"] == "error" and rows["notes.mha"]["status"] == "error"
    with open(tmp_path / "out" / "summary.csv") as handle:
        summary = list(csv.DictReader(handle))
    assert summary[0]["case"] == "patient1.nii.gz"  # analysed cases first, errors after
    assert (tmp_path / "out" / "patient1.nii.gz" / "results.json").exists()
    rerun = {r["case"]: r for r in run_batch(inputs, tmp_path / "out")}
    assert rerun["patient1.nii.gz"]["status"] == "ok (resumed)"


def test_live_progress_counts_done_failed_left_with_throughput_and_time_left():
    from VertebralFractureLib.batch_runner import LiveProgress

    ticks = iter([0.0, 30.0, 60.0, 90.0])
    progress = LiveProgress(clock=lambda: next(ticks))
    assert progress.line(1, 4, {"case": "a.nii.gz", "status": "ok (resumed)"}) == (
        "[#####...............] 1 done, 0 failed, 3 left | -- cases/min | a.nii.gz: ok (resumed)")
    assert progress.line(2, 4, {"case": "b.nii.gz", "status": "ok"}) == (
        "[##########..........] 2 done, 0 failed, 2 left | 1.0 cases/min, about 2 min left | b.nii.gz: ok")
    assert progress.line(3, 4, {"case": "c.nii.gz", "status": "error"}) == (
        "[###############.....] 2 done, 1 failed, 1 left | 1.3 cases/min, about 45 s left | c.nii.gz: error")


def test_enhanced_cts_side_by_side_in_one_folder_are_one_case_each(tmp_path):
    """A recent scanner's export: one multi-frame file per exam, several exams in one folder (read as one folder they
    are two patients' series and the folder is refused); a folder with one such file stays a folder case."""
    from pydicom.uid import generate_uid
    from testdata import real, write_ct_series, write_enhanced_ct

    sample = sitk.ReadImage(str(real("totalsegmentator", "example_ct.nii.gz")))[:, :, 40:52]
    for n in (1, 2):
        write_ct_series(sample, tmp_path / "slices" / f"p{n}", study_uid=generate_uid(), series_uid=generate_uid(),
                        patient_id=f"P{n}")
        write_enhanced_ct(tmp_path / "slices" / f"p{n}", tmp_path / "export" / "flat" / f"exam{n}.dcm")
    write_enhanced_ct(tmp_path / "slices" / "p1", tmp_path / "export" / "single" / "ct.dcm")
    write_ct_series(sample, tmp_path / "export" / "series", study_uid=generate_uid(), series_uid=generate_uid())
    found = [(c.name, c.path.relative_to(tmp_path / "export").as_posix()) for c in find_cases(tmp_path / "export")]
    assert found == [("flat__exam1.dcm", "flat/exam1.dcm"), ("flat__exam2.dcm", "flat/exam2.dcm"),
                     ("series", "series"), ("single", "single")]
    # the same files straight in the batch folder
    assert [c.name for c in find_cases(tmp_path / "export" / "flat")] == ["exam1.dcm", "exam2.dcm"]
