"""``vertebral-fracture analyze`` on the bundled sample CT: every output exists and opens."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import SimpleITK as sitk

from VertebralFractureLib.cli import main
from VertebralFractureLib.export.outputs import OUTPUT_FILES
from VertebralFractureLib.export.segmentation import read_seg_nrrd
from VertebralFractureLib.io.mrk_json import read_result_markups
from VertebralFractureLib.levels import label_from_level
from VertebralFractureLib.schema import SpineResult


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample")
    assert main(["analyze", "--out", str(out), "--quiet"]) == 0
    return out


def test_every_output_is_written(outputs):
    assert sorted(p.name for p in outputs.iterdir()) == sorted(OUTPUT_FILES)


def test_results_json_follows_the_schema_and_measures_the_lumbar_spine(outputs):
    document = json.loads((outputs / "results.json").read_text())
    assert document["schema"] == "vertebral-fracture/2" and document["frame"] == "LPS"
    assert document["input"]["size"] == [122, 101, 112] and document["input"]["path"] == "sample_ct.nii.gz"
    result = SpineResult.from_dict(document)
    # what a reader sees on the bundled real CT (annotated L1-L5, T12 cut by the superior edge; no fracture)
    assert result.labels == ["T12", "L1", "L2", "L3", "L4", "L5"]
    statuses = {entry["label"]: (entry["status"], entry["status_reason"]) for entry in document["vertebrae"]}
    assert statuses["T12"][0] == "not_assessed" and "cut by the edge of the field of view" in statuses["T12"][1]
    assert "genant" not in document["vertebrae"][0] and "heights_mm" not in document["vertebrae"][0]
    assert all(statuses[level] == ("assessed", None) for level in ("L1", "L2", "L3", "L4", "L5"))
    assert document["patient"]["max_grade"] <= 1 and document["patient"]["n_assessed"] == 5
    assert document["patient"]["not_assessed"] == {"T12": statuses["T12"][1]}
    assert all(v.keypoints.shape == (6, 3) for v in result.vertebrae)
    heights_by_level = {entry["label"]: entry["heights_mm"] for entry in document["vertebrae"] if "heights_mm" in entry}
    for v in result.vertebrae[1:]:
        heights = heights_by_level[v.label]
        assert 10.0 < min(heights.values()) and max(heights.values()) < 45.0
        assert v.measure.G == pytest.approx(min(v.measure.heights) / max(v.measure.heights))
    assert set(document["timings_s"]) >= {"load", "centreline", "straighten", "keypoints", "quality_gate", "masks"}
    assert "centreline" in document["models"] and "keypoints" in document["models"]


def test_keypoints_lie_in_the_image_and_on_bone(outputs):
    from VertebralFractureLib.data import sample_ct_path
    from VertebralFractureLib.io.images import geometry_of

    ct = sitk.ReadImage(str(sample_ct_path()))
    geometry = geometry_of(ct)
    array = sitk.GetArrayFromImage(ct)
    result = SpineResult.from_json((outputs / "results.json").read_text())
    centroids = np.array([v.centroid for v in result.vertebrae])
    assert np.all(geometry.contains(centroids))
    index = np.round(geometry.lps_to_index(centroids)).astype(int)
    # trabecular bone of this elderly spine is 70-180 HU at 3 mm; soft tissue around it is 20-50 HU
    assert np.median(array[index[:, 2], index[:, 1], index[:, 0]]) > 60


def test_csv_and_markups_agree_with_results(outputs):
    result = SpineResult.from_json((outputs / "results.json").read_text())
    with open(outputs / "genant.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["level"] for r in rows] == result.labels
    assert [r["status"] for r in rows] == [v.status for v in result.vertebrae]
    assessed = [v for v in result.vertebrae if v.assessed]
    assert [float(r["G"]) for r in rows if r["status"] == "assessed"] == pytest.approx([v.measure.G for v in assessed])
    assert [r["G"] for r in rows if r["status"] != "assessed"] == ["" for v in result.vertebrae if not v.assessed]
    from_markups = read_result_markups(outputs / "keypoints.mrk.json")
    assert from_markups.labels == result.labels
    for a, b in zip(from_markups.vertebrae, result.vertebrae):
        assert a.keypoints == pytest.approx(b.keypoints, abs=1e-4)


def test_markups_open_in_slicers_storage_node(outputs, mrml_scene):
    from VertebralFractureLib.mrml.markups import read_markups_node

    result = SpineResult.from_json((outputs / "results.json").read_text())
    node = read_markups_node(outputs / "keypoints.mrk.json", scene=mrml_scene)
    assert node.GetNumberOfControlPoints() == 6 * len(result.vertebrae)
    assert node.GetNthControlPointLabel(0) == f"{result.labels[0]} anterior superior"
    ras = np.array(node.GetNthControlPointPosition(0))
    assert ras == pytest.approx(result.vertebrae[0].keypoints[0] * [-1, -1, 1], abs=1e-3)
    centroids = read_markups_node(outputs / "centroids.mrk.json", scene=mrml_scene)
    assert [centroids.GetNthControlPointLabel(i) for i in range(centroids.GetNumberOfControlPoints())] == result.labels


def test_segmentation_opens_with_simpleitk_and_slicer(outputs, mrml_scene):
    from VertebralFractureLib.mrml.segmentations import read_segmentation

    result = SpineResult.from_json((outputs / "results.json").read_text())
    labels, segments = read_seg_nrrd(outputs / "segmentation.seg.nrrd")
    assert [s.name for s in segments] == result.labels
    counts = np.bincount(sitk.GetArrayFromImage(labels).ravel())
    for level in result.labels:
        assert counts[label_from_level(level)] > 100  # every vertebra has a body mask
    node = read_segmentation(outputs / "segmentation.seg.nrrd", scene=mrml_scene)
    segmentation = node.GetSegmentation()
    names = [segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())]
    assert names == result.labels


def test_report_and_overview(outputs):
    html = (outputs / "report.html").read_text()
    assert "data:image/png;base64," in html and "Genant table" in html
    assert "No patient name or identifier is included" in html
    png = (outputs / "overview.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


def test_refuses_to_overwrite_without_being_asked(outputs, capsys):
    before = (outputs / "results.json").read_bytes()
    assert main(["analyze", "--out", str(outputs), "--quiet"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (outputs / "results.json").read_bytes() == before
