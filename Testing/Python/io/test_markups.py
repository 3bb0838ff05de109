import json

import numpy as np
import pytest

from VertebralFractureLib.genant import KEYPOINT_NAMES
from VertebralFractureLib.io.atomic import ExistingFileError
from VertebralFractureLib.io.mrk_json import (
    MARKUPS_SCHEMA,
    ControlPoint,
    MarkupsFormatError,
    PointList,
    centroids_list,
    keypoints_list,
    parse_point,
    read_markups_json,
    read_result_markups,
    result_from_lists,
    write_markups_json,
    write_result_markups,
)
from VertebralFractureLib.schema import SpineResult, Vertebra


def test_keypoints_file_follows_slicer_schema(tmp_path, spine_result):
    path = write_markups_json(tmp_path / "kp.mrk.json", keypoints_list(spine_result))
    document = json.loads(path.read_text())
    assert document["@schema"] == MARKUPS_SCHEMA
    (markup,) = document["markups"]
    assert markup["type"] == "Fiducial" and markup["coordinateSystem"] == "LPS"
    points = markup["controlPoints"]
    assert len(points) == 18
    assert points[0]["label"] == f"T12 {KEYPOINT_NAMES[0]}" and points[0]["id"] == "T12:0"
    assert points[7]["label"] == "L1 anterior inferior" and points[7]["description"] == "L1:1"
    for key in ("id", "label", "description", "position", "orientation", "selected", "locked", "visibility"):
        assert key in points[0]
    assert points[0]["positionStatus"] == "defined"
    np.testing.assert_allclose(points[6]["position"], spine_result.vertebra("L1").keypoints[0])


def test_only_the_centroids_show_their_labels(tmp_path, spine_result):
    keypoints = json.loads(write_markups_json(tmp_path / "k.mrk.json", keypoints_list(spine_result)).read_text())
    centroids = json.loads(write_markups_json(tmp_path / "c.mrk.json", centroids_list(spine_result)).read_text())
    assert keypoints["markups"][0]["display"]["pointLabelsVisibility"] is False  # 6 labels per vertebra overlap
    assert centroids["markups"][0]["display"]["pointLabelsVisibility"] is True  # one label per vertebra
    assert [p["label"] for p in centroids["markups"][0]["controlPoints"]] == spine_result.labels


def test_result_round_trip_through_files(tmp_path, spine_result):
    write_result_markups(spine_result, tmp_path / "kp.mrk.json", tmp_path / "c.mrk.json")
    back = read_result_markups(tmp_path / "kp.mrk.json", tmp_path / "c.mrk.json")
    assert back.labels == ["T12", "L1", "L2"]
    for old, new in zip(spine_result.vertebrae, back.vertebrae):
        np.testing.assert_allclose(new.keypoints, old.keypoints)
        np.testing.assert_allclose(new.centroid, old.centroid)
        assert new.measure.grade == old.measure.grade
        assert new.measure.G == pytest.approx(old.measure.G)
    assert back.vertebra("L1").measure.grade == 2 and back.vertebra("L1").measure.type == "wedge"
    centroids = read_markups_json(tmp_path / "c.mrk.json")[0]
    assert centroids.labels == ["T12", "L1", "L2"]


def test_ras_file_is_converted_to_lps(tmp_path):
    document = {
        "@schema": MARKUPS_SCHEMA,
        "markups": [
            {
                "type": "Fiducial",
                "coordinateSystem": "RAS",
                "controlPoints": [{"label": "L3", "position": [10.0, -20.0, 30.0]}],
            }
        ],
    }
    path = tmp_path / "ras.mrk.json"
    path.write_text(json.dumps(document))
    (points,) = read_markups_json(path)
    np.testing.assert_allclose(points.positions, [[-10.0, 20.0, 30.0]])
    assert points.labels == ["L3"] and points.name == "ras"


