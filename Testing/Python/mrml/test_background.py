"""The analysis in a background process: the real CLI on the bundled sample CT, and a run cancelled halfway."""

from __future__ import annotations

import time

import pytest


def _sample_volume(scene):
    from VertebralFractureLib.data import sample_ct_path
    from VertebralFractureLib.io.images import read_image
    from VertebralFractureLib.mrml.volumes import volume_from_image

    return volume_from_image(read_image(sample_ct_path()), scene=scene, name="sample")


def _poll_until(job, done, timeout=600.0):
    reports = []
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        report = job.poll()
        reports.append(report)
        if done(report):
            return reports
        time.sleep(0.2)
    job.cancel()
    raise AssertionError(f"no end after {timeout} s; last: {reports[-1]}")


def test_progress_lines_are_parsed():
    from VertebralFractureLib.mrml.background import parse_progress

    assert parse_progress("[ 39.5 %] detecting vertebrae and keypoints") == (0.395, "detecting vertebrae and keypoints")
    assert parse_progress("[100.0 %] done: 6 vertebrae") == (1.0, "done: 6 vertebrae")
    assert parse_progress("warning: thin scan") is None


def test_background_run_of_the_sample_ct(mrml_scene, tmp_path):
    from VertebralFractureLib.mrml.logic import VertebralFractureLogic
    from VertebralFractureLib.mrml.tables import table_rows

    logic = VertebralFractureLogic(mrml_scene)
    volume = _sample_volume(mrml_scene)
    count = mrml_scene.GetNumberOfNodes()
    job = logic.start_background(volume, tmp_path, device="cpu", python=None)
    reports = _poll_until(job, lambda r: r.state != "running")
    assert reports[-1].state == "done", reports[-1]
    assert mrml_scene.GetNumberOfNodes() == count  # nothing added while it ran
    fractions = [r.fraction for r in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    log = [line for r in reports for line in r.log]
    assert any(line.startswith("[") and "detecting vertebrae and keypoints" in line for line in log), log
    assert any(line.startswith("6 vertebrae") for line in log)
    nodes = logic.finish_background(job, volume)
    rows = table_rows(nodes.table)
    assert [r["Level"] for r in rows] == ["T12", "L1", "L2", "L3", "L4", "L5"]
    assert [r["Status"] for r in rows] == ["not assessed"] * 2 + ["assessed"] * 4
    assert rows[0]["Reason"] == "cut by the edge of the field of view (superior edge)"
    assert nodes.keypoints.GetNumberOfControlPoints() == 36
    segmentation = nodes.segmentation.GetSegmentation()
    names = sorted(segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments()))
    assert names == ["L1", "L2", "L3", "L4", "L5", "T12"]


def test_cancelled_halfway_leaves_the_scene_untouched(mrml_scene, tmp_path):
    from VertebralFractureLib.mrml.logic import VertebralFractureLogic

    logic = VertebralFractureLogic(mrml_scene)
    volume = _sample_volume(mrml_scene)
    count = mrml_scene.GetNumberOfNodes()
    job = logic.start_background(volume, tmp_path, device="cpu")
    reports = _poll_until(job, lambda r: r.fraction >= 0.39 or r.state != "running")
    assert reports[-1].state == "running", reports[-1]
    job.cancel()
    assert job.wait(30) == "cancelled" and job.process.returncode != 0
    assert job.poll().state == "cancelled"
    assert not (tmp_path / "out" / "results.json").exists()
    with pytest.raises(RuntimeError, match="^the analysis cancelled: "):
        logic.finish_background(job, volume)
    assert mrml_scene.GetNumberOfNodes() == count
