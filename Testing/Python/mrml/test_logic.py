import numpy as np
import pytest

from VertebralFractureLib.colors import GRADE_COLORS
from VertebralFractureLib.geometry import ImageGeometry


@pytest.fixture
def logic(mrml_scene):
    from VertebralFractureLib.mrml.logic import VertebralFractureLogic

    return VertebralFractureLogic(mrml_scene)


@pytest.fixture
def ct_node(mrml_scene):
    from testdata import real

    from VertebralFractureLib.io.images import read_image
    from VertebralFractureLib.mrml.volumes import volume_from_image

    return volume_from_image(read_image(real("totalsegmentator", "example_ct.nii.gz")), scene=mrml_scene, name="CT")


def test_show_result_from_results_json(logic, spine_result, tmp_path):
    path = tmp_path / "result.json"
    path.write_text(spine_result.to_json())
    result = logic.load_result(path)
    nodes = logic.show_result(result, name="CT")
    assert nodes.keypoints.GetNumberOfControlPoints() == 18
    assert nodes.centroids.GetNumberOfControlPoints() == 3
    assert nodes.table.GetName() == "CT Genant" and nodes.table.GetNumberOfRows() == 3
    assert nodes.segmentation is None


def test_dragging_a_keypoint_updates_table_and_colours(logic, spine_result):
    from VertebralFractureLib.io.images import image_from_array
    from VertebralFractureLib.mrml.segmentations import segment_info
    from VertebralFractureLib.mrml.tables import table_rows

    geometry = ImageGeometry((4, 4, 6), (1, 1, 1), (0, 0, 0), np.eye(3))
    labels = np.zeros((6, 4, 4), np.uint8)
    labels[0:2], labels[2:4], labels[4:6] = 21, 20, 19
    nodes = logic.show_result(spine_result, labels=image_from_array(labels, geometry))
    colours = {s["id"]: s["color"] for s in segment_info(nodes.segmentation)}
    assert colours["L1"] == pytest.approx(GRADE_COLORS[2]) and colours["T12"] == pytest.approx(GRADE_COLORS[0])

    index = [nodes.keypoints.GetNthControlPointDescription(i) for i in range(18)].index("L1:1")
    ras = np.zeros(3)
    nodes.keypoints.GetNthControlPointPosition(index, ras)
    nodes.keypoints.SetNthControlPointPosition(index, ras[0], ras[1], ras[2] - 6.0)  # ha 16 -> 22
    result = logic.update_from_markups(nodes)
    assert result is nodes.result and result.vertebra("L1").measure.grade == 0
    assert table_rows(nodes.table)[1]["ha"] == pytest.approx(22.0)
    assert segment_info(nodes.segmentation)[1]["color"] == pytest.approx(GRADE_COLORS[0])
    np.testing.assert_allclose(result.vertebra("L1").centroid, spine_result.vertebra("L1").centroid)
    assert result.vertebra("L1").fracture_probability == 0.9


def test_save_result_writes_every_file(logic, spine_result, tmp_path):
    from VertebralFractureLib.io.mrk_json import read_result_markups
    from VertebralFractureLib.schema import SpineResult

    nodes = logic.show_result(spine_result)
    written = logic.save_result(nodes, tmp_path, stem="case")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(
        ["case.json", "case_keypoints.mrk.json", "case_centroids.mrk.json", "case_genant.tsv", "case_genant.schema.tsv"]
    )
    assert len(written) == 4
    again = SpineResult.from_json((tmp_path / "case.json").read_text())
    assert again.vertebra("L1").measure.grade == 2
    from_markups = read_result_markups(tmp_path / "case_keypoints.mrk.json", tmp_path / "case_centroids.mrk.json")
    np.testing.assert_allclose(from_markups.vertebra("L2").keypoints, spine_result.vertebra("L2").keypoints, atol=1e-6)


def test_run_uses_the_pipeline_with_the_users_segmentation(logic, ct_node, mrml_scene):
    from VertebralFractureLib.mrml.segmentations import segment_info, segmentation_from_labelmap
    from VertebralFractureLib.mrml.volumes import geometry_of_volume

    geometry = geometry_of_volume(ct_node)
    mask = np.zeros(tuple(reversed(geometry.size)), np.uint8)
    mask[40:50, 40:60, 50:70] = 1
    mask[52:62, 40:60, 50:70] = 2
    user = segmentation_from_labelmap(mask, geometry, scene=mrml_scene, names={1: "L2", 2: "vertebrae_L1"})
    reports = []
    nodes = logic.run(
        ct_node, segmentation_node=user, keypoints=False, device="cpu", progress=lambda f, m: reports.append((f, m))
    )
    assert reports[0][0] == 0.0 and reports[-1][0] == 1.0
    info = segment_info(nodes.segmentation)
    # segment names give the levels (TotalSegmentator's "vertebrae_L1" included), stored as VerSe labels
    assert [(s["name"], s["label"]) for s in info] == [("L1", 20), ("L2", 21)]
    # the vertebrae are measured on the user's mask (issue 9): six keypoints each, source "mask"
    assert nodes.table.GetNumberOfRows() == 2
    assert nodes.keypoints.GetNumberOfControlPoints() == 12
    assert {v.source for v in nodes.result.vertebrae} == {"mask"}
    assert nodes.segmentation.GetName() == "CT Vertebrae"


