"""Nothing lost: atomic exports, no silent overwrite, a batch that resumes after a kill.

The Slicer side (corrections survive a failed or cancelled re-run, cancel restores the scene) is
tested on a real MRML scene in Testing/Python/mrml/test_logic.py (test_cancel_leaves_the_scene_unchanged,
test_a_failed_rerun_keeps_the_corrections).
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from hardhelpers import ct_like, image, keypoint_weights_missing
from testdata import box_keypoints

import VertebralFractureLib.pipeline as pipeline
from VertebralFractureLib.batch_runner import run_batch
from VertebralFractureLib.cli import main
from VertebralFractureLib.export import outputs
from VertebralFractureLib.io.atomic import ExistingFileError
from VertebralFractureLib.schema import SpineResult, Vertebra

REPO = Path(__file__).resolve().parents[3]
REAL_ANALYZE = pipeline.analyze
#: The case ids of a.nii.gz, b.nii.gz, c.nii.gz in a batch.
CASES = ("a.nii.gz", "b.nii.gz", "c.nii.gz")


def fake_analysis(source):
    """What the pipeline returns, without models: the real reader and checks, two measured vertebrae."""
    analysis = REAL_ANALYZE(source, pipeline.AnalysisOptions(keypoints=False, masks=False))
    for label, z, heights in (("L1", 10.0, (25.0, 25.0, 25.0)), ("L2", -20.0, (16.0, 24.0, 25.0))):
        centre = np.array([12.0, 12.0, z])
        analysis.result.vertebrae.append(Vertebra(label, centre, box_keypoints(centre, heights)))
    analysis.result.recompute()
    analysis.mid_sagittal = np.linspace(-1000, 1000, 40 * 30).reshape(40, 30)
    analysis.mid_points = {v.label: np.full((6, 2), 10.0) for v in analysis.result.vertebrae}
    return analysis


@pytest.fixture
def ct_file(tmp_path) -> Path:
    path = tmp_path / "ct.nii.gz"
    sitk.WriteImage(image(ct_like()), str(path))
    return path


def snapshot(folder: Path):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_outputs_are_never_overwritten_unless_asked(ct_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(pipeline, "analyze", lambda source, options=None, progress=None: fake_analysis(source))
    out = tmp_path / "out"
    assert main(["analyze", str(ct_file), "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    before = snapshot(out)
    assert set(before) == set(outputs.OUTPUT_FILES) - {"segmentation.seg.nrrd", "abnormality.seg.nrrd",
                                                       "fracture_map.nii.gz"}
    (out / "genant.csv").write_text("my corrected table\n")
    before = snapshot(out)
    assert main(["analyze", str(ct_file), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"vertebral-fracture analyze: error: {out} already holds results.json, genant.csv")
    assert err.endswith("pass --overwrite to replace them")
    assert snapshot(out) == before  # nothing written, nothing left behind
    assert main(["analyze", str(ct_file), "--out", str(out), "--quiet", "--overwrite"]) == 0
    assert (out / "genant.csv").read_text() != "my corrected table\n"


def test_an_export_failing_half_way_leaves_no_file_and_no_temporaries(ct_file, tmp_path, monkeypatch):
    """The outputs are one unit: a failure while writing the last file leaves none of them."""
    analysis = fake_analysis(ct_file)
    out = tmp_path / "out"

    def broken_report(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr("VertebralFractureLib.export.report.render_report", broken_report)
    with pytest.raises(OSError, match="No space left"):
        outputs.write_outputs(analysis, out)
    assert snapshot(out) == {}
    monkeypatch.undo()
    outputs.write_outputs(analysis, out)
    files = snapshot(out)
    assert SpineResult.from_json(files["results.json"].decode()).to_json() == analysis.result.to_json()
    assert "report.html" in files and not [name for name in files if name.startswith(".")]
    with pytest.raises(ExistingFileError, match="already holds results.json, .*; pass --overwrite to replace them"):
        outputs.write_outputs(analysis, out)


def test_batch_resumes_after_an_interruption_in_process(tmp_path, monkeypatch):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name in ("a", "b", "c"):
        sitk.WriteImage(image(ct_like(seed=ord(name))), str(inbox / f"{name}.nii.gz"))
    calls = []

    def analyze(source, options=None, progress=None):
        calls.append(Path(source).name)
        return fake_analysis(source)

    monkeypatch.setattr(pipeline, "analyze", analyze)
    real_write = outputs.write_outputs

    def killed_while_writing_b(analysis, out_dir, **kwargs):
        if analysis.result.input["path"] == "b.nii.gz":
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            (Path(out_dir) / "results.json").write_text('{"schema": "vertebral-fr')  # half written
            raise KeyboardInterrupt  # a kill: not an error the batch records
        return real_write(analysis, out_dir, **kwargs)

    monkeypatch.setattr(outputs, "write_outputs", killed_while_writing_b)
    with pytest.raises(KeyboardInterrupt, match="^$"):  # the bare interrupt of the kill, not wrapped
        run_batch(inbox, tmp_path / "out")
    assert calls == ["a.nii.gz", "b.nii.gz"]
    assert not (tmp_path / "out" / "b.nii.gz").exists()  # the half-written case is only in a hidden staging folder
    monkeypatch.setattr(outputs, "write_outputs", real_write)
    rows = {row["case"]: row for row in run_batch(inbox, tmp_path / "out")}
    assert calls == ["a.nii.gz", "b.nii.gz", "b.nii.gz", "c.nii.gz"]  # a not recomputed
    assert {case: row["status"] for case, row in rows.items()} == dict(zip(CASES, ("ok (resumed)", "ok", "ok")))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [*CASES, "summary.csv"]
    assert all(row["levels"] == "L1 L2" for row in rows.values())


SCRIPT = """
import sys, time
from pathlib import Path
sys.path[:0] = [{here!r}, {tests!r}]
import test_nothing_lost as helpers
import VertebralFractureLib.pipeline as pipeline
from VertebralFractureLib.cli import main