def test_points_map_back_by_label_when_description_is_missing(spine_result):
    listed = keypoints_list(spine_result)
    rng = np.random.default_rng(0)
    shuffled = [listed.points[i] for i in rng.permutation(len(listed.points))]
    for point in shuffled:
        point.description, point.id = "", str(rng.integers(1000))
    back = result_from_lists(PointList("edited", shuffled))
    np.testing.assert_allclose(back.vertebra("L1").keypoints, spine_result.vertebra("L1").keypoints)
    # centroid defaults to the keypoints' mean
    np.testing.assert_allclose(back.vertebra("L1").centroid, spine_result.vertebra("L1").keypoints.mean(axis=0))


def test_parse_point_variants():
    p = np.zeros(3)
    assert parse_point(ControlPoint(p, description="Th7:3")) == ("T7", 3)
    assert parse_point(ControlPoint(p, id="l1:centroid")) == ("L1", "centroid")
    assert parse_point(ControlPoint(p, label="L5  posterior   inferior")) == ("L5", 5)
    assert parse_point(ControlPoint(p, label="T12")) == ("T12", "centroid")
    assert parse_point(ControlPoint(p, label="F-1")) is None
    assert parse_point(ControlPoint(p, label="X9 anterior superior")) is None


def test_template_keeps_scores_and_records_moves(spine_result):
    listed = keypoints_list(spine_result)
    listed.points[6].position = listed.points[6].position + np.array([0.0, 0.0, 4.0])  # L1 anterior superior up
    edited = result_from_lists(listed, centroids_list(spine_result), template=spine_result)
    l1 = edited.vertebra("L1")
    assert l1.fracture_probability == 0.9 and edited.vertebra("L2").abnormality == 12.5
    assert l1.keypoints[0, 2] == pytest.approx(spine_result.vertebra("L1").keypoints[0, 2] + 4)
    assert l1.measure.heights[0] == pytest.approx(20.0)
    assert l1.measure.grade == 1
    assert [e.action for e in l1.history] == ["edit keypoints"]
    assert "anterior superior 4.0 mm" in l1.history[0].detail
    assert edited.vertebra("T12").history == []
    assert edited.input == {"path": "synthetic.nii.gz"}


def _withheld(result: SpineResult) -> SpineResult:
    """``result`` with L1 withheld for its keypoints (grade 2 unconfirmed) and T12 for being cut by the view."""
    from VertebralFractureLib.radiograph.gate2d import REASONS
    from VertebralFractureLib.verdict import UNCONFIRMED_GRADE_KEY

    withheld = SpineResult.from_json(result.to_json())
    withheld.vertebra("L1").extra[UNCONFIRMED_GRADE_KEY] = 2
    withheld.vertebra("L1").not_assessed(REASONS["endplates"])
    withheld.vertebra("T12").not_assessed("cut by the edge of the field of view (superior edge)")
    withheld.recompute()
    return withheld


def test_a_readers_keypoints_measure_a_withheld_vertebra(spine_result):
    from VertebralFractureLib.radiograph.gate2d import REASONS

    template = _withheld(spine_result)
    assert template.vertebra("L1").measure is None
    listed = keypoints_list(template)
    listed.points[6].position = listed.points[6].position + np.array([0.0, 0.0, 4.0])  # L1 anterior superior up
    listed.points[0].position = listed.points[0].position + np.array([0.0, 0.0, 2.0])  # T12 anterior superior up
    edited = result_from_lists(listed, centroids_list(template), template=template)
    l1 = edited.vertebra("L1")
    assert l1.status == "assessed" and l1.status_reason is None
    assert l1.measure.heights[0] == pytest.approx(20.0) and l1.measure.grade == 1  # the reader's points, not grade 2
    assert l1.extra["keypoints_by"] == "reader" and l1.extra["withheld_by_analysis"] == REASONS["endplates"]
    assert "unconfirmed_grade" not in l1.extra
    assert [e.action for e in l1.history] == ["edit keypoints", "assess"]
    assert REASONS["endplates"] in l1.history[1].detail
    # cut by the view: the reader's points do not make the picture hold the body
    t12 = edited.vertebra("T12")
    assert t12.status == "not_assessed" and t12.measure is None and t12.extra["keypoints_by"] == "reader"
    assert t12.status_reason == "cut by the edge of the field of view (superior edge)"
    assert edited.to_dict()["patient"]["not_assessed"] == {"T12": t12.status_reason}
    # untouched vertebrae keep what the analysis said; the state survives the JSON round trip
    assert "keypoints_by" not in edited.vertebra("L2").extra
    from VertebralFractureLib.io.csv_tables import genant_rows

    sources = {row["level"]: row["source"] for row in genant_rows(edited)}
    assert sources == {"T12": "model, moved by the reader", "L1": "model, moved by the reader", "L2": "model"}
    again = SpineResult.from_json(edited.to_json())
    assert again.vertebra("L1").assessed and again.vertebra("L1").measure.grade == 1
    assert again.vertebra("L1").extra["withheld_by_analysis"] == REASONS["endplates"]


