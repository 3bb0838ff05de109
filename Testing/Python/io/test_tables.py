import csv

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from VertebralFractureLib.io.atomic import ExistingFileError
from VertebralFractureLib.io.csv_tables import (
    DECIMALS,
    GENANT_COLUMNS,
    TableError,
    genant_rows,
    keypoint_columns,
    read_genant_csv,
    read_keypoints_csv,
    write_genant_csv,
    write_keypoints_csv,
)
from VertebralFractureLib.levels import LEVEL_NAMES
from VertebralFractureLib.schema import SpineResult, Vertebra


def body(ha: float, hm: float, hp: float, z: float = 0.0) -> np.ndarray:
    """Six keypoints (LPS) of a vertebral body with the given heights, top endplate at z."""
    return np.array([[0, -10, z], [0, -10, z - ha], [0, 0, z], [0, 0, z - hm], [0, 12, z], [0, 12, z - hp]], float)


@pytest.fixture
def result():
    vertebrae = [
        Vertebra("T12", [1, 2, 3], body(25, 25, 25, 60), confidence=0.9, source="model"),
        Vertebra("L1", [0, 0, 20], body(18, 24, 25, 30), confidence=0.75, fracture_probability=0.8),
        Vertebra("L2", [0, 0, -10], body(25, 25, 25, 0), source="annotator", abnormality=55.0),
        Vertebra("L4", [0, 0, -60], body(25, 25, 0.0, -50), source="annotator"),  # degenerate: no measure
    ]
    return SpineResult(vertebrae)


def test_genant_rows_values(result):
    rows = genant_rows(result)
    assert [r["level"] for r in rows] == ["T12", "L1", "L2", "L4"]
    assert all(tuple(r) == GENANT_COLUMNS for r in rows)
    l1 = rows[1]
    assert (l1["ha_mm"], l1["hm_mm"], l1["hp_mm"]) == (18.0, 24.0, 25.0)
    assert l1["G"] == pytest.approx(0.72)
    assert (l1["grade"], l1["type"]) == (2, "wedge")
    assert l1["neighbour_reduction"] == pytest.approx(0.0)
    assert (l1["confidence"], l1["fracture_probability"], l1["voxel_fracture_score"]) == (0.75, 0.8, "")
    assert rows[0]["neighbour_reduction"] == pytest.approx(0.0)
    l4 = rows[3]
    assert l4["ha_mm"] == l4["G"] == l4["grade"] == l4["type"] == l4["neighbour_reduction"] == ""
    assert l4["source"] == "annotator"


def test_genant_csv_round_trip_typed(tmp_path, result):
    path = write_genant_csv(result, tmp_path / "genant.csv")
    with open(path, newline="") as handle:
        assert next(csv.reader(handle)) == list(GENANT_COLUMNS)
    rows = read_genant_csv(path)
    expected = genant_rows(result)
    for got, want in zip(rows, expected):
        for column in GENANT_COLUMNS:
            assert got[column] == (None if want[column] == "" else want[column]), column
    assert isinstance(rows[1]["grade"], int) and isinstance(rows[1]["G"], float)
    with pytest.raises(ExistingFileError, match=r"genant\.csv exists; refusing to overwrite"):
        write_genant_csv(result, path)


