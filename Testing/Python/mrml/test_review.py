"""The review queue, its keys, accept / reject persistence, undo / redo and the geometry check."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("name", ["review_queue_keys", "review_persistence", "undo_redo", "geometry_refused"])
def test_review_scenarios(name, mrml_scene, tmp_path):
    from VertebralFractureLib.mrml.scenarios import SCENARIOS

    SCENARIOS[name](mrml_scene, tmp_path)


def test_queue_orders_by_need_then_column():
    from VertebralFractureLib.mrml.review import review_queue
    from VertebralFractureLib.mrml.scenarios import review_result

    result = review_result()
    result.vertebrae[4].not_assessed("too dark")  # L3: not assessed joins T11, after it in column order
    queue = review_queue(result)
    assert [(i.label, i.need) for i in queue] == [
        ("T11", "not assessed"),
        ("L3", "not assessed"),
        ("T12", "level uncertain"),
        ("L1", "review"),
        ("L2", "fracture"),
    ]
    assert queue[1].reason == "too dark"
    assert queue[2].reason == "level labelling confidence 0.30 < 0.5"
    assert queue[4].reason.startswith("Genant grade 2 (wedge")


def test_step_keys_at_the_ends_and_unreviewed():
    from VertebralFractureLib.mrml.review import QueueItem, step

    queue = [QueueItem("T11", "not assessed", ""), QueueItem("T12", "review", "", "accepted", "me", "2026"),
             QueueItem("L1", "normal", "")]
    assert step(queue, None, 1) == "T11" and step(queue, None, -1) == "L1"
    assert step(queue, "T11", -1) == "T11" and step(queue, "L1", 1) == "L1"
    assert step(queue, "T11", 1, unreviewed_only=True) == "L1"
    assert step(queue, "L1", 1, unreviewed_only=True) is None
    assert step(queue, "gone", 1, unreviewed_only=True) == "T11"


def test_review_refuses_bad_input(mrml_scene):
    from VertebralFractureLib.mrml.logic import VertebralFractureLogic
    from VertebralFractureLib.mrml.scenarios import review_result

    logic = VertebralFractureLogic(mrml_scene)
    nodes = logic.show_result(review_result(), name="r")
    assert logic.key(nodes, "accept") == "Step to a vertebra first (N)."
    with pytest.raises(ValueError, match="no vertebra selected"):
        logic.accept(nodes)
    with pytest.raises(ValueError, match="reviewer name is empty"):
        logic.accept(nodes, "L1", reviewer=" ")
    with pytest.raises(ValueError, match="unknown review action 'jump'"):
        logic.key(nodes, "jump")
    assert logic.key(nodes, "undo") == "Nothing to undo."
    logic.accept(nodes, "L1", reviewer="me")
    assert logic.key(nodes, "undo") == "Undone: accepted L1."
    assert "review" not in nodes.result.vertebra("L1").extra
    assert logic.key(nodes, "redo") == "Redone: accepted L1."
    assert nodes.result.vertebra("L1").extra["review"]["by"] == "me"


def test_geometry_check_series_uid_and_radiograph(mrml_scene):
    import numpy as np

    from VertebralFractureLib.geometry import ImageGeometry
    from VertebralFractureLib.mrml.geometry_check import GeometryMismatchError, check_geometry
    from VertebralFractureLib.mrml.logic import VertebralFractureLogic
    from VertebralFractureLib.mrml.scenarios import synthetic_radiograph_result, synthetic_result
    from VertebralFractureLib.mrml.volumes import volume_from_array

    geometry = ImageGeometry((10, 10, 10), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3))
    volume = volume_from_array(np.zeros((10, 10, 10), np.int16), geometry, scene=mrml_scene, name="CT")
    result = synthetic_result()
    result.input = VertebralFractureLogic._input_block(volume)
    check_geometry(result, volume)  # same image: nothing raised
    result.input["series_uid"] = "1.2.3"
    volume.SetAttribute("DICOM.SeriesInstanceUID", "1.2.4")
    with pytest.raises(GeometryMismatchError, match=r"^the result was made on another image \(DICOM series 1.2.3, "
                       r"the volume is series 1.2.4\); not loaded onto 'CT'$"):
        check_geometry(result, volume)
    result.input["origin"] = [0.0, 0.0, 5.0]
    del result.input["series_uid"]
    with pytest.raises(GeometryMismatchError, match=r"origin 5.0 mm away from the volume's"):
        check_geometry(result, volume)
    with pytest.raises(GeometryMismatchError, match=r"a radiograph result \(pixel frame\), the volume is a CT"):
        VertebralFractureLogic(mrml_scene).show_result(synthetic_radiograph_result(), volume=volume)


def test_unanchored_levels_come_first_after_not_assessed_until_one_is_set_by_hand():
    from VertebralFractureLib.mrml.editing import relabelled
    from VertebralFractureLib.mrml.review import NOT_ANCHORED_REASON, review_queue
    from VertebralFractureLib.mrml.scenarios import review_result

    result = review_result()
    result.patient["levels"] = {"anchor": None, "certain": False, "method": "no anchor"}
    queue = review_queue(result)
    assert [(i.label, i.need) for i in queue] == [
        ("T11", "not assessed"),
        ("T12", "level uncertain"),
        ("L1", "level uncertain"),
        ("L2", "level uncertain"),
        ("L3", "level uncertain"),
    ]
    assert queue[2].reason == NOT_ANCHORED_REASON
    # the reader names one level, the column follows: the vertebrae go back to their own needs
    anchored = review_queue(relabelled(result, "L3", "L3"))
    assert [(i.label, i.need) for i in anchored] == [
        ("T11", "not assessed"),
        ("T12", "level uncertain"),  # its own low labelling confidence (0.30) still asks for a look
        ("L1", "review"),
        ("L2", "fracture"),
        ("L3", "normal"),
    ]
    # a radiograph vertebra past an ambiguous gap in the sacral count says so on its own
    result = review_result()
    result.vertebrae[3].extra["level_certain"] = False
    assert [i.need for i in review_queue(result) if i.label == "L2"] == ["level uncertain"]
