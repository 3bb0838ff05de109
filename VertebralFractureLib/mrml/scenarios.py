"""Self-test scenarios of the MRML bridge, shared by the Slicer self-test and pytest.

Each scenario takes a scene and a scratch folder, builds a small synthetic case, and raises
``AssertionError`` naming what went wrong. ``VertebralFracture.py``'s ``VertebralFractureTest``
runs them inside Slicer (on ``slicer.mrmlScene``); ``Testing/Python/module`` runs the same self-test
class on a slicer-core scene. They mirror the bridge's pytest tests (``Testing/Python/mrml``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Dict

import numpy as np

from ..colors import GRADE_COLORS
from ..geometry import ImageGeometry, lps_to_ras
from ..schema import SpineResult, Vertebra


def _close(actual, expected, what: str, tolerance: float = 1e-5) -> None:
    if not np.allclose(np.asarray(actual, float), np.asarray(expected, float), atol=tolerance):
        raise AssertionError(f"{what}: got {np.asarray(actual).tolist()}, expected {np.asarray(expected).tolist()}")


def _equal(actual, expected, what: str) -> None:
    if actual != expected:
        raise AssertionError(f"{what}: got {actual!r}, expected {expected!r}")


def _body(centre, heights) -> np.ndarray:
    x, y, z = centre
    rows = []
    for offset, height in zip((-15.0, 0.0, 15.0), heights):
        rows += [[x, y + offset, z + height / 2], [x, y + offset, z - height / 2]]
    return np.array(rows)


def synthetic_result() -> SpineResult:
    """T12 and L2 normal, L1 a grade-2 wedge (anterior height 16 of 25 mm), LPS mm."""
    return SpineResult(
        [
            Vertebra("T12", [1.0, 2.0, 130.0], _body((1.0, 2.0, 130.0), (25.0, 25.0, 25.0))),
            Vertebra("L1", [1.5, 3.0, 100.0], _body((1.5, 3.0, 100.0), (16.0, 24.0, 25.0)), fracture_probability=0.9),
            Vertebra("L2", [2.0, 4.0, 70.0], _body((2.0, 4.0, 70.0), (26.0, 26.0, 26.5))),
        ]
    )


def volume_geometry(scene, folder: Path) -> None:
    """An oblique volume: every voxel lands at the same patient point in the node and in SimpleITK."""
    import SimpleITK as sitk

    from .volumes import image_from_volume, volume_from_array

    angle = np.radians(20.0)
    direction = np.array([[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0], [0, 0, 1.0]])
    geometry = ImageGeometry((6, 5, 4), (0.7, 0.9, 2.0), (-50.0, 20.0, 300.0), direction)
    array = np.arange(120, dtype=np.int16).reshape(4, 5, 6)
    node = volume_from_array(array, geometry, scene=scene, name="selftest CT")
    from vtkmodules.vtkCommonMath import vtkMatrix4x4

    matrix = vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    ras = matrix.MultiplyPoint([5.0, 4.0, 3.0, 1.0])
    _close(ras[:3], lps_to_ras(geometry.index_to_lps([5, 4, 3])), "RAS position of voxel (5, 4, 3)")
    image = image_from_volume(node)
    _close(image.GetDirection(), direction.flatten(), "direction back from the node")
    _equal(sitk.GetArrayFromImage(image).tolist(), array.tolist(), "voxel values back from the node")


def markups_round_trip(scene, folder: Path) -> None:
    """Result -> markups nodes -> .mrk.json (storage node) -> library, and library file -> storage node."""
    from ..io.mrk_json import keypoints_list, read_result_markups, write_markups_json
    from .markups import markups_nodes_from_result, read_markups_node, result_from_markups_nodes, write_markups_node

    result = synthetic_result()
    keypoints, centroids = markups_nodes_from_result(result, scene=scene, name="selftest")
    _equal(keypoints.GetNumberOfControlPoints(), 18, "number of keypoints")
    _equal(keypoints.GetNthControlPointLabel(6), "L1 anterior superior", "label of point 7")
    write_markups_node(keypoints, folder / "keypoints.mrk.json", overwrite=True)
    write_markups_node(centroids, folder / "centroids.mrk.json", overwrite=True)
    back = read_result_markups(folder / "keypoints.mrk.json", folder / "centroids.mrk.json")
    _equal(back.labels, result.labels, "levels read back by the library")
    _close(back.vertebra("L1").keypoints, result.vertebra("L1").keypoints, "L1 keypoints read back")
    _equal(back.vertebra("L1").measure.grade, 2, "L1 grade read back")
    path = write_markups_json(folder / "library.mrk.json", keypoints_list(result), overwrite=True)
    node = read_markups_node(path, scene=scene)
    _equal(node.GetNthControlPointLabel(17), "L2 posterior inferior", "label read by the storage node")
    _close(result_from_markups_nodes(node).vertebra("L2").keypoints, result.vertebra("L2").keypoints, "L2 from node")


def segmentation_round_trip(scene, folder: Path) -> None:
    """Named, grade-coloured segments survive a .seg.nrrd save and load through the storage node."""
    from .segmentations import (
        grade_colors_for,
        read_segmentation,
        segment_info,
        segmentation_from_labelmap,
        write_segmentation,
    )

    geometry = ImageGeometry((8, 8, 9), (1.0, 1.0, 2.0), (0.0, 0.0, 0.0), np.eye(3))
    labels = np.zeros((9, 8, 8), np.uint8)
    labels[0:3, 2:6, 2:6], labels[3:6, 2:6, 2:6], labels[6:9, 2:6, 2:6] = 21, 20, 19
    result = synthetic_result()
    node = segmentation_from_labelmap(labels, geometry, scene=scene, colors=grade_colors_for(result))
    path = write_segmentation(node, folder / "vertebrae.seg.nrrd", overwrite=True)
    info = segment_info(read_segmentation(path, scene=scene))
    _equal([s["name"] for s in info], ["T12", "L1", "L2"], "segment names after loading")
    _close(info[1]["color"], GRADE_COLORS[2], "colour of the grade-2 L1 segment")
    _close(info[0]["color"], GRADE_COLORS[0], "colour of the grade-0 T12 segment")


def table_types(scene, folder: Path) -> None:
    """The Genant table has typed columns, also after a .tsv save and load."""
    from .tables import genant_table, read_table, table_rows, write_table

    node = genant_table(synthetic_result(), scene=scene)
    path = write_table(node, folder / "genant.tsv", overwrite=True)
    for table_node in (node, read_table(path, scene=scene)):
        table = table_node.GetTable()
        kinds = {
            table.GetColumnName(i): table.GetColumn(i).GetDataTypeAsString() for i in range(table.GetNumberOfColumns())
        }
        _equal(
            (kinds["Level"], kinds["G"], kinds["Grade"], kinds["Type"]), ("string", "double", "int", "string"), "types"
        )
        _equal(table_rows(table_node)[1]["Grade"], 2, "grade of L1 in the table")


def keypoint_edit(scene, folder: Path) -> None:
    """Dragging a keypoint and updating recomputes the measures and refreshes the table."""
    from .logic import VertebralFractureLogic
    from .tables import table_rows

    logic = VertebralFractureLogic(scene)
    nodes = logic.show_result(synthetic_result(), name="selftest")
    index = [nodes.keypoints.GetNthControlPointDescription(i) for i in range(18)].index("L1:1")
    ras = [0.0, 0.0, 0.0]
    nodes.keypoints.GetNthControlPointPosition(index, ras)
    nodes.keypoints.SetNthControlPointPosition(index, ras[0], ras[1], ras[2] - 6.0)
    result = logic.update_from_markups(nodes)
    _close(result.vertebra("L1").measure.heights[0], 22.0, "L1 anterior height after the drag")
    _equal(result.vertebra("L1").measure.grade, 0, "L1 grade after the drag")
    _equal(table_rows(nodes.table)[1]["Grade"], 0, "L1 grade in the table after the drag")


def withheld_edit(scene, folder: Path) -> None:
    """A withheld vertebra the reader corrects is measured on the reader's points; one the image cuts is not."""
    from ..radiograph.gate2d import REASONS
    from .logic import VertebralFractureLogic
    from .review import NOT_ASSESSED, review_queue
    from .tables import table_rows

    result = review_result()  # T11 not assessed: cut by the edge of the field of view
    result.vertebra("L2").not_assessed(REASONS["endplates"])
    result.recompute()
    logic = VertebralFractureLogic(scene)
    nodes = logic.show_result(result, name="selftest withheld")
    _equal([row["Grade"] for row in table_rows(nodes.table)][::3], [-1, -1], "T11 and L2 withheld")
    node = nodes.keypoints
    for key in ("L2:1", "T11:1"):
        node.InvokeEvent(node.PointStartInteractionEvent)
        _move(node, key, -2.0)
        node.InvokeEvent(node.PointEndInteractionEvent)
    rows = {row["Level"]: row for row in table_rows(nodes.table)}
    _equal((rows["L2"]["Status"], rows["L2"]["Grade"]), ("assessed", 2), "L2 measured on the reader's points")
    _close(rows["L2"]["ha"], 18.0, "L2 anterior height from the reader's points")
    _equal((rows["T11"]["Status"], rows["T11"]["Grade"]), ("not assessed", -1), "T11 still cut by the view")
    needs = {item.label: item.need for item in review_queue(nodes.result)}
    _equal((needs["T11"], needs["L2"] != NOT_ASSESSED), (NOT_ASSESSED, True), "review needs after the corrections")
    _equal(nodes.result.vertebra("L2").extra["withheld_by_analysis"], REASONS["endplates"], "the reason kept")
    logic.undo(nodes)
    logic.undo(nodes)
    _equal(table_rows(nodes.table)[3]["Status"], "not assessed", "L2 withheld again after undo")


