"""Interactive correction: drags recompute the row at once, relabel, add and delete vertebrae,
every edit in the history."""

import json

import numpy as np
import pytest
from mrml.helpers import keypoints_lps, move_point, point_index

from VertebralFractureLib.colors import GRADE_COLORS


def _row(nodes, level):
    from VertebralFractureLib.mrml.tables import find_row, table_rows

    return table_rows(nodes.table)[find_row(nodes.table, level)]


def _hand_measures(points):
    """ha, hm, hp and G computed by hand from six keypoints."""
    ha, hm, hp = (float(np.linalg.norm(points[i] - points[i + 1])) for i in (0, 2, 4))
    return ha, hm, hp, min(ha, hm, hp) / max(ha, hm, hp)


def test_moving_a_keypoint_updates_its_row_at_once(shown, case):
    level = case.truth.labels[1]
    move_point(shown.keypoints, f"{level}:0", (0.0, 0.0, -4.0))  # anterior superior point 4 mm down
    ha, hm, hp, g = _hand_measures(keypoints_lps(shown.keypoints, level))
    row = _row(shown, level)
    assert (row["ha"], row["hm"], row["hp"], row["G"]) == pytest.approx((ha, hm, hp, g))
    assert ha == pytest.approx(case.truth.vertebra(level).measure.heights[0] - 4.0, abs=0.5)
    history = shown.result.vertebra(level).history
    assert history[-1].action == "edit keypoints" and "anterior superior 4.0 mm" in history[-1].detail
    assert shown.summary.GetText().startswith(f"{len(case.truth.labels)} vertebrae")
    stored = json.loads(shown.store.GetText())  # the scene keeps the edit too
    entry = next(v for v in stored["vertebrae"] if v["label"] == level)
    assert entry["heights_mm"]["anterior"] == pytest.approx(ha)
    assert entry["history"][-1]["action"] == "edit keypoints"
    assert shown.last_error == ""


def test_a_drag_updates_live_and_commits_one_edit_at_the_end(logic, spine_result):
    from VertebralFractureLib.mrml.tables import table_rows

    nodes = logic.show_result(spine_result)
    seen = []
    logic.on_result_changed = lambda n: seen.append(n.shown.vertebra("L1").measure.heights[0])
    node = nodes.keypoints
    index = point_index(node, "L1:1")  # anterior inferior
    node.InvokeEvent(node.PointStartInteractionEvent)
    for step in (2.0, 4.0, 6.0):  # ha 16 -> 22 mm in three moves
        ras = np.zeros(3)
        nodes.keypoints.GetNthControlPointPosition(index, ras)
        node.SetNthControlPointPosition(index, ras[0], ras[1], ras[2] - 2.0)
        assert table_rows(nodes.table)[1]["ha"] == pytest.approx(16.0 + step)
    assert nodes.result.vertebra("L1").measure.heights[0] == pytest.approx(16.0)  # not committed yet
    assert nodes.result.vertebra("L1").history == []
    node.InvokeEvent(node.PointEndInteractionEvent)
    l1 = nodes.result.vertebra("L1")
    assert l1.measure.heights[0] == pytest.approx(22.0) and l1.measure.grade == 0
    assert [e.action for e in l1.history] == ["edit keypoints"]
    assert l1.history[0].detail == "moved anterior inferior 6.0 mm"
    assert seen[:3] == pytest.approx([18.0, 20.0, 22.0])
    assert table_rows(nodes.table)[1]["Grade"] == 0


def test_a_broken_edit_is_reported_not_raised(logic, spine_result):
    from VertebralFractureLib.mrml.tables import table_rows

    nodes = logic.show_result(spine_result)
    before = table_rows(nodes.table)
    nodes.keypoints.RemoveNthControlPoint(point_index(nodes.keypoints, "L1:3"))
    move_point(nodes.keypoints, "L2:0", (0.0, 0.0, 1.0))  # triggers the fold-back
    assert "L1 lacks keypoints: middle inferior" in nodes.last_error
    assert table_rows(nodes.table) == before and nodes.result.vertebra("L2").history == []


def test_relabel_shifts_the_whole_column(shown, case, mrml_scene):
    from VertebralFractureLib.levels import label_from_level, shift_level
    from VertebralFractureLib.mrml.segmentations import segment_info

    old = case.truth.labels
    new = [shift_level(level, 1) for level in old]
    from VertebralFractureLib.mrml.logic import VertebralFractureLogic

    VertebralFractureLogic(mrml_scene).relabel(shown, old[1], new[1])
    assert shown.result.labels == new
    assert [shown.centroids.GetNthControlPointLabel(i) for i in range(len(new))] == new
    assert shown.keypoints.GetNthControlPointLabel(0) == f"{new[0]} anterior superior"
    from VertebralFractureLib.mrml.tables import table_rows

    assert [r["Level"] for r in table_rows(shown.table)] == new
    by_name = {s["name"]: s["label"] for s in segment_info(shown.segmentation)}
    assert all(by_name[level] == label_from_level(level) for level in new)
    np.testing.assert_allclose(shown.result.vertebra(new[2]).keypoints, case.truth.vertebra(old[2]).keypoints)
    for level, before in zip(new, old):
        edit = shown.result.vertebra(level).history[-1]
        assert edit.action == "relabel" and edit.detail.startswith(f"{before} -> {level}")


