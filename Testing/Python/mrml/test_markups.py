import json

import numpy as np
import pytest

from VertebralFractureLib.genant import KEYPOINT_NAMES
from VertebralFractureLib.geometry import lps_to_ras
from VertebralFractureLib.io.mrk_json import (
    MarkupsFormatError,
    centroids_list,
    keypoints_list,
    read_markups_json,
    read_result_markups,
    write_markups_json,
)


def _node_points(node):
    positions = np.zeros((node.GetNumberOfControlPoints(), 3))
    for i in range(len(positions)):
        node.GetNthControlPointPosition(i, positions[i])
    labels = [node.GetNthControlPointLabel(i) for i in range(len(positions))]
    return positions, labels


def test_result_to_nodes(mrml_scene, spine_result):
    from VertebralFractureLib.mrml.markups import ROLE_ATTRIBUTE, markups_nodes_from_result

    keypoints, centroids = markups_nodes_from_result(spine_result, scene=mrml_scene, name="CT")
    assert keypoints.IsA("vtkMRMLMarkupsFiducialNode") and keypoints.GetName() == "CT Keypoints"
    assert keypoints.GetAttribute(ROLE_ATTRIBUTE) == "keypoints"
    assert centroids.GetAttribute(ROLE_ATTRIBUTE) == "centroids"
    positions, labels = _node_points(keypoints)
    assert len(labels) == 18
    assert labels[:6] == [f"T12 {name}" for name in KEYPOINT_NAMES]
    assert keypoints.GetNthControlPointDescription(8) == "L1:2"
    np.testing.assert_allclose(positions[6:12], lps_to_ras(spine_result.vertebra("L1").keypoints))
    centre_positions, centre_labels = _node_points(centroids)
    assert centre_labels == ["T12", "L1", "L2"]
    np.testing.assert_allclose(centre_positions[1], lps_to_ras(spine_result.vertebra("L1").centroid))
    assert keypoints.GetDisplayNode() is not None


def test_nodes_back_to_result_recomputes_measures(mrml_scene, spine_result):
    from VertebralFractureLib.mrml.markups import markups_nodes_from_result, result_from_markups_nodes

    keypoints, centroids = markups_nodes_from_result(spine_result, scene=mrml_scene)
    back = result_from_markups_nodes(keypoints, centroids)
    assert back.labels == spine_result.labels
    for old, new in zip(spine_result.vertebrae, back.vertebrae):
        np.testing.assert_allclose(new.keypoints, old.keypoints, atol=1e-9)
        np.testing.assert_allclose(new.centroid, old.centroid, atol=1e-9)
    # drag L1 anterior inferior 6 mm down (RAS z = LPS z): ha 16 -> 22 mm, G = 22/25
    index = [keypoints.GetNthControlPointDescription(i) for i in range(18)].index("L1:1")
    ras = np.zeros(3)
    keypoints.GetNthControlPointPosition(index, ras)
    keypoints.SetNthControlPointPosition(index, ras[0], ras[1], ras[2] - 6.0)
    edited = result_from_markups_nodes(keypoints, centroids, template=spine_result)
    l1 = edited.vertebra("L1")
    assert l1.measure.heights[0] == pytest.approx(22.0)
    assert l1.measure.G == pytest.approx(22.0 / 25.0)
    assert l1.measure.grade == 0
    assert l1.fracture_probability == 0.9 and l1.history[-1].action == "edit keypoints"


def test_refill_existing_nodes(mrml_scene, spine_result):
    from VertebralFractureLib.mrml.markups import markups_nodes_from_result

    keypoints, centroids = markups_nodes_from_result(spine_result, scene=mrml_scene)
    spine_result.vertebrae.pop()
    again = markups_nodes_from_result(spine_result, keypoints_node=keypoints, centroids_node=centroids)
    assert again == (keypoints, centroids)
    assert keypoints.GetNumberOfControlPoints() == 12 and centroids.GetNumberOfControlPoints() == 2