def _shown(scene, name: str = "selftest"):
    """The synthetic result shown over a small CT with three box-shaped vertebral bodies."""
    from ..io.images import image_from_array
    from .logic import VertebralFractureLogic
    from .volumes import volume_from_array

    geometry = ImageGeometry((40, 40, 60), (2.0, 2.0, 3.0), (-40.0, -40.0, 40.0), np.eye(3))
    labels = np.zeros((60, 40, 40), np.uint8)
    labels[26:34, 12:28, 14:26], labels[16:24, 12:28, 14:26], labels[6:14, 12:28, 14:26] = 19, 20, 21
    volume = volume_from_array(np.where(labels > 0, 400, -50).astype(np.int16), geometry, scene=scene, name=name)
    logic = VertebralFractureLogic(scene)
    nodes = logic.show_result(synthetic_result(), labels=image_from_array(labels, geometry), volume=volume, name=name)
    return logic, nodes


def _move(node, key: str, dz: float) -> None:
    index = [node.GetNthControlPointDescription(i) for i in range(node.GetNumberOfControlPoints())].index(key)
    ras = [0.0, 0.0, 0.0]
    node.GetNthControlPointPosition(index, ras)
    node.SetNthControlPointPosition(index, ras[0], ras[1], ras[2] + dz)