@pytest.mark.parametrize(
    "text, message",
    [
        ("level,G\nL9,0.5\n", r"line 2, column 'level'.*unknown vertebra level 'L9'"),
        ("level,G\nL1,0.5\nL1,0.6\n", "line 3: duplicate level L1"),
        ("level,G\nL1,abc\n", r"line 2 \(L1\), column 'G': 'abc' is not a number"),
        ("level,G\nL1,nan\n", "not finite"),
        ("level,grade\nL1,5\n", "expected 0-3"),
        ("G,grade\n0.5,1\n", "missing column"),
        ("", "empty"),
        ("level,G\nL1,0.5,7\n", "more cells than columns"),
    ],
)
def test_bad_genant_tables(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(TableError, match=message) as info:
        read_genant_csv(path)
    assert "bad.csv" in str(info.value)


def test_spreadsheet_variants_are_read(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_text("\ufefflevel;G;grade\nTh7;0.7;2\n;;\n", encoding="utf-8")
    assert read_genant_csv(path) == [
        {
            "case": None,
            "level": "T7",
            "ha_mm": None,
            "hm_mm": None,
            "hp_mm": None,
            "ha_px": None,
            "hm_px": None,
            "hp_px": None,
            "G": 0.7,
            "neighbour_reduction": None,
            "confidence": None,
            "quality": None,
            "fracture_probability": None,
            "voxel_fracture_score": None,
            "abnormality": None,
            "grade": 2,
            "verdict": None,
            "verdict_reason": None,
            "status": None,
            "status_reason": None,
            "type": None,
            "source": None,
            "review": None,
            "reviewed_by": None,
            "reviewed_at": None,
        }
    ]


def test_keypoints_csv_round_trip(tmp_path, result):
    path = write_keypoints_csv(result, tmp_path / "points.csv")
    header = path.read_text().splitlines()[0].split(",")
    assert header == keypoint_columns(3) and len(header) == 1 + 18 + 3 + 1
    assert header[1:4] == ["anterior_superior_x", "anterior_superior_y", "anterior_superior_z"]
    back = read_keypoints_csv(path)
    assert back.labels == result.labels
    for a, b in zip(result.vertebrae, back.vertebrae):
        assert np.array_equal(a.keypoints, b.keypoints)
        assert np.array_equal(a.centroid, b.centroid)
        assert a.source == b.source
    assert back.vertebra("L1").measure.grade == 2
    assert back.vertebra("L4").measure is None


def test_edited_keypoints_csv_changes_the_grade(tmp_path, result):
    path = write_keypoints_csv(result, tmp_path / "points.csv")
    rows = list(csv.DictReader(path.open()))
    # an annotator lowers L2's anterior superior point by 11 mm: ha 25 -> 14, G 0.56, grade 3 wedge
    rows[2]["anterior_superior_z"] = str(float(rows[2]["anterior_superior_z"]) - 11)
    rows[2]["centroid_x"] = rows[2]["centroid_y"] = rows[2]["centroid_z"] = ""
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    back = read_keypoints_csv(path, source="spreadsheet")
    l2 = back.vertebra("L2")
    assert (l2.measure.grade, l2.measure.type) == (3, "wedge")
    assert l2.measure.G == pytest.approx(0.56)
    np.testing.assert_allclose(l2.centroid, l2.keypoints.mean(axis=0))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    levels=st.lists(st.sampled_from(LEVEL_NAMES), unique=True, max_size=4),
    data=st.data(),
    pixel=st.booleans(),
)
def test_keypoints_csv_round_trip_property(tmp_path, levels, data, pixel):
    dim = 2 if pixel else 3
    coord = st.floats(-1e4, 1e4, allow_nan=False)
    vertebrae = [
        Vertebra(
            level,
            data.draw(st.tuples(*[coord] * dim)),
            data.draw(st.lists(st.tuples(*[coord] * dim), min_size=6, max_size=6)),
            source=data.draw(st.sampled_from(["model", "annotator", 'a, b "quoted"'])),
        )
        for level in levels
    ]
    result = SpineResult(vertebrae, frame="pixel" if pixel else "LPS", pixel_spacing=(0.2, 0.3))
    path = write_keypoints_csv(result, tmp_path / "p.csv", overwrite=True)
    back = read_keypoints_csv(path, pixel_spacing=(0.2, 0.3))
    assert back.frame == result.frame
    assert [v.to_dict() for v in back.vertebrae] == [v.to_dict() for v in result.vertebrae]


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda r: r.__setitem__("middle_inferior_y", ""),
            r"line 2 \(T12\), column 'middle_inferior_y': value missing",
        ),
        (lambda r: r.__setitem__("level", "T13x"), "unknown vertebra level"),
        (lambda r: r.__setitem__("posterior_superior_x", "1,5"), "is not a number"),
        (lambda r: r.__setitem__("centroid_y", ""), "centroid is only partly filled in"),
    ],
)
def test_bad_keypoint_tables(tmp_path, result, edit, message):
    path = write_keypoints_csv(result, tmp_path / "points.csv")
    rows = list(csv.DictReader(path.open()))
    edit(rows[0])
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(TableError, match=message) as info:
        read_keypoints_csv(path)
    assert "points.csv" in str(info.value)