def test_relabel_one_vertebra_and_refusals(logic, spine_result):
    nodes = logic.show_result(spine_result)
    logic.relabel(nodes, "L2", "L3", follow=False)
    assert nodes.result.labels == ["T12", "L1", "L3"]
    assert nodes.result.vertebra("T12").history == []
    with pytest.raises(ValueError, match="duplicate"):
        logic.relabel(nodes, "T12", "L1", follow=False)
    with pytest.raises(ValueError, match="outside C1"):
        logic.relabel(nodes, "T12", "S1")  # L1 and L3 would fall off the column
    assert nodes.result.labels == ["T12", "L1", "L3"]
    assert nodes.keypoints.GetNumberOfControlPoints() == 18


def test_add_and_delete_a_vertebra(logic, spine_result, mrml_scene):
    from testdata import box_keypoints

    from VertebralFractureLib.mrml.tables import table_rows

    nodes = logic.show_result(spine_result)
    placed = mrml_scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "placed")
    points = box_keypoints([2.5, 5.0, 40.0], (21.0, 27.0, 27.0))  # L3: anterior wedge, G = 21/27, grade 1
    for point in points:
        placed.AddControlPoint([-point[0], -point[1], point[2]])  # LPS -> RAS
    added = logic.add_vertebra_from_markups(nodes, "L3", placed)
    assert added.source == "annotator" and [e.action for e in added.history] == ["add vertebra"]
    assert nodes.result.labels == ["T12", "L1", "L2", "L3"]
    row = table_rows(nodes.table)[3]
    assert row["Level"] == "L3" and row["G"] == pytest.approx(21.0 / 27.0) and row["Grade"] == 1
    assert nodes.keypoints.GetNumberOfControlPoints() == 24
    assert nodes.keypoints.GetNthControlPointLabel(18) == "L3 anterior superior"
    with pytest.raises(ValueError, match="already in the result"):
        logic.add_vertebra(nodes, "L3", points)
    with pytest.raises(ValueError, match="six 3D keypoints"):
        logic.add_vertebra(nodes, "L4", points[:5])

    logic.delete_vertebra(nodes, "L1")
    assert nodes.result.labels == ["T12", "L2", "L3"]
    assert [r["Level"] for r in table_rows(nodes.table)] == ["T12", "L2", "L3"]
    assert nodes.keypoints.GetNumberOfControlPoints() == 18 and nodes.centroids.GetNumberOfControlPoints() == 3
    log = nodes.result.patient["edits"]
    assert log[-1]["action"] == "delete vertebra" and log[-1]["detail"].startswith("L1 ")
    assert "edits" in nodes.result.to_dict()["patient"]
    # L3 grade 1 is a "review" by the verdict rule (VertebralFractureLib.verdict), not a fracture
    assert nodes.summary.GetText().startswith("3 vertebrae, 0 fractured, review: L3, highest grade 1")


def test_delete_removes_the_segment(shown, case, mrml_scene):
    from VertebralFractureLib.mrml.logic import VertebralFractureLogic
    from VertebralFractureLib.mrml.segmentations import segment_info

    level = case.truth.labels[2]
    VertebralFractureLogic(mrml_scene).delete_vertebra(shown, level)
    assert level not in [s["name"] for s in segment_info(shown.segmentation)]
    assert level not in shown.result.labels


def test_segment_colour_follows_the_grade(logic, spine_result):
    from VertebralFractureLib.geometry import ImageGeometry
    from VertebralFractureLib.io.images import image_from_array
    from VertebralFractureLib.mrml.segmentations import segment_info

    geometry = ImageGeometry((4, 4, 6), (1, 1, 1), (0, 0, 0), np.eye(3))
    labels = np.zeros((6, 4, 4), np.uint8)
    labels[0:2], labels[2:4], labels[4:6] = 21, 20, 19
    nodes = logic.show_result(spine_result, labels=image_from_array(labels, geometry))
    move_point(nodes.keypoints, "L1:1", (0.0, 0.0, -6.0))  # anterior inferior down: ha 16 -> 22, grade 2 -> 0
    colours = {s["name"]: s["color"] for s in segment_info(nodes.segmentation)}
    assert colours["L1"] == pytest.approx(GRADE_COLORS[0])


