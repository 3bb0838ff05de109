import json

import numpy as np
import pytest

from VertebralFractureLib.levels import UnknownLevelError
from VertebralFractureLib.schema import SCHEMA, SchemaError, SpineResult, Vertebra


def body(ha, hm, hp, top=0.0):
    points = []
    for y, h in zip((0.0, 15.0, 30.0), (ha, hm, hp)):
        points += [[0.0, y, top], [0.0, y, top - h]]
    return np.array(points)


def column():
    return SpineResult(
        [
            Vertebra("L2", [0, 15, -12], body(25, 25, 25, 0), source="model", confidence=0.9),
            Vertebra("T12", [0, 15, 48], body(25, 25, 25, 60), fracture_probability=0.1),
            Vertebra("L1", [0, 15, 18], body(17.5, 17.5, 17.5, 30), fracture_probability=0.7),
            Vertebra("T9", [0, 15, 140], body(15, 20, 20, 150), abnormality=80.0),
        ]
    )


def test_vertebrae_sorted_and_measured():
    result = column()
    assert result.labels == ["T9", "T12", "L1", "L2"]
    l1 = result.vertebra("L1")
    assert (l1.measure.grade, l1.measure.type) == (2, "crush")
    assert l1.measure.neighbour_reduction == pytest.approx(0.3)
    t9 = result.vertebra("Th9")
    assert t9.measure.G == pytest.approx(0.75)
    assert (t9.measure.grade, t9.measure.type) == (2, "wedge")
    assert result.vertebra("T12").measure.grade == 0


def test_patient_summary():
    result = column()
    result.patient["fracture_probability"] = 0.8
    summary = result.patient_summary()
    assert summary["max_grade"] == 2
    assert summary["n_vertebrae"] == 4 and summary["n_fractured"] == 2
    assert summary["fractured_levels"] == ["T9", "L1"]
    assert summary["worst_level"] == "T9"  # both grade 2: the lower G (0.75 < 1.0) wins
    assert summary["min_G"] == pytest.approx(0.75)
    assert summary["max_fracture_probability"] == 0.7
    assert summary["max_abnormality"] == 80.0
    assert summary["fracture_probability"] == 0.8
    empty = SpineResult().patient_summary()
    assert empty["max_grade"] == 0 and empty["worst_level"] is None and empty["min_G"] is None


def test_worst_level_is_most_severe_then_lowest_g():
    result = SpineResult([Vertebra("L3", [0, 0, 0], body(14, 25, 25)), Vertebra("L4", [0, 0, 0], body(17, 25, 25))])
    assert result.patient_summary()["worst_level"] == "L3"
    result = SpineResult([Vertebra("L3", [0, 0, 0], body(25, 25, 25))])
    assert result.patient_summary()["worst_level"] is None


def test_recompute_after_editing_a_point():
    result = column()
    t12 = result.vertebra("T12")
    t12.keypoints[1, 2] += 11  # anterior inferior point moved up: h_a 25 -> 14
    t12.record("move", "anterior inferior +11 mm", user="tester")
    result.recompute()
    assert t12.measure.heights[0] == pytest.approx(14)
    assert (t12.measure.grade, t12.measure.type) == (3, "wedge")
    assert t12.history[-1].action == "move" and t12.history[-1].user == "tester"


def test_degenerate_vertebra_keeps_the_rest_measured():
    result = column()
    bad = result.vertebra("L2")
    bad.keypoints[5] = bad.keypoints[4]  # posterior height 0
    result.recompute()
    assert bad.measure is None
    assert result.warnings == [
        "keypoints L2: degenerate keypoints: posterior height is 0 (superior and inferior endplate points coincide)"
    ]
    assert result.vertebra("L1").measure is not None
    bad.keypoints[5, 2] -= 25
    result.recompute()
    assert bad.measure is not None and result.warnings == []


def test_duplicate_levels_are_rejected():
    with pytest.raises(SchemaError, match="duplicate vertebra levels: T7"):
        SpineResult([Vertebra("T7", [0, 0, 0], body(1, 1, 1)), Vertebra("Th7", [0, 0, 0], body(1, 1, 1))])


