import math

import pytest

from VertebralFractureLib.mrml.tables import COLUMNS

EXPECTED_TYPES = {
    "Level": "string",
    "Verdict": "string",
    "Status": "string",
    "Reason": "string",
    "ha": "double",
    "hm": "double",
    "hp": "double",
    "G": "double",
    "Neighbour reduction": "double",
    "Grade": "int",
    "Type": "string",
    "Confidence": "double",
    "Fracture probability": "double",
    "Voxel fracture score": "double",
    "Abnormality": "double",
    "Source": "string",
    "Review": "string",
    "Reviewed by": "string",
    "Reviewed at": "string",
}


def _types(node):
    table = node.GetTable()
    return {table.GetColumnName(i): table.GetColumn(i).GetDataTypeAsString() for i in range(table.GetNumberOfColumns())}


def test_genant_table_has_typed_columns_and_values(mrml_scene, spine_result):
    from VertebralFractureLib.mrml.tables import genant_table, table_rows

    node = genant_table(spine_result, scene=mrml_scene)
    assert node.IsA("vtkMRMLTableNode") and node.GetName() == "Genant"
    assert _types(node) == EXPECTED_TYPES
    assert [c[0] for c in COLUMNS] == list(EXPECTED_TYPES)
    assert node.GetColumnUnitLabel("ha") == "mm"
    rows = table_rows(node)
    assert [r["Level"] for r in rows] == ["T12", "L1", "L2"]
    l1 = rows[1]
    assert (l1["ha"], l1["hm"], l1["hp"]) == pytest.approx((16.0, 24.0, 25.0))
    assert l1["G"] == pytest.approx(0.64) and l1["Grade"] == 2 and l1["Type"] == "wedge"
    assert l1["Fracture probability"] == 0.9 and l1["Confidence"] is None
    assert rows[0]["Confidence"] == 0.95 and rows[2]["Abnormality"] == 12.5


def test_update_row_and_refill(mrml_scene, spine_result):
    from VertebralFractureLib.mrml.tables import find_row, genant_table, table_rows, update_row

    node = genant_table(spine_result, scene=mrml_scene)
    l1 = spine_result.vertebra("L1")
    l1.keypoints[0, 2] += 5.0  # anterior superior up: ha 21
    spine_result.recompute()
    assert update_row(node, l1) == 1
    row = table_rows(node)[1]
    assert row["ha"] == pytest.approx(21.0) and row["Grade"] == 0 and row["Type"] == "none"
    assert find_row(node, "l2") == 2 and find_row(node, "L5") == -1
    spine_result.vertebrae.pop(0)
    again = genant_table(spine_result, node=node)
    assert again is node and [r["Level"] for r in table_rows(node)] == ["L1", "L2"]
    assert _types(node) == EXPECTED_TYPES


def test_unmeasured_vertebra_row(mrml_scene, spine_result):
    from VertebralFractureLib.mrml.tables import genant_table, table_rows

    spine_result.vertebra("L2").keypoints[1] = spine_result.vertebra("L2").keypoints[0]  # ha = 0
    spine_result.recompute()
    row = table_rows(genant_table(spine_result, scene=mrml_scene))[2]
    assert row["Grade"] == -1 and row["G"] is None and row["Type"] == ""


def test_table_file_keeps_column_types(mrml_scene, spine_result, tmp_path):
    from VertebralFractureLib.mrml.tables import genant_table, read_table, table_rows, write_table

    node = genant_table(spine_result, scene=mrml_scene)
    path = write_table(node, tmp_path / "genant.tsv")
    assert (tmp_path / "genant.schema.tsv").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["genant.schema.tsv", "genant.tsv"]
    loaded = read_table(path, scene=mrml_scene)
    assert _types(loaded) == EXPECTED_TYPES
    rows = table_rows(loaded)
    assert rows[1]["Grade"] == 2 and rows[1]["G"] == pytest.approx(0.64)
    assert rows[1]["Confidence"] is None or math.isnan(rows[1]["Confidence"])


def test_column_titles_are_the_csv_names(mrml_scene, spine_result):
    from VertebralFractureLib.io.csv_tables import GENANT_COLUMNS
    from VertebralFractureLib.mrml.tables import COLUMN_NAMES, genant_table

    node = genant_table(spine_result, scene=mrml_scene)
    titles = [node.GetColumnTitle(name) for name in COLUMN_NAMES]
    assert set(titles) <= set(GENANT_COLUMNS) and len(set(titles)) == len(titles)
    assert node.GetColumnTitle("ha") == "ha_mm" and node.GetColumnUnitLabel("ha") == "mm"
    assert node.GetColumnTitle("Neighbour reduction") == "neighbour_reduction"


def test_a_picture_without_pixel_size_shows_its_heights_in_pixels(mrml_scene, spine_result):
    import numpy as np

    from VertebralFractureLib.io.csv_tables import GENANT_COLUMNS
    from VertebralFractureLib.mrml.tables import genant_table, table_rows
    from VertebralFractureLib.schema import SpineResult, Vertebra

    points = np.array([[0, 0], [0, 40], [20, 0], [20, 40], [40, 0], [40, 32]], float)
    pixels = SpineResult([Vertebra("L1", [20, 20], points)], frame="pixel", pixel_spacing=(1.0, 1.0),
                         input={"height_unit": "pixel"})
    node = genant_table(pixels, scene=mrml_scene)
    assert node.GetColumnTitle("ha") == "ha_px" and node.GetColumnUnitLabel("hp") == "px"
    assert node.GetColumnTitle("hp") in GENANT_COLUMNS and table_rows(node)[0]["hp"] == 32.0
    genant_table(spine_result, node=node)  # refilled with a CT result: back to mm
    assert node.GetColumnTitle("ha") == "ha_mm" and node.GetColumnUnitLabel("ha") == "mm"