def analysis_to_nodes(scene, folder: Path) -> None:
    """A result over a CT: markups, table, summary, grade colours with a legend, grouped under the CT."""
    from .segmentations import segment_info
    from .tables import table_rows

    logic, nodes = _shown(scene)
    _equal(nodes.centroids.GetNthControlPointLabel(1), "L1", "centroid label")
    _equal([r["Level"] for r in table_rows(nodes.table)], ["T12", "L1", "L2"], "table levels")
    colours = {s["name"]: s["color"] for s in segment_info(nodes.segmentation)}
    _close(colours["L1"], GRADE_COLORS[2], "L1 segment colour (grade 2)")
    _equal(nodes.colors.GetColorName(2), "Grade 2 moderate", "legend entry 2")
    _equal(nodes.summary.GetText()[:37], "3 vertebrae, 1 fractured (L1 grade 2 ", "patient summary")
    shn = scene.GetSubjectHierarchyNode()
    _equal(shn.GetItemParent(nodes.folder), shn.GetItemByDataNode(nodes.volume), "folder under the CT")
    for role, node in nodes.scene_nodes().items():
        _equal(shn.GetItemParent(shn.GetItemByDataNode(node)), nodes.folder, f"{role} in the folder")
    _close(logic.row_position(nodes, 1), [-1.5, -3.0, 100.0], "RAS position of table row 1")


def relabel_add_delete(scene, folder: Path) -> None:
    """Relabel the column, add a vertebra from six points, delete one; every edit in the history."""
    logic, nodes = _shown(scene)
    logic.relabel(nodes, "T12", "L1")
    _equal(nodes.result.labels, ["L1", "L2", "L3"], "levels after 'T12 is L1'")
    _equal(nodes.result.vertebra("L2").history[-1].action, "relabel", "history of the relabelled L2")
    logic.add_vertebra(nodes, "L4", _body((2.5, 5.0, 40.0), (21.0, 27.0, 27.0)))
    _equal(nodes.result.vertebra("L4").measure.grade, 1, "grade of the added L4 (G = 21/27)")
    _equal(nodes.keypoints.GetNumberOfControlPoints(), 24, "keypoints after adding L4")
    logic.delete_vertebra(nodes, "L3")
    _equal(nodes.result.labels, ["L1", "L2", "L4"], "levels after deleting L3")
    _equal(nodes.result.patient["edits"][-1]["action"], "delete vertebra", "deletion log")
    _equal(nodes.table.GetNumberOfRows(), 3, "table rows after the edits")


