"""Privacy: outputs carry no patient name or ID unless asked; the report says what it contains."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from hardhelpers import ct_like, image
from testdata import box_keypoints

from VertebralFractureLib.batch_runner import run_batch
from VertebralFractureLib.export.outputs import write_outputs
from VertebralFractureLib.io.images import geometry_of, image_from_array
from VertebralFractureLib.masks import body_masks_from_keypoints
from VertebralFractureLib.pipeline import AnalysisOptions, analyze, input_description
from VertebralFractureLib.schema import Vertebra

NAME, PATIENT_ID, BIRTH = "Doe^Jane", "PID-48151623", "19470312"


def write_identified_series(folder: Path) -> None:
    """A small CT series whose every file names the patient."""
    data = image(ct_like((12, 32, 32)), (0.8, 0.8, 2.0))
    folder.mkdir(parents=True)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    tags = {"0010|0010": NAME, "0010|0020": PATIENT_ID, "0010|0030": BIRTH, "0008|0060": "CT",
            "0020|000e": "1.2.826.0.1.3680043.2.1125.4815", "0020|0037": "1\\0\\0\\0\\1\\0",
            "0008|0080": "St Elsewhere Hospital"}
    for k in range(data.GetDepth()):
        slice_image = data[:, :, k]
        for tag, value in tags.items():
            slice_image.SetMetaData(tag, value)
        slice_image.SetMetaData("0020|0032", "\\".join(map(str, data.TransformIndexToPhysicalPoint((0, 0, k)))))
        slice_image.SetMetaData("0020|0013", str(k + 1))
        writer.SetFileName(str(folder / f"IM{k:04d}.dcm"))
        writer.Execute(slice_image)


def _with_vertebrae(analysis) -> None:
    """Measured vertebrae (as the detector would give), so every output file is written with content."""
    for label, z, heights in (("L1", 10.0, (25.0, 25.0, 25.0)), ("L2", -20.0, (16.0, 24.0, 25.0))):
        centre = np.array([12.0, 12.0, z])
        analysis.result.vertebrae.append(Vertebra(label, centre, box_keypoints(centre, heights), confidence=0.9))
    analysis.result.recompute()
    analysis.mid_sagittal = np.linspace(-1000, 1000, 40 * 30).reshape(40, 30)
    analysis.mid_points = {v.label: np.full((6, 2), 10.0) for v in analysis.result.vertebrae}


IDENTIFIERS = [s.encode() for s in (NAME, "Doe", "Jane", PATIENT_ID, BIRTH, "Elsewhere")]


def _leaks(folder: Path):
    return {(p.name, s.decode()) for p in folder.rglob("*") if p.is_file() for s in IDENTIFIERS if s in p.read_bytes()}


@pytest.fixture
def identified_series(tmp_path) -> Path:
    folder = tmp_path / "Doe^Jane_PID-48151623" / "series"
    write_identified_series(folder)
    return folder


def test_outputs_of_an_identified_dicom_series_carry_no_identity(identified_series, tmp_path):
    analysis = analyze(identified_series, AnalysisOptions(keypoints=False, masks=False))
    assert analysis.result.input["path"] == "series"  # the folder's own name only, not its parents
    assert input_description(analysis.geometry, identified_series)["path"] == "series"
    _with_vertebrae(analysis)
    analysis.labels = image_from_array(body_masks_from_keypoints(analysis.result, geometry_of(analysis.image)),
                                       geometry_of(analysis.image))
    written = write_outputs(analysis, tmp_path / "out")
    assert {"results", "genant", "keypoints", "centroids", "segmentation", "overview", "report"} <= set(written)
    assert _leaks(tmp_path / "out") == set()
    report = (tmp_path / "out" / "report.html").read_text()
    assert "No patient name or identifier is included (none was requested)." in report
    assert "What this report contains" in report


def test_identity_appears_only_when_asked(identified_series, tmp_path):
    analysis = analyze(identified_series, AnalysisOptions(keypoints=False, masks=False))
    _with_vertebrae(analysis)
    write_outputs(analysis, tmp_path / "out", identity={"Patient": NAME, "ID": PATIENT_ID})
    leaks = _leaks(tmp_path / "out")
    assert {name for name, _ in leaks} == {"report.html"}  # the report, and nothing else
    assert "No patient name" not in (tmp_path / "out" / "report.html").read_text()


def test_batch_outputs_carry_no_identity_from_the_dicom_tags(tmp_path, monkeypatch):
    """The worklist names cases by the user's own folder names; nothing from the DICOM tags reaches it."""
    import VertebralFractureLib.pipeline as pipeline

    real = pipeline.analyze

    def analyze_without_models(source, options=None, progress=None):  # the real reader, no network stages
        analysis = real(source, AnalysisOptions(keypoints=False, masks=False), progress)
        _with_vertebrae(analysis)
        return analysis

    monkeypatch.setattr(pipeline, "analyze", analyze_without_models)
    write_identified_series(tmp_path / "inbox" / "case01")
    rows = run_batch(tmp_path / "inbox", tmp_path / "batch")
    assert [(row["case"], row["status"], row["levels"]) for row in rows] == [("case01", "ok", "L1 L2")]
    assert _leaks(tmp_path / "batch") == set()