log = Path({log!r})

def analyze(source, options=None, progress=None):
    with log.open("a") as handle:
        handle.write(Path(source).name + "\\n")
    if Path(source).name == "b.nii.gz" and {slow}:
        time.sleep(60)  # killed here
    return helpers.fake_analysis(source)

pipeline.analyze = analyze
sys.exit(main(["batch", {inbox!r}, "--out", {out!r}]))
"""


def _batch_process(tmp_path: Path, slow: bool) -> subprocess.Popen:
    script = tmp_path / ("slow.py" if slow else "fast.py")
    script.write_text(SCRIPT.format(here=str(Path(__file__).resolve().parent),
                                    tests=str(Path(__file__).resolve().parents[1]), log=str(tmp_path / "log"),
                                    slow=slow,
                                    inbox=str(tmp_path / "inbox"), out=str(tmp_path / "out")))
    return subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)


def test_batch_resumes_after_a_kill(tmp_path):
    """``vertebral-fracture batch`` killed (SIGKILL) during the second case; the rerun resumes.

    The models are replaced by :func:`fake_analysis` (real reading, checks and outputs) to keep it fast.
    """
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name in ("a", "b", "c"):
        sitk.WriteImage(image(ct_like(seed=ord(name))), str(inbox / f"{name}.nii.gz"))
    process = _batch_process(tmp_path, slow=True)
    log = tmp_path / "log"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "b.nii.gz" not in (log.read_text() if log.exists() else ""):
        time.sleep(0.05)
    assert (tmp_path / "out" / "a.nii.gz" / "results.json").exists(), process.communicate(timeout=5)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    mtime = (tmp_path / "out" / "a.nii.gz" / "results.json").stat().st_mtime_ns
    left = sorted(p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith("."))
    assert left == ["a.nii.gz", "summary.csv"]
    process = _batch_process(tmp_path, slow=False)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr.decode()
    assert "3 cases: 3 analysed, 0 failed" in stdout.decode()
    assert log.read_text().split() == ["a.nii.gz", "b.nii.gz", "b.nii.gz", "c.nii.gz"]  # a not recomputed
    assert (tmp_path / "out" / "a.nii.gz" / "results.json").stat().st_mtime_ns == mtime
    with (tmp_path / "out" / "summary.csv").open(newline="") as handle:
        statuses = {row["case"]: row["status"] for row in csv.DictReader(handle)}
    assert statuses == {"a.nii.gz": "ok (resumed)", "b.nii.gz": "ok", "c.nii.gz": "ok"}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.nii.gz", "b.nii.gz", "c.nii.gz", "summary.csv"]


def _batch(tmp_path: Path) -> subprocess.Popen:
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "VertebralFractureLib", "batch", str(tmp_path / "inbox"), "--out",
                             str(tmp_path / "out"), "--device", "cpu"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=environ_with_repo(environment), start_new_session=True)


def environ_with_repo(environment):
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), environment.get("PYTHONPATH", "")]))
    return environment


@pytest.mark.skipif(keypoint_weights_missing(), reason="keypoint detector weights (weights/keypoints.pt) not shipped")
@pytest.mark.slow
def test_real_batch_resumes_after_a_kill(synthetic_case, tmp_path):
    """The real pipeline: ``batch`` killed (SIGKILL) after its first case, while writing the second; rerun resumes.

    The fast version below runs the same command with the models replaced; this one (about 30 s) runs too.
    """
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name in ("a", "b", "c"):
        sitk.WriteImage(synthetic_case.ct, str(inbox / f"{name}.nii.gz"))
    out = tmp_path / "out"
    process = _batch(tmp_path)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if (out / "a.nii.gz" / "results.json").exists() and (out / ".b.nii.gz.partial").exists():
            break  # the second case is being written right now
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    first = {case: (out / case / "results.json").stat().st_mtime_ns for case in CASES if (out / case).exists()}
    assert "a.nii.gz" in first, process.stderr.read().decode()
    for case in first:  # whatever the kill interrupted, a case folder is complete or absent
        written = {p.name for p in (out / case).iterdir()}
        assert set(outputs.OUTPUT_FILES) - {"fracture_map.nii.gz", "abnormality.seg.nrrd"} <= written
    process = _batch(tmp_path)
    stdout, stderr = process.communicate(timeout=180)
    assert process.returncode == 0, stderr.decode()
    assert "3 cases: 3 analysed, 0 failed" in stdout.decode()
    with (out / "summary.csv").open(newline="") as handle:
        statuses = {row["case"]: row["status"] for row in csv.DictReader(handle)}
    assert statuses == {case: "ok (resumed)" if case in first else "ok" for case in CASES}
    assert all((out / case / "results.json").stat().st_mtime_ns == mtime for case, mtime in first.items())
    assert sorted(p.name for p in out.iterdir()) == [*CASES, "summary.csv"]  # no staging folder left
    results = [SpineResult.from_json((out / case / "results.json").read_text()) for case in CASES]
    assert results[0].labels and all(r.labels == results[0].labels for r in results)