def export_import(scene, folder: Path) -> None:
    """Export the corrected annotations, clear the scene, import: the same vertebrae and history."""
    from .logic import VertebralFractureLogic

    logic, nodes = _shown(scene)
    _move(nodes.keypoints, "L1:1", -6.0)
    path = folder / "selftest_annotations.json"
    if path.exists():
        path.unlink()
    logic.export_annotations(nodes, path)
    before = nodes.result
    scene.Clear(0)
    again = VertebralFractureLogic(scene).import_annotations(path)
    _equal(again.result.labels, before.labels, "levels after import")
    _close(again.result.vertebra("L1").keypoints, before.vertebra("L1").keypoints, "L1 keypoints after import")
    _equal([e.action for e in again.result.vertebra("L1").history], ["edit keypoints"], "history after import")
    _equal(again.result.vertebra("L1").measure.grade, 0, "L1 grade after import")


def scene_bundle(scene, folder: Path) -> None:
    """Save the scene as .mrb, load it again: the result is found and still editable."""
    from .tables import table_rows

    logic, nodes = _shown(scene)
    _move(nodes.keypoints, "L1:1", -6.0)
    path = folder / "selftest_scene.mrb"
    if path.exists():
        path.unlink()
    logic.save_scene(path, [nodes])
    results = logic.load_scene(path)
    _equal(len(results), 1, "results found in the loaded scene")
    loaded = results[0]
    _equal(loaded.result.vertebra("L1").measure.grade, 0, "L1 grade after loading")
    _equal([e.action for e in loaded.result.vertebra("L1").history], ["edit keypoints"], "history after loading")
    _move(loaded.keypoints, "L1:1", 6.0)
    _equal(table_rows(loaded.table)[1]["Grade"], 2, "L1 grade in the table after dragging back")


def cancel_keeps_scene(scene, folder: Path) -> None:
    """A cancelled or failed re-run adds nothing and keeps the corrections."""
    from ..progress import Cancelled
    from .logic import VertebralFractureLogic
    from .tables import table_rows

    _, nodes = _shown(scene)
    _move(nodes.keypoints, "L1:1", -6.0)
    count, rows = scene.GetNumberOfNodes(), table_rows(nodes.table)

    def analyze(image, options, progress):
        progress(0.5, "half way")
        raise RuntimeError("model weights missing")

    logic = VertebralFractureLogic(scene, analyze=analyze)
    for cancel, error in ((True, Cancelled), (False, RuntimeError)):
        try:
            logic.run(nodes.volume, progress=(lambda f, m: logic.cancel()) if cancel else None)
        except error:
            pass
        else:
            raise AssertionError(f"the run should have raised {error.__name__}")
        _equal(scene.GetNumberOfNodes(), count, "number of nodes after the failed run")
        _equal(table_rows(nodes.table), rows, "table after the failed run")
    _equal(nodes.result.vertebra("L1").measure.grade, 0, "corrected L1 grade kept")


def synthetic_radiograph_result() -> SpineResult:
    """T12, L1 (anterior height 18 of 27 px: grade 2 wedge) and L2 of a lateral radiograph, pixels."""

    def body(column: float, row: float, heights) -> np.ndarray:
        points = []
        for offset, height in zip((-15.0, 0.0, 15.0), heights):
            points += [[column + offset, row - height / 2], [column + offset, row + height / 2]]
        return np.array(points)

    levels = (("T12", 40.0, (27, 27, 27)), ("L1", 75.0, (18, 26, 27)), ("L2", 110.0, (28, 28, 28)))
    vertebrae = [Vertebra(level, [60.0, row], body(60.0, row, heights)) for level, row, heights in levels]
    return SpineResult(vertebrae, frame="pixel", pixel_spacing=(0.8, 0.9))