@pytest.mark.parametrize(
    "centroid, keypoints, message",
    [
        ([0, 0, 0], np.zeros((5, 3)), r"L1: expected 6 keypoints"),
        ([0, 0, 0], np.zeros((6, 4)), r"L1: expected 6 keypoints"),
        ([0, 0], body(1, 1, 1), "L1: centroid has 2 coordinates, keypoints 3"),
        ([0, np.nan, 0], body(1, 1, 1), "L1: keypoints or centroid contain non-finite"),
    ],
)
def test_vertebra_validation(centroid, keypoints, message):
    points = np.asarray(keypoints, float)
    with pytest.raises(SchemaError, match=message):
        Vertebra("L1", centroid, points)


def test_nan_keypoint_rejected_and_unknown_label():
    points = body(1, 1, 1)
    points[0, 0] = np.nan
    with pytest.raises(SchemaError, match="non-finite"):
        Vertebra("L1", [0, 0, 0], points)
    with pytest.raises(UnknownLevelError, match="unknown vertebra level 'L9'"):
        Vertebra("L9", [0, 0, 0], body(1, 1, 1))


def test_json_round_trip():
    result = column()
    result.vertebra("L1").record("confirm", user="rad")
    result.input = {"path": "ct.nii.gz", "size": [1, 2, 3]}
    result.timings_s = {"detect": 1.5}
    result.models = {"detector": "abc"}
    result.vertebra("L2").extra["note"] = "kept"
    text = result.to_json()
    document = json.loads(text)
    assert document["schema"] == SCHEMA
    assert document["keypoint_order"][0] == "anterior superior"
    assert document["vertebrae"][2]["genant"] == {"G": pytest.approx(1.0), "grade": 2, "type": "crush"}
    back = SpineResult.from_json(text)
    assert back.to_dict() == result.to_dict()
    assert back.vertebra("L2").extra == {"note": "kept"}
    assert back.vertebra("L1").history[0].user == "rad"


def test_from_dict_accepts_segments_and_missing_centroid():
    data = {
        "schema": SCHEMA,
        "vertebrae": [{"label": 20, "keypoints": body(10, 10, 10).reshape(3, 2, 3).tolist()}],
    }
    result = SpineResult.from_dict(data)
    v = result.vertebra("L1")
    assert v.keypoints.shape == (6, 3)
    np.testing.assert_allclose(v.centroid, body(10, 10, 10).mean(axis=0))


@pytest.mark.parametrize(
    "data, message",
    [
        ({"schema": "other/1"}, "unknown schema 'other/1'"),
        ([], "expected a JSON object"),
        ({"schema": SCHEMA, "vertebrae": {}}, "'vertebrae' must be a list"),
        ({"schema": SCHEMA, "frame": "RAS"}, "unknown frame 'RAS'"),
        ({"schema": SCHEMA, "vertebrae": [{"label": "L1"}]}, "'L1' lacks the field 'keypoints'"),
        ({"schema": SCHEMA, "vertebrae": [{"label": "L1", "keypoints": [[1, 2]] * 6}]}, "frame LPS needs 3D points"),
        ({"schema": SCHEMA, "vertebrae": [{"label": "Q1", "keypoints": [[1, 2, 3]] * 6}]}, "'Q1' is malformed"),
        ({"schema": SCHEMA, "vertebrae": [3]}, "must be an object"),
    ],
)
def test_from_dict_errors(data, message):
    with pytest.raises(SchemaError, match=message):
        SpineResult.from_dict(data)


def test_from_json_invalid_and_other_schemas():
    with pytest.raises(SchemaError, match="not valid JSON"):
        SpineResult.from_json('{"schema": ')
    document = column().to_dict()
    document["schema"] = "vertebral-fracture-annotation/1"
    with pytest.raises(SchemaError, match="unknown schema"):
        SpineResult.from_dict(document)
    back = SpineResult.from_dict(document, accept_schemas=("vertebral-fracture-annotation/1",))
    assert back.labels == column().labels


