"""Export -> clear scene -> import gives the same annotations; exports never overwrite silently or half-write."""

import json

import numpy as np
import pytest
from mrml.helpers import move_point

from VertebralFractureLib.io.atomic import ExistingFileError


def _edited(logic, spine_result):
    nodes = logic.show_result(spine_result, name="case")
    move_point(nodes.keypoints, "L1:1", (0.0, 0.0, -3.0))
    logic.relabel(nodes, "L2", "L3", follow=False)
    return nodes


@pytest.mark.parametrize("file_name", ["case.json", "case.csv", "case.mrk.json"])
def test_export_clear_import_gives_the_same_annotations(logic, spine_result, mrml_scene, tmp_path, file_name):
    from VertebralFractureLib.mrml.logic import VertebralFractureLogic

    nodes = _edited(logic, spine_result)
    before = nodes.result
    written = logic.export_annotations(nodes, tmp_path / file_name)
    assert written[0] == tmp_path / file_name
    mrml_scene.Clear(0)
    assert mrml_scene.GetFirstNodeByClass("vtkMRMLMarkupsFiducialNode") is None

    again = VertebralFractureLogic(mrml_scene).import_annotations(tmp_path / file_name)
    result = again.result
    assert result.labels == before.labels == ["T12", "L1", "L3"]
    for old, new in zip(before.vertebrae, result.vertebrae):
        np.testing.assert_allclose(new.keypoints, old.keypoints, atol=1e-6)
        np.testing.assert_allclose(new.centroid, old.centroid, atol=1e-6)
        assert new.measure.grade == old.measure.grade
    if file_name == "case.json":  # the project's file keeps scores and the edit history
        assert [v.to_dict() for v in result.vertebrae] == [v.to_dict() for v in before.vertebrae]
        assert [e.action for e in result.vertebra("L1").history] == ["edit keypoints"]
    assert again.keypoints.GetNumberOfControlPoints() == 18 and again.table.GetNumberOfRows() == 3


def test_verse_centroids_round_trip(shown, case, logic, tmp_path):
    path = tmp_path / "sub-case_ctd.json"
    logic.export_annotations(shown, path)
    document = json.loads(path.read_text())
    assert document[0] == {"direction": ["P", "I", "R"]} and len(document) == len(case.truth.labels) + 1
    node = logic.import_verse_centroids(path, shown.volume)
    assert [node.GetNthControlPointLabel(i) for i in range(node.GetNumberOfControlPoints())] == case.truth.labels
    ras = np.zeros(3)
    node.GetNthControlPointPosition(1, ras)
    np.testing.assert_allclose([-ras[0], -ras[1], ras[2]], case.truth.vertebrae[1].centroid, atol=1e-6)
    with pytest.raises(ValueError, match="hold no keypoints"):
        logic.read_annotations_file(path)


def test_export_never_overwrites_silently(logic, spine_result, tmp_path):
    nodes = logic.show_result(spine_result)
    target = tmp_path / "case.json"
    target.write_text("earlier work")
    with pytest.raises(ExistingFileError, match="case.json exists; refusing to overwrite"):
        logic.export_annotations(nodes, target)
    assert target.read_text() == "earlier work"
    (tmp_path / "pair_centroids.mrk.json").write_text("earlier centroids")
    with pytest.raises(ExistingFileError, match="pair_centroids.mrk.json exists; refusing to overwrite"):
        logic.export_annotations(nodes, tmp_path / "pair.mrk.json")  # the pair's second file exists
    assert not (tmp_path / "pair.mrk.json").exists()
    logic.export_annotations(nodes, target, overwrite=True)
    assert json.loads(target.read_text())["schema"] == "vertebral-fracture-annotation/2"
    with pytest.raises(ValueError, match="input volume"):
        logic.export_annotations(nodes, tmp_path / "x_ctd.json")
    with pytest.raises(ValueError, match="cannot tell the format"):
        logic.export_annotations(nodes, tmp_path / "x.txt")


def test_a_failed_export_leaves_no_file(logic, spine_result, tmp_path, monkeypatch):
    from VertebralFractureLib.mrml import markups

    nodes = logic.show_result(spine_result)
    original = markups.write_markups_node

    def failing(node, path, overwrite=False):
        if "centroids" in str(path):
            raise OSError("disk full")
        return original(node, path, overwrite=overwrite)

    monkeypatch.setattr(markups, "write_markups_node", failing)
    with pytest.raises(OSError, match="disk full"):
        logic.export_annotations(nodes, tmp_path / "pair.mrk.json")
    assert list(tmp_path.iterdir()) == []  # neither the keypoints file nor a temporary one


def test_genant_csv_export(logic, spine_result, tmp_path):
    from VertebralFractureLib.io.csv_tables import read_genant_csv

    nodes = logic.show_result(spine_result)
    logic.export_annotations(nodes, tmp_path / "genant.csv", file_format="genant_csv")
    rows = read_genant_csv(tmp_path / "genant.csv")
    assert [r["level"] for r in rows] == ["T12", "L1", "L2"] and rows[1]["grade"] == 2
