"""The worklist (``summary.csv``) and atomic writes: tests aimed at the mutations that used to survive.

* The worklist lists the most severe cases first (grade 3, 2, 1, 0), failed cases last, and its
  ``max_grade`` column is the patient's highest grade.
* A case that failed in an earlier run is analysed again by default, and not with ``retry_failed=False``.
* An atomic write renames its temporary file onto the target: the target is the very file that was
  written (same inode), and a reader holding the old file keeps the old content (a plain copy
  would rewrite the old file in place, which a reader can see half-written).
"""

from __future__ import annotations

import csv
import os

import numpy as np
from testdata import box_keypoints

from VertebralFractureLib.batch_runner import run_batch, summary_row, write_summary
from VertebralFractureLib.io.atomic import atomic_path, atomic_write
from VertebralFractureLib.schema import SpineResult, Vertebra

#: anterior height (mm) of L2 giving G = ha / 25 mm: 0.96 (grade 0), 0.78 (1), 0.68 (2), 0.48 (3).
ANTERIOR_HEIGHT = {0: 24.0, 1: 19.5, 2: 17.0, 3: 12.0}


def _result(grade: int) -> SpineResult:
    """L1-L3 of 25 mm; L2's anterior height lowered to give ``grade``."""
    vertebrae = []
    for k, label in enumerate(("L1", "L2", "L3")):
        centre = (0.0, 0.0, -35.0 * k)
        heights = (ANTERIOR_HEIGHT[grade], 25.0, 25.0) if label == "L2" else (25.0, 25.0, 25.0)
        keypoints = box_keypoints(centre, heights)
        vertebrae.append(Vertebra(label, keypoints.mean(axis=0), keypoints, confidence=0.99))
    result = SpineResult(vertebrae)
    result.recompute()
    return result


def _read_summary(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_results_of_each_grade_give_that_grade():
    for grade in (0, 1, 2, 3):
        by_label = {v.label: v for v in _result(grade).vertebrae}
        assert by_label["L2"].measure.grade == grade
        assert by_label["L1"].measure.grade == 0 and by_label["L3"].measure.grade == 0


def test_worklist_puts_the_most_severe_first_and_failures_last(tmp_path):
    # case names in alphabetical order != severity order, so sorting by name alone fails too
    rows = [
        {"case": "a_normal", "status": "ok", **summary_row(_result(0))},
        {"case": "b_failed", "status": "error", "error": "InputError: not a CT"},
        {"case": "c_severe", "status": "ok", **summary_row(_result(3))},
        {"case": "d_mild", "status": "ok (resumed)", **summary_row(_result(1))},
        {"case": "e_moderate", "status": "ok", **summary_row(_result(2))},
    ]
    write_summary(rows, tmp_path / "summary.csv")
    summary = _read_summary(tmp_path / "summary.csv")
    assert [r["case"] for r in summary] == ["c_severe", "e_moderate", "d_mild", "a_normal", "b_failed"]
    assert [r["max_grade"] for r in summary] == ["3", "2", "1", "0", ""]
    assert [r["worst_level"] for r in summary] == ["L2", "L2", "L2", "", ""]
    assert summary[0]["fractured_levels"] == "L2" and summary[0]["levels"] == "L1 L2 L3"
    assert float(summary[0]["min_G"]) == np.float64(0.48)
    assert summary[-1]["error"] == "InputError: not a CT" and summary[-1]["status"] == "error"


def test_max_grade_is_the_patients_highest_grade():
    for grade in (0, 1, 2, 3):
        row = summary_row(_result(grade))
        assert row["max_grade"] == grade
        assert row["n_vertebrae"] == 3 and row["n_assessed"] == 3


def test_not_assessed_vertebra_does_not_raise_max_grade():
    result = _result(3)
    result.vertebrae[1].not_assessed("cut by the edge of the field of view (superior edge)")
    result.recompute()
    row = summary_row(result)
    assert row["max_grade"] == 0 and row["n_assessed"] == 2 and row["not_assessed"] == "L2"


def _error_file(out):
    (found,) = [p for p in out.rglob("error.txt") if not any(part.startswith(".") for part in p.relative_to(out).parts)]
    return found


def test_failed_cases_are_retried_by_default_and_only_then(tmp_path):
    """A retried case writes a new ``error.txt`` (a new file); a case not retried keeps the old one."""
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    (inputs / "case.nii.gz").write_bytes(b"\x1f\x8b not really gzip")
    (first,) = run_batch(inputs, out)
    assert first["status"] == "error" and "case.nii.gz" in first["error"]
    error_file = _error_file(out)
    before = (os.stat(error_file).st_ino, error_file.read_text())

    (kept,) = run_batch(inputs, out, retry_failed=False)
    assert kept["status"] == "error" and kept["error"]
    assert (os.stat(_error_file(out)).st_ino, _error_file(out).read_text()) == before, "not analysed again"

    (retried,) = run_batch(inputs, out)  # default: failed cases are analysed again
    assert retried["status"] == "error" and "case.nii.gz" in retried["error"]
    assert os.stat(_error_file(out)).st_ino != before[0], "analysed again: a new error.txt"
    summary = _read_summary(out / "summary.csv")
    assert [r["status"] for r in summary] == ["error"] and "case.nii.gz" in summary[0]["error"]


def test_atomic_write_renames_the_written_file_onto_the_target(tmp_path):
    target = tmp_path / "notes.txt"
    written = {}

    def writer(path):
        path.write_text("new")
        written["inode"] = os.stat(path).st_ino

    atomic_write(target, writer)
    assert target.read_text() == "new"
    assert os.stat(target).st_ino == written["inode"], "the temporary file itself becomes the target"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_atomic_overwrite_never_touches_the_old_file_in_place(tmp_path):
    target = tmp_path / "summary.csv"
    target.write_text("old worklist")
    reader = tmp_path / "held_by_a_reader.csv"
    os.link(target, reader)  # a reader that opened the old file keeps seeing the old file
    with atomic_path(target, overwrite=True) as temporary:
        temporary.write_text("new worklist")
        assert target.read_text() == "old worklist"  # nothing visible before the rename
    assert target.read_text() == "new worklist"
    assert reader.read_text() == "old worklist"
    assert os.stat(target).st_ino != os.stat(reader).st_ino
    assert sorted(p.name for p in tmp_path.iterdir()) == ["held_by_a_reader.csv", "summary.csv"]