def test_storage_node_reads_library_file(mrml_scene, spine_result, tmp_path):
    from VertebralFractureLib.mrml.markups import read_markups_node, result_from_markups_nodes

    path = write_markups_json(tmp_path / "kp.mrk.json", keypoints_list(spine_result))
    node = read_markups_node(path, scene=mrml_scene)
    positions, labels = _node_points(node)
    assert labels == keypoints_list(spine_result).labels
    np.testing.assert_allclose(positions, lps_to_ras(keypoints_list(spine_result).positions), atol=1e-9)
    assert node.GetNthControlPointID(0) == "T12:0"
    assert node.GetNthControlPointDescription(7) == "L1:1"
    assert node.GetDisplayNode().GetSelectedColor() == pytest.approx((0.4, 1.0, 1.0))
    back = result_from_markups_nodes(node)
    np.testing.assert_allclose(back.vertebra("L2").keypoints, spine_result.vertebra("L2").keypoints, atol=1e-9)


def test_library_reads_file_written_by_storage_node(mrml_scene, spine_result, tmp_path):
    from VertebralFractureLib.mrml.markups import markups_nodes_from_result, write_markups_node

    keypoints, centroids = markups_nodes_from_result(spine_result, scene=mrml_scene)
    write_markups_node(keypoints, tmp_path / "kp.mrk.json")
    write_markups_node(centroids, tmp_path / "c.mrk.json")
    document = json.loads((tmp_path / "kp.mrk.json").read_text())
    assert document["markups"][0]["coordinateSystem"] == "LPS"
    (points,) = read_markups_json(tmp_path / "kp.mrk.json")
    np.testing.assert_allclose(points.positions, keypoints_list(spine_result).positions, atol=1e-6)
    assert points.labels == keypoints_list(spine_result).labels
    back = read_result_markups(tmp_path / "kp.mrk.json", tmp_path / "c.mrk.json")
    np.testing.assert_allclose(back.vertebra("T12").centroid, spine_result.vertebra("T12").centroid, atol=1e-6)
    assert [v.measure.grade for v in back.vertebrae] == [v.measure.grade for v in spine_result.vertebrae]


def test_storage_node_reads_ras_file_written_by_slicer(mrml_scene, spine_result, tmp_path, slicer_core):
    from VertebralFractureLib.mrml.markups import markups_nodes_from_result

    _, centroids = markups_nodes_from_result(spine_result, scene=mrml_scene)
    storage = slicer_core.vtkMRMLMarkupsJsonStorageNode()
    storage.SetCoordinateSystem(slicer_core.vtkMRMLStorageNode.CoordinateSystemRAS)
    storage.SetFileName(str(tmp_path / "c.mrk.json"))
    assert storage.WriteData(centroids)
    assert json.loads((tmp_path / "c.mrk.json").read_text())["markups"][0]["coordinateSystem"] == "RAS"
    (points,) = read_markups_json(tmp_path / "c.mrk.json")
    np.testing.assert_allclose(points.positions, centroids_list(spine_result).positions, atol=1e-6)


def test_point_modified_event_reports_dragged_index(mrml_scene, spine_result):
    import vtk

    from VertebralFractureLib.mrml.markups import markups_nodes_from_result

    keypoints, _ = markups_nodes_from_result(spine_result, scene=mrml_scene)
    seen = []

    @vtk.calldata_type(vtk.VTK_INT)
    def on_point_modified(caller, event, index):
        seen.append(index)

    keypoints.AddObserver(keypoints.PointModifiedEvent, on_point_modified)
    keypoints.SetNthControlPointPosition(7, 0.0, 0.0, 0.0)
    assert seen == [7]


def test_broken_node_gives_clear_error(mrml_scene, spine_result):
    from VertebralFractureLib.mrml.markups import markups_nodes_from_result, result_from_markups_nodes

    keypoints, _ = markups_nodes_from_result(spine_result, scene=mrml_scene)
    keypoints.RemoveNthControlPoint(3)
    with pytest.raises(MarkupsFormatError, match="T12 lacks keypoints: middle inferior"):
        result_from_markups_nodes(keypoints)


def test_read_missing_markups_file(mrml_scene, tmp_path):
    from VertebralFractureLib.mrml.markups import read_markups_node

    with pytest.raises(FileNotFoundError, match="none.mrk.json: no such markups file"):
        read_markups_node(tmp_path / "none.mrk.json", scene=mrml_scene)


def test_storage_node_refuses_malformed_file(mrml_scene, tmp_path):
    from VertebralFractureLib.mrml.markups import read_markups_node

    path = tmp_path / "bad.mrk.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read"):
        read_markups_node(path, scene=mrml_scene)