def radiograph_result(scene, folder: Path) -> None:
    """A 2D radiograph result on its image: points on the pixels, a drag recomputes the row, export/import."""
    from .logic import VertebralFractureLogic
    from .markups import result_from_markups_nodes
    from .tables import table_rows

    result = synthetic_radiograph_result()
    image = np.zeros((150, 120), np.float32)
    image[25:125, 45:75] = 1.0
    logic = VertebralFractureLogic(scene)
    nodes = logic.show_result(result, radiograph=image, name="selftest XR")
    _equal(nodes.volume.GetImageData().GetDimensions(), (120, 150, 1), "radiograph volume size")
    ras = [0.0, 0.0, 0.0]
    nodes.keypoints.GetNthControlPointPosition(6, ras)  # L1 anterior superior, pixel (45, 66)
    _close(ras, [0.0, -45 * 0.8, -66 * 0.9], "RAS position of L1 anterior superior")
    back = result_from_markups_nodes(nodes.keypoints, nodes.centroids, template=result)
    _close(back.vertebra("L1").keypoints, result.vertebra("L1").keypoints, "L1 pixels from the nodes", 1e-6)
    _equal(table_rows(nodes.table)[1]["Grade"], 2, "L1 grade in the table")
    _move(nodes.keypoints, "L1:0", 9 * 0.9)  # 9 rows up: anterior height 27 px
    _close(nodes.result.vertebra("L1").keypoints[0], [45.0, 57.0], "L1 anterior superior after the drag", 1e-6)
    _equal(table_rows(nodes.table)[1]["Grade"], 0, "L1 grade in the table after the drag")
    path = folder / "selftest_radiograph.json"
    if path.exists():
        path.unlink()
    logic.export_annotations(nodes, path)
    again = logic.import_annotations(path, volume=nodes.volume)
    _equal((again.result.frame, again.result.labels), ("pixel", ["T12", "L1", "L2"]), "frame and levels after import")
    _close(again.result.vertebra("L1").keypoints, nodes.result.vertebra("L1").keypoints, "L1 after import", 1e-6)
    _equal([e.action for e in again.result.vertebra("L1").history], ["edit keypoints"], "history after import")


#: Scenario name -> function(scene, folder), in the order the self-test runs them.
def review_result() -> SpineResult:
    """Five vertebrae, one per need: T11 not assessed, T12 level uncertain, L1 grade 1, L2 grade 2, L3 normal."""
    t11 = Vertebra("T11", [1.0, 2.0, 160.0], _body((1.0, 2.0, 160.0), (24.0, 24.0, 24.0)))
    t11.not_assessed("cut by the edge of the field of view (superior edge)")
    t12 = Vertebra("T12", [1.0, 2.0, 130.0], _body((1.0, 2.0, 130.0), (25.0, 25.0, 25.0)), source="model",
                   confidence=0.3, extra={"label_confidence": 0.3})
    l1 = Vertebra("L1", [1.5, 3.0, 100.0], _body((1.5, 3.0, 100.0), (19.5, 25.0, 25.0)))
    l2 = Vertebra("L2", [2.0, 4.0, 70.0], _body((2.0, 4.0, 70.0), (16.0, 24.0, 25.0)))
    l3 = Vertebra("L3", [2.0, 4.0, 40.0], _body((2.0, 4.0, 40.0), (26.0, 26.0, 26.5)))
    return SpineResult([t11, t12, l1, l2, l3])


def _views(scene) -> None:
    """Three slice views (Slicer has them; a bare slicer-core scene does not)."""
    from slicer import vtkMRMLSliceNode

    for name in ("Red", "Yellow", "Green")[scene.GetNumberOfNodesByClass("vtkMRMLSliceNode"):]:
        node = vtkMRMLSliceNode()
        node.SetName(name)
        node.SetLayoutName(name)
        scene.AddNode(node)


def _view_centre(scene, index: int = 0) -> np.ndarray:
    matrix = scene.GetNthNodeByClass(index, "vtkMRMLSliceNode").GetSliceToRAS()
    return np.array([matrix.GetElement(row, 3) for row in range(3)])


def review_queue_keys(scene, folder: Path) -> None:
    """The review queue orders by need; N / P step through it and centre the views; A / X mark, saved."""
    from .logic import VertebralFractureLogic
    from .tables import table_rows

    _views(scene)
    logic = VertebralFractureLogic(scene)
    nodes = logic.show_result(review_result(), name="review")
    queue = logic.review_queue(nodes)
    _equal([(i.label, i.need) for i in queue], [("T11", "not assessed"), ("T12", "level uncertain"), ("L1", "review"),
                                                ("L2", "fracture"), ("L3", "normal")], "queue order")
    _equal(logic.key(nodes, "next")[:4], "T11:", "first key N")
    for _ in range(2):
        logic.key(nodes, "next")
    _equal(nodes.current, "L1", "after N N N")
    _close(_view_centre(scene), lps_to_ras([1.5, 3.0, 100.0]), "slice views centred on L1")
    _equal(logic.key(nodes, "previous")[:4], "T12:", "P goes back")
    logic.key(nodes, "accept")
    mark = nodes.result.vertebra("T12").extra["review"]
    _equal((mark["decision"], bool(mark["by"]), mark["at"][:2]), ("accepted", True, "20"), "T12 review mark")
    logic.reject(nodes, "L2", reviewer="Dr Who")
    _equal(logic.key(nodes, "next_unreviewed")[:3], "L1:", "Shift+N skips reviewed vertebrae")
    for _ in range(4):
        logic.key(nodes, "next")
    _equal(nodes.current, "L3", "N stops at the end of the queue")
    stored = json.loads(nodes.store.GetText())
    _equal([v.get("review", {}).get("decision") for v in stored["vertebrae"]],
           [None, "accepted", None, "rejected", None], "review marks in the result node")
    _equal(table_rows(nodes.table)[3]["Level"], "L2", "table unchanged in order")


