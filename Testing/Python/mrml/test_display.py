"""An analysis becomes scene nodes: markups, table, summary, coloured segments with a legend,
the straightened image, all grouped under the input volume in the subject hierarchy."""

import numpy as np
import pytest
from mrml.helpers import analysis_of

from VertebralFractureLib.colors import GRADE_COLORS, UNKNOWN_COLOR, abnormality_color, grade_color


def test_analysis_becomes_nodes(case, shown, ct_volume, mrml_scene):
    from VertebralFractureLib.mrml import display
    from VertebralFractureLib.mrml.segmentations import segment_info
    from VertebralFractureLib.mrml.tables import COLUMN_NAMES, table_rows

    truth = case.truth
    n = len(truth.vertebrae)
    assert shown.keypoints.GetNumberOfControlPoints() == 6 * n
    assert shown.keypoints.GetNthControlPointLabel(6) == f"{truth.labels[1]} anterior superior"
    assert [shown.centroids.GetNthControlPointLabel(i) for i in range(n)] == truth.labels

    rows = table_rows(shown.table)
    assert shown.table.GetName() == "CT Genant"
    assert tuple(shown.table.GetTable().GetColumnName(i) for i in range(len(COLUMN_NAMES))) == COLUMN_NAMES
    assert [r["Level"] for r in rows] == truth.labels
    for row, vertebra in zip(rows, truth.vertebrae):
        assert (row["ha"], row["hm"], row["hp"]) == pytest.approx(vertebra.measure.heights)
        assert row["G"] == pytest.approx(vertebra.measure.G) and row["Grade"] == vertebra.measure.grade

    segments = {s["name"]: s for s in segment_info(shown.segmentation)}
    assert set(truth.labels) <= set(segments)
    for vertebra in truth.vertebrae:
        assert segments[vertebra.label]["color"] == pytest.approx(grade_color(vertebra.measure.grade))
    extra = set(segments) - set(truth.labels)  # partial vertebrae at the edges of the view
    assert all(segments[name]["color"] == pytest.approx(UNKNOWN_COLOR) for name in extra)

    colors = shown.colors
    assert colors.GetNumberOfColors() == 5 and colors.GetColorName(2) == "Grade 2 moderate"
    rgba = [0.0] * 4
    colors.GetColor(3, rgba)
    assert rgba[:3] == pytest.approx(GRADE_COLORS[3], abs=1 / 255)  # stored as 8-bit
    from slicer import vtkSlicerColorLogic

    legend = vtkSlicerColorLogic.GetColorLegendDisplayNode(shown.segmentation)
    assert legend is not None and legend.GetColorNode() is colors

    summary = display.summary_text(truth)
    assert shown.summary.GetText() == summary
    assert shown.table.GetAttribute("VertebralFracture.Summary") == summary
    assert shown.table.GetAttribute("VertebralFracture.NumberOfVertebrae") == str(n)
    assert summary.startswith(f"{n} vertebrae, {truth.patient_summary()['n_fractured']} fractured")

    straight = shown.straightened
    size = case.ct.GetSize()
    assert straight.GetImageData().GetDimensions() == (size[1], size[2], 1)  # columns (AP), rows (SI)
    assert straight.GetSpacing() == pytest.approx((2.0, 2.0, 1.0))

    shn = mrml_scene.GetSubjectHierarchyNode()
    assert shn.GetItemParent(shown.folder) == shn.GetItemByDataNode(ct_volume)
    assert shn.GetItemName(shown.folder) == "Vertebral fracture"
    for role, node in shown.scene_nodes().items():
        assert shn.GetItemParent(shn.GetItemByDataNode(node)) == shown.folder, role


def test_summary_text_names_the_fractures(spine_result):
    from VertebralFractureLib.mrml.display import summary_attributes, summary_text

    text = summary_text(spine_result)
    assert text == (
        "3 vertebrae, 1 fractured (L1 grade 2 wedge), highest grade 2, min G 0.64, "
        "max fracture probability 0.90, max abnormality 12"
    )
    attributes = summary_attributes(spine_result)
    assert attributes["VertebralFracture.FracturedLevels"] == "L1"
    assert attributes["VertebralFracture.WorstLevel"] == "L1"
    assert not any(c in "".join(attributes.values()) for c in ":;")


def test_segments_coloured_by_abnormality(case, logic, ct_volume):
    analysis = analysis_of(case)
    scores = np.linspace(5.0, 95.0, len(analysis.result.vertebrae))
    for vertebra, score in zip(analysis.result.vertebrae, scores):
        vertebra.abnormality = float(score)
    nodes = logic.show_analysis(analysis, volume=ct_volume)  # abnormality present -> abnormality colours
    from VertebralFractureLib.mrml.segmentations import segment_info

    assert nodes.color_by == "abnormality"
    colours = {s["name"]: s["color"] for s in segment_info(nodes.segmentation)}
    for vertebra, score in zip(analysis.result.vertebrae, scores):
        assert colours[vertebra.label] == pytest.approx(abnormality_color(score))
    assert nodes.colors.GetNumberOfColors() == 12 and nodes.colors.GetColorName(5) == "Abnormality 50"

    logic.set_color_mode(nodes, "grade")
    colours = {s["name"]: s["color"] for s in segment_info(nodes.segmentation)}
    assert colours[case.truth.labels[0]] == pytest.approx(grade_color(case.truth.vertebrae[0].measure.grade))
    assert nodes.colors.GetNumberOfColors() == 5
    with pytest.raises(ValueError, match="colour mode"):
        logic.set_color_mode(nodes, "rainbow")


def test_plain_result_without_volume(logic, spine_result, mrml_scene):
    nodes = logic.show_result(spine_result, name="plain")
    shn = mrml_scene.GetSubjectHierarchyNode()
    assert shn.GetItemParent(nodes.folder) == shn.GetSceneItemID()
    assert nodes.segmentation is None and nodes.straightened is None
    assert nodes.table.GetAttribute("VertebralFracture.MaxGrade") == "2"
    assert nodes.store.GetAttribute("VertebralFracture.Role") == "result"


def test_table_row_gives_the_vertebra_position(logic, spine_result, mrml_scene):
    nodes = logic.show_result(spine_result)
    np.testing.assert_allclose(logic.row_position(nodes, 1), [-1.5, -3.0, 100.0])  # L1 centroid, RAS
    slice_node = mrml_scene.AddNewNodeByClass("vtkMRMLSliceNode")
    slice_node.SetOrientationToAxial()
    logic.jump_to_row(nodes, 2)
    assert slice_node.GetSliceOffset() == pytest.approx(70.0)  # L2 centroid height
    with pytest.raises(IndexError, match=r"row 3 is not in the table \(3 rows\)"):
        logic.row_position(nodes, 3)