def test_keypoint_table_duplicate_and_missing_columns(tmp_path, result):
    path = write_keypoints_csv(result, tmp_path / "points.csv")
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], lines[1], lines[1]]) + "\n")
    with pytest.raises(TableError, match="line 3: duplicate level T12"):
        read_keypoints_csv(path)
    path.write_text("level,anterior_superior_x\nL1,3\n")
    with pytest.raises(TableError, match="missing column"):
        read_keypoints_csv(path)


def test_genant_csv_is_rounded_to_what_is_measured_and_names_the_case(tmp_path):
    vertebrae = [
        Vertebra("L1", [0, 0, 20], body(18.04321, 24.0, 25.06789, 30), confidence=0.99971,
                 fracture_probability=0.123456, voxel_fracture_score=0.98765, abnormality=54.7234, quality=0.7921),
        Vertebra("L2", [0, 0, -10], body(25, 25, 25, 0), status="not_assessed",
                 status_reason="cut by the edge of the field of view (inferior edge)"),
    ]
    result = SpineResult(vertebrae, input={"path": "case-017.nii.gz"})
    path = write_genant_csv(result, tmp_path / "genant.csv")
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    l1, l2 = rows
    assert [r["case"] for r in rows] == ["case-017.nii.gz", "case-017.nii.gz"]
    assert (l1["ha_mm"], l1["hm_mm"], l1["hp_mm"]) == ("18.0", "24.0", "25.1")
    assert l1["G"] == "0.72" and l1["grade"] == "2"
    assert (l1["confidence"], l1["fracture_probability"], l1["voxel_fracture_score"]) == ("1.0", "0.12", "0.99")
    assert (l1["abnormality"], l1["quality"]) == ("54.7", "0.79")
    assert max(len(r[c]) for r in rows for c in DECIMALS) <= 5  # no 17-digit floats
    assert (l2["status"], l2["verdict"], l2["G"]) == ("not_assessed", "not assessed", "")
    assert l2["status_reason"] == "cut by the edge of the field of view (inferior edge)"
    assert read_genant_csv(path)[0]["case"] == "case-017.nii.gz"
    batch_path = write_genant_csv(result, tmp_path / "b.csv", case="sub__scan.nii.gz")
    assert read_genant_csv(batch_path)[1]["case"] == "sub__scan.nii.gz"


def test_a_picture_without_pixel_size_writes_its_heights_in_pixel_columns(tmp_path):
    points = np.array([[0, 0], [0, 40], [20, 0], [20, 40], [40, 0], [40, 32]], float)
    result = SpineResult([Vertebra("L1", [20, 20], points)], frame="pixel", pixel_spacing=(1.0, 1.0),
                         input={"height_unit": "pixel"})
    row = genant_rows(result)[0]
    assert (row["ha_mm"], row["hm_mm"], row["hp_mm"]) == ("", "", "")
    assert (row["ha_px"], row["hm_px"], row["hp_px"]) == (40.0, 40.0, 32.0)
    path = write_genant_csv(result, tmp_path / "genant.csv")
    back = read_genant_csv(path)[0]
    assert back["ha_mm"] is None and back["hp_px"] == 32.0 and back["G"] == pytest.approx(0.8)
    mm_row = genant_rows(SpineResult([Vertebra("L1", [20, 20], points)], frame="pixel", pixel_spacing=(0.5, 0.25)))[0]
    assert mm_row["ha_mm"] == 10.0 and mm_row["ha_px"] == ""