def test_an_unmoved_withheld_vertebra_stays_withheld(spine_result):
    template = _withheld(spine_result)
    listed = keypoints_list(template)
    listed.points[12].position = listed.points[12].position + np.array([0.0, 0.0, 1.0])  # only L2 moves
    edited = result_from_lists(listed, centroids_list(template), template=template)
    assert not edited.vertebra("L1").assessed and edited.vertebra("L1").measure is None
    assert edited.vertebra("L1").extra.get("unconfirmed_grade") == 2
    assert edited.vertebra("L2").extra["keypoints_by"] == "reader"


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "not valid JSON"),
        ("[]", "JSON object"),
        (json.dumps({"@schema": "something else", "markups": []}), "not a Slicer markups file"),
        (json.dumps({"@schema": MARKUPS_SCHEMA, "markups": []}), "non-empty list"),
        (
            json.dumps({"@schema": MARKUPS_SCHEMA, "markups": [{"coordinateSystem": "XYZ", "controlPoints": []}]}),
            "unknown coordinateSystem",
        ),
        (
            json.dumps({"@schema": MARKUPS_SCHEMA, "markups": [{"controlPoints": [{"position": [1, 2]}]}]}),
            "control point 1: position",
        ),
        (
            json.dumps({"@schema": MARKUPS_SCHEMA, "markups": [{"controlPoints": {"a": 1}}]}),
            "'controlPoints' must be a list",
        ),
    ],
)
def test_malformed_files_give_clear_errors(tmp_path, text, message):
    path = tmp_path / "bad.mrk.json"
    path.write_text(text)
    with pytest.raises(MarkupsFormatError, match=message):
        read_markups_json(path)


def test_missing_file():
    with pytest.raises(FileNotFoundError, match=r"x\.mrk\.json: no such markups file"):
        read_markups_json("/nonexistent/x.mrk.json")


def test_incomplete_duplicate_and_unnamed_points(spine_result):
    listed = keypoints_list(spine_result)
    with pytest.raises(MarkupsFormatError, match="L1 lacks keypoints: middle superior"):
        result_from_lists(PointList("kp", [p for p in listed.points if p.description != "L1:2"]))
    with pytest.raises(MarkupsFormatError, match="T12 anterior superior appears twice"):
        result_from_lists(PointList("kp", listed.points + [listed.points[0]]))
    with pytest.raises(MarkupsFormatError, match="point 19 .* names no vertebra keypoint"):
        result_from_lists(PointList("kp", listed.points + [ControlPoint(np.zeros(3), label="F-1")]))


def test_unplaced_points_are_ignored(spine_result):
    listed = keypoints_list(spine_result)
    listed.points.append(ControlPoint(np.zeros(3), label="L3 anterior superior", position_status="missing"))
    assert result_from_lists(listed).labels == ["T12", "L1", "L2"]


def test_pixel_results_are_refused():
    result = SpineResult([Vertebra("L1", [0, 0], np.arange(12.0).reshape(6, 2))], frame="pixel")
    with pytest.raises(MarkupsFormatError, match="pixel"):
        keypoints_list(result)


def test_existing_file_is_not_overwritten(tmp_path, spine_result):
    path = write_markups_json(tmp_path / "kp.mrk.json", keypoints_list(spine_result))
    with pytest.raises(ExistingFileError, match=r"kp\.mrk\.json exists; refusing to overwrite"):
        write_markups_json(path, centroids_list(spine_result))
    write_markups_json(path, centroids_list(spine_result), overwrite=True)
    assert len(read_markups_json(path)[0].points) == 3