def _table_marks(table) -> Dict[str, tuple]:
    """Level -> (Review, Reviewed by, Reviewed at) of the reviewed rows of a Genant table node."""
    from .tables import table_rows

    return {r["Level"]: (r["Review"], r["Reviewed by"], r["Reviewed at"]) for r in table_rows(table) if r["Review"]}


def review_persistence(scene, folder: Path) -> None:
    """Accept / reject survive the annotation and genant.csv exports, the import, and a .mrb save and load."""
    from ..io.csv_tables import read_genant_csv
    from .logic import VertebralFractureLogic

    logic = VertebralFractureLogic(scene)
    nodes = logic.show_result(review_result(), name="review")
    logic.accept(nodes, "L2", reviewer="Dr Who")
    logic.reject(nodes, "T12", reviewer="Dr No")
    marks = {v.label: v.extra["review"] for v in nodes.result.vertebrae if "review" in v.extra}
    expected = {level: (m["decision"], m["by"], m["at"]) for level, m in marks.items()}
    _equal(sorted(expected.items()), sorted({"L2": ("accepted", "Dr Who", marks["L2"]["at"]),
                                             "T12": ("rejected", "Dr No", marks["T12"]["at"])}.items()), "marks")
    _equal(_table_marks(nodes.table), expected, "review columns of the Genant table")
    path, csv_path = folder / "review_annotations.json", folder / "review_genant.csv"
    for old in (path, csv_path):
        old.unlink(missing_ok=True)
    logic.export_annotations(nodes, path)
    logic.export_annotations(nodes, csv_path, file_format="genant_csv")
    rows = read_genant_csv(csv_path)
    _equal({r["level"]: (r["review"], r["reviewed_by"], r["reviewed_at"]) for r in rows if r["review"]}, expected,
           "review columns of the exported genant.csv")
    _equal([r["level"] for r in rows if r["review"] is None], ["T11", "L1", "L3"], "rows nobody reviewed")
    bundle = folder / "review_scene.mrb"
    bundle.unlink(missing_ok=True)
    logic.save_scene(bundle, [nodes])
    scene.Clear(0)
    again = VertebralFractureLogic(scene).import_annotations(path)
    _equal({v.label: v.extra["review"] for v in again.result.vertebrae if "review" in v.extra}, marks,
           "review marks after export and import")
    _equal(_table_marks(again.table), expected, "review columns of the table after the import")
    _equal(again.result.vertebra("L2").history[-1].user, "Dr Who", "who accepted L2, in the history")
    scene.Clear(0)
    loaded = VertebralFractureLogic(scene).load_scene(bundle)
    _equal({v.label: v.extra["review"] for v in loaded[0].result.vertebrae if "review" in v.extra}, marks,
           "review marks after the .mrb reload")
    _equal(_table_marks(loaded[0].table), expected, "review columns of the table after the .mrb reload")


def undo_redo(scene, folder: Path) -> None:
    """Undo and redo a point move, a relabel, an addition and a deletion (segments and history too)."""
    logic, nodes = _shown(scene)
    original = nodes.result.to_dict()
    _move(nodes.keypoints, "L1:1", -6.0)
    _equal(nodes.result.vertebra("L1").measure.grade, 0, "L1 grade after the move")
    logic.relabel(nodes, "T12", "T11", follow=False)
    logic.add_vertebra(nodes, "L3", _body((2.5, 5.0, 40.0), (21.0, 27.0, 27.0)))
    logic.delete_vertebra(nodes, "L1")
    segments = sorted(s.GetName() for s in _segments(nodes))
    _equal(segments, ["L2", "T11"], "segments after relabel and delete")
    for what in ("delete L1", "add L3", "relabel T12 as T11", "move keypoints"):
        _equal(logic.undo(nodes), what, "undo")
    _equal(nodes.result.to_dict()["vertebrae"], original["vertebrae"], "result after undoing everything")
    _equal(sorted(s.GetName() for s in _segments(nodes)), ["L1", "L2", "T12"], "segments after undoing")
    _equal(nodes.keypoints.GetNumberOfControlPoints(), 18, "keypoints after undoing")
    _equal(logic.undo(nodes), "", "nothing more to undo")
    for what in ("move keypoints", "relabel T12 as T11", "add L3", "delete L1"):
        _equal(logic.redo(nodes), what, "redo")
    _equal(nodes.result.labels, ["T11", "L2", "L3"], "levels after redoing everything")
    _equal(sorted(s.GetName() for s in _segments(nodes)), ["L2", "T11"], "segments after redoing")
    logic.undo(nodes)
    _move(nodes.keypoints, "L2:0", 1.0)
    _equal(logic.redo(nodes), "", "a new edit drops the redo stack")


