import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from VertebralFractureLib.geometry import ImageGeometry
from VertebralFractureLib.io.annotations import (
    ANNOTATION_SCHEMA,
    AnnotationError,
    annotation_document,
    read_annotations,
    write_annotations,
)
from VertebralFractureLib.io.atomic import ExistingFileError
from VertebralFractureLib.levels import LEVEL_NAMES
from VertebralFractureLib.schema import SchemaError, SpineResult, Vertebra

COORD = st.floats(-400, 400, allow_nan=False, allow_infinity=False)
SCORE = st.none() | st.floats(0, 1)
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


def box(l_mm: float) -> np.ndarray:
    """Six keypoints of a box-shaped body with heights 25, 24, l_mm (anterior, middle, posterior)."""
    return np.array([[0, -10, 0], [0, -10, -25], [0, 0, 0], [0, 0, -24], [0, 12, 0], [0, 12, -l_mm]], float)


@st.composite
def results(draw):
    frame = draw(st.sampled_from(["LPS", "pixel"]))
    dim = 3 if frame == "LPS" else 2
    levels = draw(st.lists(st.sampled_from(LEVEL_NAMES), unique=True, max_size=5))
    vertebrae = []
    for level in levels:
        points = np.array(draw(st.lists(st.tuples(*[COORD] * dim), min_size=6, max_size=6)))
        history = draw(st.lists(st.builds(lambda a, d, t, u: (a, d, t, u), TEXT, TEXT, TEXT, TEXT), max_size=2))
        v = Vertebra(
            level,
            np.array(draw(st.tuples(*[COORD] * dim))),
            points,
            confidence=draw(SCORE),
            source=draw(TEXT),
            fracture_probability=draw(SCORE),
            voxel_fracture_score=draw(SCORE),
            abnormality=draw(st.none() | st.floats(0, 100)),
        )
        for action, detail, time, user in history:
            v.record(action, detail, user)
            v.history[-1].time = time
        vertebrae.append(v)
    geometry = ImageGeometry((30, 40, 50), (0.5, 0.7, 2.0), (1.0, -2.5, 300.0), np.eye(3))
    spacing = draw(st.tuples(st.floats(0.05, 2), st.floats(0.05, 2))) if frame == "pixel" else (1.0, 1.0)
    return SpineResult(
        vertebrae,
        frame=frame,
        input={**geometry.to_dict(), "path": draw(TEXT)} if frame == "LPS" else {"path": draw(TEXT)},
        timings_s={"detect": draw(st.floats(0, 100))},
        models={"detector": draw(TEXT)},
        pixel_spacing=spacing,
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(result=results())
def test_any_valid_result_round_trips_exactly(tmp_path, result):
    path = tmp_path / "a.json"
    write_annotations(result, path, overwrite=True)
    back = read_annotations(path)
    expected = annotation_document(result)
    assert annotation_document(back) == expected
    assert json.loads(path.read_text())["schema"] == ANNOTATION_SCHEMA
    for a, b in zip(result.vertebrae, back.vertebrae):
        assert np.array_equal(a.keypoints, b.keypoints) and np.array_equal(a.centroid, b.centroid)
        assert [e.to_dict() for e in a.history] == [e.to_dict() for e in b.history]


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**400), 10**400)
    | st.floats()
    | st.text(max_size=5)
    | st.sampled_from(["L1", "T13", "Th7", "pixel", "LPS", "vertebral-fracture/1"]),
    lambda children: st.lists(children, max_size=7) | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=20,
)


def corrupt(document, data):
    """Replace, delete or add one value somewhere in the document."""
    node = document
    while True:
        keys = list(node.keys()) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            break
        key = data.draw(st.sampled_from(keys))
        child = node[key]
        if isinstance(child, (dict, list)) and child and data.draw(st.booleans()):
            node = child
            continue
        action = data.draw(st.sampled_from(["replace", "delete"]))
        if action == "delete":
            del node[key]
        else:
            node[key] = data.draw(JSON_VALUES)
        return document
    return document


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(result=results(), data=st.data())
def test_corrupted_documents_give_a_result_or_a_schema_error(tmp_path, result, data):
    document = annotation_document(result)
    for _ in range(data.draw(st.integers(1, 3))):
        document = corrupt(document, data)
    text = json.dumps(document)  # non-finite floats become NaN / Infinity tokens, as Python writes them
    if data.draw(st.booleans()):
        text = text[: data.draw(st.integers(0, len(text)))]
    path = tmp_path / "corrupt.json"
    path.write_text(text)
    try:
        back = read_annotations(path)
    except SchemaError as error:
        assert isinstance(error, AnnotationError)
        assert "corrupt.json" in str(error)
    else:
        assert isinstance(back, SpineResult)
        json.dumps(back.to_dict(), allow_nan=False)  # what was read can be written


