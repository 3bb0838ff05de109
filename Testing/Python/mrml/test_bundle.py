"""A scene saved as .mrb and loaded again keeps every result node, its history and its editability."""

import numpy as np
import pytest
from mrml.helpers import keypoints_lps, move_point


def test_mrb_save_and_reload_keeps_everything_editable(shown, case, logic, mrml_scene, tmp_path):
    from VertebralFractureLib.mrml.logic import VertebralFractureLogic
    from VertebralFractureLib.mrml.scene import create_scene
    from VertebralFractureLib.mrml.segmentations import segment_info
    from VertebralFractureLib.mrml.tables import find_row, table_rows

    levels = case.truth.labels
    move_point(shown.keypoints, f"{levels[1]}:1", (0.0, 0.0, -2.0))
    logic.delete_vertebra(shown, levels[-1])
    path = logic.save_scene(tmp_path / "case.mrb", [shown])
    assert path.is_file() and [p.name for p in tmp_path.iterdir()] == ["case.mrb"]
    with pytest.raises(FileExistsError, match="case.mrb exists; refusing to overwrite"):
        logic.save_scene(tmp_path / "case.mrb", [shown])

    scene = create_scene()
    loaded = VertebralFractureLogic(scene).load_scene(path)
    assert len(loaded) == 1
    nodes = loaded[0]
    assert nodes.result.labels == shown.result.labels
    for new, old in zip(nodes.result.vertebrae, shown.result.vertebrae):
        np.testing.assert_allclose(new.keypoints, old.keypoints, atol=1e-9)  # through .mrk.json
        assert new.history == old.history and new.source == old.source
    assert nodes.result.patient["edits"][0]["detail"].startswith(levels[-1])
    assert nodes.volume.GetName() == "CT" and nodes.name == "CT" and nodes.color_by == "grade"
    assert nodes.straightened is not None and nodes.colors.GetNumberOfColors() == 5
    assert [s["color"] for s in segment_info(nodes.segmentation)] == [
        s["color"] for s in segment_info(shown.segmentation)
    ]
    assert nodes.summary.GetText() == shown.summary.GetText()
    assert nodes.table.GetAttribute("VertebralFracture.Summary") == shown.summary.GetText()
    shn = scene.GetSubjectHierarchyNode()
    assert shn.GetItemParent(nodes.folder) == shn.GetItemByDataNode(nodes.volume)
    assert shn.GetItemParent(shn.GetItemByDataNode(nodes.keypoints)) == nodes.folder

    # still editable: a drag updates the row of the loaded table and adds to the loaded history
    move_point(nodes.keypoints, f"{levels[2]}:1", (0.0, 0.0, -3.0))
    points = keypoints_lps(nodes.keypoints, levels[2])
    row = table_rows(nodes.table)[find_row(nodes.table, levels[2])]
    assert row["ha"] == pytest.approx(float(np.linalg.norm(points[0] - points[1])))
    assert [e.action for e in nodes.result.vertebra(levels[1]).history] == ["edit keypoints"]
    assert [e.action for e in nodes.result.vertebra(levels[2]).history] == ["edit keypoints"]
    VertebralFractureLogic(scene).relabel(nodes, levels[0], levels[1])
    assert nodes.result.labels[0] == levels[1]


def test_load_refuses_missing_and_wrong_files(logic, tmp_path):
    from VertebralFractureLib.mrml.bundle import BundleError

    with pytest.raises(FileNotFoundError, match="none.mrb: no such scene bundle"):
        logic.load_scene(tmp_path / "none.mrb")
    (tmp_path / "bad.mrb").write_bytes(b"not a zip")
    with pytest.raises(BundleError, match=r"bad.mrb: not a scene bundle \(a .mrb is a zip archive\)"):
        logic.load_scene(tmp_path / "bad.mrb")
    with pytest.raises(ValueError, match=".mrb"):
        logic.save_scene(tmp_path / "scene.zip")


def test_a_broken_bundle_leaves_the_working_directory(logic, tmp_path):
    import os
    import zipfile

    from VertebralFractureLib.mrml.bundle import BundleError

    cwd = os.getcwd()
    with zipfile.ZipFile(tmp_path / "empty.mrb", "w") as archive:
        archive.writestr("empty/readme.txt", "no scene here")
    with pytest.raises(BundleError, match="empty.mrb: the scene cannot read this bundle"):
        logic.load_scene(tmp_path / "empty.mrb")
    assert os.getcwd() == cwd


def test_reattach_keeps_one_follower_per_result(logic, spine_result):
    from mrml.helpers import move_point

    nodes = logic.show_result(spine_result)
    again = logic.reattach()
    assert again == [nodes] and again[0] is nodes  # the result already followed is reused
    move_point(nodes.keypoints, "L1:1", (0.0, 0.0, -1.0))
    assert [e.action for e in nodes.result.vertebra("L1").history] == ["edit keypoints"]