def _segments(nodes):
    segmentation = nodes.segmentation.GetSegmentation()
    return [segmentation.GetNthSegment(i) for i in range(segmentation.GetNumberOfSegments())]


def geometry_refused(scene, folder: Path) -> None:
    """A result or an annotation file of another image is refused in one line; nothing is added."""
    from .geometry_check import GeometryMismatchError
    from .logic import VertebralFractureLogic

    logic, nodes = _shown(scene)
    result = SpineResult.from_dict(nodes.result.to_dict())
    result.input = {"size": [512, 512, 300], "spacing": [0.8, 0.8, 1.0], "origin": [0.0, 0.0, 0.0],
                    "direction": np.eye(3).flatten().tolist(), "path": "other_patient.nii.gz"}
    path = folder / "other_patient_results.json"
    path.write_text(result.to_json(), encoding="utf-8")
    count = scene.GetNumberOfNodes()
    volume = nodes.volume
    loads = (lambda: logic.load_results(path, volume), lambda: logic.import_annotations(path, volume=volume))
    for load in loads:
        try:
            load()
        except GeometryMismatchError as error:
            message = str(error)
        else:
            raise AssertionError("a result of another image was loaded")
        _equal(message, "other_patient_results.json was made on another image (extent 512 x 512 x 300 voxels, "
               "the volume has 40 x 40 x 60); not loaded onto 'selftest'", "the refusal")
        _equal(scene.GetNumberOfNodes(), count, "nodes after the refusal")
    result.input = logic._input_block(nodes.volume)
    path.write_text(result.to_json(), encoding="utf-8")
    _equal(VertebralFractureLogic(scene).load_results(path, nodes.volume).result.labels, ["T12", "L1", "L2"],
           "the same image's result loads")


#: The levels the real analysis finds on the bundled sample CT (T12 cut by the superior edge).
SAMPLE_LEVELS = ["T12", "L1", "L2", "L3", "L4", "L5"]
#: The reader of the self-test's review marks.
SELFTEST_READER = "selftest reader"


def sample_volume(scene):
    """The bundled sample CT (TotalSegmentator example, 3 mm) as a volume node named ``sample``."""
    from ..data import sample_ct_path
    from ..io.images import read_image
    from .volumes import volume_from_image

    return volume_from_image(read_image(sample_ct_path()), scene=scene, name="sample")


def check_sample_analysis(logic, nodes) -> None:
    """What the real analysis of the sample CT must show: levels, table, markups, segments, queue."""
    from .tables import table_rows

    rows = table_rows(nodes.table)
    _equal([r["Level"] for r in rows], SAMPLE_LEVELS, "levels found")
    _equal([r["Status"] for r in rows], ["not assessed"] * 2 + ["assessed"] * 4, "status column")
    _equal(rows[0]["Reason"], "cut by the edge of the field of view (superior edge)", "why T12 is not assessed")
    # L4 sits at G 0.80, the grade 0/1 border (0.8035 through the CLI): no grade 2-3 is the stable claim
    _equal([r["Grade"] for r in rows][:2], [-1, -1], "T12 and L1 not graded")
    _equal([r["Grade"] in (0, 1) for r in rows[2:]], [True] * 4, "L2-L5 without a fracture (grade 0 or 1)")
    _equal([r["Review"] for r in rows], [""] * 6, "nobody reviewed yet")
    for row in rows[2:]:  # a lumbar body of an adult: heights 15-40 mm, G = min / max of them
        heights = [row["ha"], row["hm"], row["hp"]]
        _equal(all(15.0 < h < 40.0 for h in heights), True, f"{row['Level']} heights {heights} mm")
        _close(row["G"], min(heights) / max(heights), f"{row['Level']} G", 1e-6)
    _equal(nodes.keypoints.GetNumberOfControlPoints(), 36, "keypoints")
    _equal([nodes.centroids.GetNthControlPointLabel(i) for i in range(6)], SAMPLE_LEVELS, "centroids")
    _equal(_segment_names(nodes), sorted(SAMPLE_LEVELS), "segments")
    _equal(logic.review_queue(nodes)[0].label, "T12", "first in the review queue")