def valid_document():
    vertebrae = [Vertebra(level, [0, 0, 0], box(h), source="annotator") for level, h in (("T12", 25), ("L1", 17))]
    return annotation_document(SpineResult(vertebrae))


def test_reads_result_files_and_recomputes_grades(tmp_path):
    document = valid_document()
    document["schema"] = "vertebral-fracture/1"
    document["vertebrae"][1]["genant"] = {"G": 0.99, "grade": 0, "type": "none"}  # stale values are ignored
    path = tmp_path / "results.json"
    path.write_text(json.dumps(document))
    result = read_annotations(path)
    l1 = result.vertebra("L1")
    assert l1.measure.heights == (25.0, 24.0, 17.0)
    assert l1.measure.G == pytest.approx(0.68)
    assert (l1.measure.grade, l1.measure.type) == (2, "crush")
    assert result.vertebra("T12").measure.grade == 0


def test_write_refuses_to_overwrite(tmp_path):
    result = SpineResult([Vertebra("L1", [0, 0, 0], box(25))])
    path = write_annotations(result, tmp_path / "a.json")
    before = path.read_text()
    with pytest.raises(ExistingFileError, match=r"a\.json exists; refusing to overwrite"):
        write_annotations(SpineResult([]), path)
    assert path.read_text() == before
    write_annotations(SpineResult([]), path, overwrite=True)
    assert read_annotations(path).labels == []


def mutate(document, change):
    change(document)
    return document


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d["vertebrae"][1].update(label="L9"), r"vertebra 2 \('L9'\).*unknown vertebra level"),
        (lambda d: d["vertebrae"][1].update(label="T12"), "duplicate vertebra levels: T12"),
        (lambda d: d["vertebrae"][0].update(keypoints=d["vertebrae"][0]["keypoints"][:5]), r"vertebra 1 \('T12'\).*6"),
        (lambda d: d["vertebrae"][0]["keypoints"][2].__setitem__(1, float("nan")), r"'T12'.*non-finite"),
        (lambda d: d["vertebrae"][1]["centroid"].__setitem__(0, float("inf")), r"'L1'.*non-finite"),
        (lambda d: d["vertebrae"][1].pop("keypoints"), r"'L1'.*lacks the field 'keypoints'"),
        (lambda d: d["vertebrae"][1].update(keypoints=7), r"'L1'"),
        (lambda d: d["vertebrae"][1].update(history=[{"detail": "x"}]), r"'L1'"),
        (lambda d: d.update(schema="vertebral-fracture/9"), "unknown schema 'vertebral-fracture/9'"),
        (lambda d: d.pop("schema"), "unknown schema None"),
        (lambda d: d.update(frame="RAS"), "unknown frame 'RAS'"),
        (lambda d: d.update(frame="pixel"), "frame pixel needs 2D points"),
        (lambda d: d.update(vertebrae={"L1": 1}), "'vertebrae' must be a list"),
        (lambda d: d.update(patient=[1]), "'patient' must be an object"),
        (lambda d: d.update(pixel_spacing=[1, 0]), "'pixel_spacing'"),
    ],
)
def test_bad_documents_name_file_and_vertebra(tmp_path, change, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(mutate(valid_document(), change)))
    with pytest.raises(AnnotationError, match=message) as info:
        read_annotations(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("text", ["", "   \n", "[1, 2", '{"schema": "vertebral-fracture-annotation/1", "vert', "[]"])
def test_invalid_truncated_or_empty_files(tmp_path, text):
    path = tmp_path / "x.json"
    path.write_text(text)
    with pytest.raises(AnnotationError, match="x.json"):
        read_annotations(path)


def test_truncating_a_real_document_anywhere_gives_annotation_error(tmp_path):
    text = json.dumps(valid_document(), indent=1)
    path = tmp_path / "t.json"
    for end in range(0, len(text) - 1, 97):
        path.write_text(text[:end])
        with pytest.raises(AnnotationError, match=r"t\.json: (not valid JSON \(truncated\?\)|the file is empty)"):
            read_annotations(path)


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(AnnotationError, match="no such file"):
        read_annotations(tmp_path / "none.json")
    binary = tmp_path / "b.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(AnnotationError, match="b.json"):
        read_annotations(binary)