def test_pixel_frame_heights_use_pixel_spacing():
    # radiograph points [column, row]; rows 0.25 mm: 40 rows -> 10 mm, 32 rows -> 8 mm
    points = np.array([[0, 0], [0, 40], [20, 0], [20, 40], [40, 0], [40, 32]], float)
    result = SpineResult([Vertebra("L1", [20, 20], points)], frame="pixel", pixel_spacing=(0.5, 0.25))
    m = result.vertebra("L1").measure
    assert m.heights == pytest.approx((10.0, 10.0, 8.0))
    assert (m.grade, m.type) == (1, "crush")
    back = SpineResult.from_json(result.to_json())
    assert back.pixel_spacing == (0.5, 0.25) and back.vertebra("L1").measure.heights == m.heights
    with pytest.raises(SchemaError, match="unknown frame"):
        SpineResult(frame="RAS")


def test_pixel_heights_are_never_written_as_mm_and_survive_reload_and_edit():
    points = np.array([[0, 0], [0, 40], [20, 0], [20, 40], [40, 0], [40, 32]], float)
    result = SpineResult([Vertebra("L1", [20, 20], points)], frame="pixel", pixel_spacing=(1.0, 1.0),
                         input={"height_unit": "pixel"})
    assert result.height_unit == "pixel"
    entry = result.to_dict()["vertebrae"][0]
    assert entry["heights_mm"] is None and entry["height_unit"] == "pixel"
    assert entry["heights_px"] == {"anterior": 40.0, "middle": 40.0, "posterior": 32.0}
    back = SpineResult.from_json(result.to_json())
    back.vertebra("L1").keypoints[5, 1] = 36.0  # a reader drags the posterior-inferior point
    back.recompute()
    again = back.to_dict()["vertebrae"][0]
    assert again["heights_mm"] is None and again["heights_px"]["posterior"] == 36.0  # recomputed, not the stale copy
    assert "heights_px" not in back.vertebra("L1").extra and "height_unit" not in back.vertebra("L1").extra
    mm = SpineResult([Vertebra("L1", [20, 20], points)], frame="pixel", pixel_spacing=(0.5, 0.25))
    entry = mm.to_dict()["vertebrae"][0]
    assert mm.height_unit == "mm" and entry["heights_mm"]["anterior"] == 10.0 and "heights_px" not in entry


def test_vertebra_lookup_error():
    with pytest.raises(KeyError, match="no vertebra L5 in this result"):
        column().vertebra("L5")


def _withheld(reason: str, **checks: float) -> Vertebra:
    vertebra = Vertebra("L1", [0.0, 0.0, 0.0], np.array([[0, 0, 1], [0, 0, -1]] * 3, float), checks=dict(checks))
    vertebra.not_assessed(reason)
    return vertebra


def test_cut_by_the_view_knows_the_analysis_reasons():
    from VertebralFractureLib.radiograph.gate2d import REASONS
    from VertebralFractureLib.schema import cut_by_the_view
    from VertebralFractureLib.shape.measure import REASON_CUT

    for reason in (REASONS["field_of_view"], REASON_CUT, "cut by the edge of the field of view (superior edge)",
                   "cut by the posterior edge of the field of view"):
        assert cut_by_the_view(_withheld(reason)), reason
    assert cut_by_the_view(_withheld("the image does not support this vertebra", field_of_view=0.2))
    for reason in (REASONS["endplates"], REASONS["bone"], REASONS["placed"], "body height 40 mm is too large for L1"):
        assert not cut_by_the_view(_withheld(reason, field_of_view=1.0)), reason


def test_reader_points_assess_a_withheld_vertebra_once():
    vertebra = _withheld("no cortical bone where the body should be")
    assert vertebra.measured_on_reader_points() is True
    assert vertebra.assessed and vertebra.extra["withheld_by_analysis"] == "no cortical bone where the body should be"
    assert vertebra.measured_on_reader_points() is False  # already assessed: no second entry
    assert [e.action for e in vertebra.history] == ["assess"]