def test_placing_six_points_adds_a_vertebra(logic, spine_result, mrml_scene):
    from testdata import box_keypoints

    nodes = logic.show_result(spine_result)
    done = []
    placed = logic.begin_placing(nodes, "L3", lambda vertebra, error: done.append((vertebra, error)))
    interaction = mrml_scene.GetNodeByID("vtkMRMLInteractionNodeSingleton")
    assert interaction.GetCurrentInteractionMode() == interaction.Place
    for point in box_keypoints([2.5, 5.0, 40.0], (21.0, 27.0, 27.0))[:2]:
        placed.AddControlPoint([-point[0], -point[1], point[2]])
    assert placed.GetNthControlPointLabel(1) == "L3 anterior inferior" and not done
    for point in box_keypoints([2.5, 5.0, 40.0], (21.0, 27.0, 27.0))[2:]:
        placed.AddControlPoint([-point[0], -point[1], point[2]])
    assert done and done[0][1] == "" and done[0][0].label == "L3"
    assert nodes.result.vertebra("L3").measure.G == pytest.approx(21.0 / 27.0)
    assert placed.GetScene() is mrml_scene  # not removed inside its own callback
    logic.run_deferred()
    assert placed.GetScene() is None and interaction.GetCurrentInteractionMode() == interaction.ViewTransform
    with pytest.raises(ValueError, match="already in the result"):
        logic.begin_placing(nodes, "L3")


def test_a_moved_centroid_is_kept(logic, spine_result):
    import json

    nodes = logic.show_result(spine_result)
    move_point(nodes.centroids, "L2:centroid", (5.0, 0.0, 0.0))  # RAS +x = LPS -x
    np.testing.assert_allclose(nodes.result.vertebra("L2").centroid, [-3.0, 4.0, 70.0])
    stored = json.loads(nodes.store.GetText())
    assert stored["vertebrae"][2]["centroid"] == pytest.approx([-3.0, 4.0, 70.0])


def test_setting_one_level_by_hand_anchors_the_column(logic, spine_result):
    # an analysis that found no anchor: "levels uncertain" in its warnings, every level flagged uncertain
    spine_result.patient["levels"] = {"anchor": None, "certain": False, "method": "no anchor"}
    from VertebralFractureLib.keypoints.level_anchors import UNCERTAIN_WARNING

    spine_result.warnings.append(UNCERTAIN_WARNING)
    for vertebra in spine_result.vertebrae:
        vertebra.extra["level_certain"] = False
    nodes = logic.show_result(spine_result)
    logic.relabel(nodes, "L2", "L3", follow=False)  # one vertebra only: the column is still unanchored
    assert nodes.result.patient["levels"]["certain"] is False
    assert nodes.result.vertebra("L3").extra["level_certain"] is True
    assert nodes.result.vertebra("T12").extra["level_certain"] is False
    logic.relabel(nodes, "T12", "L1")  # the column follows: the reader has anchored it
    levels = nodes.result.patient["levels"]
    assert levels["anchor"] == "user" and levels["certain"] is True and "T12 set to L1" in levels["method"]
    assert levels["analysis"]["method"] == "no anchor"
    assert all(v.extra["level_certain"] is True for v in nodes.result.vertebrae)
    assert not any("levels uncertain" in w for w in nodes.result.warnings)
    stored = json.loads(nodes.store.GetText())  # kept in the scene
    assert stored["patient"]["levels"]["anchor"] == "user"


def test_a_withheld_vertebra_is_measured_on_the_readers_points_until_undone(logic, spine_result):
    from VertebralFractureLib.radiograph.gate2d import REASONS

    withheld = spine_result.from_json(spine_result.to_json())
    withheld.vertebra("L1").not_assessed(REASONS["endplates"])
    withheld.recompute()
    nodes = logic.show_result(withheld)
    assert (_row(nodes, "L1")["Status"], _row(nodes, "L1")["Grade"]) == ("not assessed", -1)
    node = nodes.keypoints
    node.InvokeEvent(node.PointStartInteractionEvent)
    move_point(node, "L1:1", (0.0, 0.0, -6.0))  # anterior inferior 6 mm down: ha 16 -> 22 mm
    node.InvokeEvent(node.PointEndInteractionEvent)
    row = _row(nodes, "L1")
    assert (row["Status"], row["Reason"], row["Grade"]) == ("assessed", "", 0)
    assert row["ha"] == pytest.approx(22.0) and row["Source"] == "model, moved by the reader"
    assert _row(nodes, "L2")["Source"] == "model"
    assert [e.action for e in nodes.result.vertebra("L1").history] == ["edit keypoints", "assess"]
    logic.undo(nodes)
    row = _row(nodes, "L1")
    assert (row["Status"], row["Reason"], row["Grade"]) == ("not assessed", REASONS["endplates"], -1)
    assert nodes.result.vertebra("L1").history == []