def _segment_names(nodes) -> list:
    return sorted(segment.GetName() for segment in _segments(nodes))


def _l3_height(nodes) -> float:
    from .tables import table_rows

    row = table_rows(nodes.table)[SAMPLE_LEVELS.index("L3")]
    _close(row["ha"], nodes.result.vertebra("L3").measure.heights[0], "L3 anterior height: table = result", 1e-9)
    return float(row["ha"])


def sample_ct_analysis(scene, folder: Path) -> None:
    """The real analysis of the sample CT (shipped weights), then a reader's pass: drag, relabel, accept, export."""
    from ..io.csv_tables import read_genant_csv
    from .logic import VertebralFractureLogic

    volume = sample_volume(scene)
    logic = VertebralFractureLogic(scene)
    nodes = logic.run(volume, device="cpu")
    check_sample_analysis(logic, nodes)
    # a drag: L3's anterior superior keypoint 4 mm down (RAS z) shortens its anterior height by about 4 mm
    before = _l3_height(nodes)
    _move(nodes.keypoints, "L3:0", -4.0)
    after = _l3_height(nodes)
    _equal(3.0 < before - after <= 4.0 + 1e-6, True, f"L3 anterior height {before:.2f} -> {after:.2f} mm (drag)")
    _equal(nodes.result.vertebra("L3").history[-1].action, "edit keypoints", "history of the dragged L3")
    # a relabel of the column ("T12 is T11"), undone
    logic.relabel(nodes, "T12", "T11")
    shifted = ["T11", "T12", "L1", "L2", "L3", "L4"]
    _equal(nodes.result.labels, shifted, "levels after 'T12 is T11'")
    _equal(_segment_names(nodes), sorted(shifted), "segments after the relabel")
    _equal(logic.undo(nodes), "relabel T12 as T11", "undo of the relabel")
    _equal((nodes.result.labels, _segment_names(nodes)), (SAMPLE_LEVELS, sorted(SAMPLE_LEVELS)), "after the undo")
    _close(_l3_height(nodes), after, "L3 anterior height kept through relabel and undo")
    # the review queue: N goes to T12 (not assessed), A accepts it
    _equal(logic.key(nodes, "next").split(":")[0], "T12", "first N")
    logic.reviewer = SELFTEST_READER
    logic.key(nodes, "accept")
    mark = nodes.result.vertebra("T12").extra["review"]
    _equal(_table_marks(nodes.table), {"T12": ("accepted", SELFTEST_READER, mark["at"])}, "the accept in the table")
    # export: annotations and genant.csv carry the drag and the accept; the annotations import onto the same CT
    paths = {fmt: folder / f"sample_{fmt}.{'csv' if fmt == 'genant_csv' else 'json'}" for fmt in ("annotations",
                                                                                                   "genant_csv")}
    for fmt, path in paths.items():
        path.unlink(missing_ok=True)
        logic.export_annotations(nodes, path, file_format=fmt)
    rows = read_genant_csv(paths["genant_csv"])
    _equal([r["level"] for r in rows], SAMPLE_LEVELS, "levels in genant.csv")
    _equal((rows[0]["review"], rows[0]["reviewed_by"]), ("accepted", SELFTEST_READER), "T12 review in genant.csv")
    _close(rows[3]["ha_mm"], round(after, 1), "L3 anterior height in genant.csv", 1e-9)
    again = VertebralFractureLogic(scene).import_annotations(paths["annotations"], volume=volume)
    _equal(again.result.labels, SAMPLE_LEVELS, "levels after the import")
    _close(again.result.vertebra("L3").keypoints, nodes.result.vertebra("L3").keypoints, "L3 keypoints imported")
    _equal(again.result.vertebra("T12").extra["review"], mark, "T12 review mark imported")


SCENARIOS: Dict[str, Callable[[object, Path], None]] = {
    "volume_geometry": volume_geometry,
    "markups_round_trip": markups_round_trip,
    "segmentation_round_trip": segmentation_round_trip,
    "table_types": table_types,
    "keypoint_edit": keypoint_edit,
    "withheld_edit": withheld_edit,
    "analysis_to_nodes": analysis_to_nodes,
    "relabel_add_delete": relabel_add_delete,
    "export_import": export_import,
    "scene_bundle": scene_bundle,
    "cancel_keeps_scene": cancel_keeps_scene,
    "radiograph_result": radiograph_result,
    "review_queue_keys": review_queue_keys,
    "review_persistence": review_persistence,
    "undo_redo": undo_redo,
    "geometry_refused": geometry_refused,
    "sample_ct_analysis": sample_ct_analysis,
}