def test_run_can_be_cancelled(logic, ct_node):
    from VertebralFractureLib.progress import Cancelled

    with pytest.raises(Cancelled, match="analysis cancelled"):
        logic.run(ct_node, keypoints=False, progress=lambda fraction, message: logic.cancel())


def test_run_refuses_bad_arguments(logic, ct_node):
    with pytest.raises(ValueError, match="select an input CT"):
        logic.run(None)
    with pytest.raises(ValueError, match="device"):
        logic.run(ct_node, device="tpu")


def test_extra_stage_flags_map_to_pipeline_stages(logic):
    options = logic.options(fracture_classifier=True, abnormality=True, device="cuda")
    assert options.extra_stages == ("classifier", "abnormality") and options.device == "cuda"


def _node_ids(scene):
    return sorted(scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes()))


def test_cancel_leaves_the_scene_unchanged(mrml_scene, ct_node):
    from VertebralFractureLib.mrml.logic import VertebralFractureLogic
    from VertebralFractureLib.mrml.segmentations import segmentation_from_labelmap
    from VertebralFractureLib.mrml.volumes import geometry_of_volume
    from VertebralFractureLib.progress import Cancelled

    geometry = geometry_of_volume(ct_node)
    mask = np.zeros(tuple(reversed(geometry.size)), np.uint8)
    mask[40:50, 40:60, 50:70] = 1
    user = segmentation_from_labelmap(mask, geometry, scene=mrml_scene, names={1: "L2"})
    shn = mrml_scene.GetSubjectHierarchyNode()
    before, items_before = _node_ids(mrml_scene), shn.GetNumberOfItems()

    def analyze(image, options, progress):
        progress(0.5, "half way")
        raise AssertionError("not reached: cancelled at the report")

    logic = VertebralFractureLogic(mrml_scene, analyze=analyze)
    with pytest.raises(Cancelled, match="analysis cancelled"):
        logic.run(ct_node, segmentation_node=user, progress=lambda fraction, message: logic.cancel())
    assert _node_ids(mrml_scene) == before and shn.GetNumberOfItems() == items_before


@pytest.mark.parametrize("failure", ["cancel", "error"])
def test_a_failed_rerun_keeps_the_corrections(mrml_scene, ct_node, spine_result, failure):
    from mrml.helpers import move_point

    from VertebralFractureLib.mrml.logic import VertebralFractureLogic
    from VertebralFractureLib.mrml.tables import table_rows
    from VertebralFractureLib.progress import Cancelled

    def analyze(image, options, progress):
        if failure == "error":
            raise RuntimeError("centre-line model weights missing")
        progress(0.1, "finding the spine")

    logic = VertebralFractureLogic(mrml_scene, analyze=analyze)
    nodes = logic.show_result(spine_result, volume=ct_node, name="CT")
    move_point(nodes.keypoints, "L1:1", (0.0, 0.0, -6.0))
    rows, ids, stored = table_rows(nodes.table), _node_ids(mrml_scene), nodes.store.GetText()
    expected = Cancelled if failure == "cancel" else RuntimeError
    message = "analysis cancelled" if failure == "cancel" else "centre-line model weights missing"
    with pytest.raises(expected, match=message):
        logic.run(ct_node, device="cpu", progress=lambda fraction, message: logic.cancel())
    assert _node_ids(mrml_scene) == ids and table_rows(nodes.table) == rows and nodes.store.GetText() == stored
    assert nodes.result.vertebra("L1").measure.heights[0] == pytest.approx(22.0)
    assert [e.action for e in nodes.result.vertebra("L1").history] == ["edit keypoints"]
    move_point(nodes.keypoints, "L1:1", (0.0, 0.0, 1.0))  # still followed after the failed run
    assert table_rows(nodes.table)[1]["ha"] == pytest.approx(21.0)


def test_run_shows_the_whole_analysis(mrml_scene, ct_node, spine_result):
    from VertebralFractureLib.mrml.logic import VertebralFractureLogic
    from VertebralFractureLib.pipeline import Analysis

    def analyze(image, options, progress):
        progress(1.0, "done")
        result = SpineResult.from_dict(spine_result.to_dict())
        result.warnings.append("stage 'abnormality' is not available in this version; skipped")
        return Analysis(result=result, image=image, mid_sagittal=np.zeros((50, 40)), mid_spacing=(1.5, 1.5))

    from VertebralFractureLib.schema import SpineResult

    nodes = VertebralFractureLogic(mrml_scene, analyze=analyze).run(ct_node, device="cpu")
    assert nodes.volume is ct_node and nodes.name == ct_node.GetName() and nodes.color_by == "grade"
    assert nodes.straightened.GetSpacing() == pytest.approx((1.5, 1.5, 1.0))
    assert nodes.warnings == ["stage 'abnormality' is not available in this version; skipped"]
    shn = mrml_scene.GetSubjectHierarchyNode()
    assert shn.GetItemParent(nodes.folder) == shn.GetItemByDataNode(ct_node)
