import json

import numpy as np
import pytest

from VertebralFractureLib.geometry import ImageGeometry
from VertebralFractureLib.io.atomic import ExistingFileError
from VertebralFractureLib.io.ctlungca import (
    CTLungCaError,
    ctlungca_document,
    ctlungca_level_name,
    index_to_points,
    points_to_index,
    read_ctlungca,
    write_ctlungca,
)

#: An axial chest CT as SimpleITK reads it: i -> left, j -> posterior, k -> superior (feet first).
AXIAL = ImageGeometry((512, 512, 300), (0.7, 0.7, 1.25), (-180.0, -170.0, -400.0), np.eye(3))


def file_vertebra(top_slice, heights_mm=(25.0, 25.0, 25.0), column=250.0):
    """Six [row, column, slice] points as in the release: slice grows caudally, row grows posteriorly."""
    rows = (300.0, 320.0, 340.0)  # anterior, middle, posterior
    points = []
    for row, height in zip(rows, heights_mm):
        points.append([row, column, top_slice])
        points.append([row, column, top_slice + height / 1.25])
    return points


def labelled_document():
    return {
        "Folder": "RLADD0000_TEST",
        "SeriesInstanceUID": "1.2.3",
        "Annotation": {
            "expert1": [
                {"segments": np.reshape(file_vertebra(100), (3, 2, 3)).tolist(), "type": "Th7"},
                {"segments": np.reshape(file_vertebra(125, (14.0, 20.0, 25.0)), (3, 2, 3)).tolist(), "type": "Th8"},
            ],
            "expert2": [
                {"segments": np.reshape(file_vertebra(100.4), (3, 2, 3)).tolist(), "type": "Th7"},
            ],
        },
    }


def write(tmp_path, document, name="ann.json"):
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return path


def test_labelled_file_to_results(tmp_path):
    results = read_ctlungca(write(tmp_path, labelled_document()), AXIAL)
    assert list(results) == ["expert1", "expert2"]
    first = results["expert1"]
    assert first.labels == ["T7", "T8"]
    t8 = first.vertebra("T8")
    np.testing.assert_allclose(t8.measure.heights, (14.0, 20.0, 25.0), atol=1e-9)
    assert (t8.measure.grade, t8.measure.type) == (3, "wedge")
    k = t8.keypoints
    # order: anterior superior, anterior inferior, middle..., posterior...: anterior has smaller LPS y
    assert k[0, 1] < k[2, 1] < k[4, 1]
    # slices were counted from the head (reversed with respect to this feet-first grid): superior is higher
    assert k[0, 2] > k[1, 2]
    # row 300 -> j = 300 -> y = -170 + 300 * 0.7; column 250 -> i -> x; top slice 125 -> k = 299 - 125
    np.testing.assert_allclose(k[0], [-180 + 250 * 0.7, -170 + 300 * 0.7, -400 + (299 - 125) * 1.25])
    np.testing.assert_allclose(t8.centroid, k.mean(axis=0))
    assert first.input["SeriesInstanceUID"] == "1.2.3" and first.input["reverse_slices"] is True
    assert results["expert2"].labels == ["T7"]


def test_slice_order_chosen_from_anatomy_for_head_first_grids(tmp_path):
    head_first = ImageGeometry(AXIAL.size, AXIAL.spacing, (-180.0, -170.0, 0.0), np.diag([1.0, 1.0, -1.0]))
    results = read_ctlungca(write(tmp_path, labelled_document()), head_first)
    t7 = results["expert1"].vertebra("T7")
    assert results["expert1"].input["reverse_slices"] is False
    assert t7.keypoints[0, 2] > t7.keypoints[1, 2]
    np.testing.assert_allclose(t7.keypoints[0, 2], -100 * 1.25)


def test_explicit_slice_order_is_used(tmp_path):
    results = read_ctlungca(write(tmp_path, labelled_document()), AXIAL, reverse_slices=False)
    t7 = results["expert1"].vertebra("T7")
    assert t7.keypoints[0, 2] < t7.keypoints[1, 2]  # the user said so: superior points end up below
    assert t7.measure.heights == pytest.approx((25.0, 25.0, 25.0))


def test_unlabelled_2020_file_needs_first_level(tmp_path):
    document = {
        "Folder": "x",
        "SeriesInstanceUID": "y",
        "Annotation": {"expert3": [file_vertebra(50 + 25 * n) for n in range(3)]},
    }
    path = write(tmp_path, document)
    with pytest.raises(CTLungCaError, match=r"expert3, vertebra 1: the file does not name the levels"):
        read_ctlungca(path, AXIAL)
    result = read_ctlungca(path, AXIAL, first_level="Th11")["expert3"]
    assert result.labels == ["T11", "T12", "L1"]
    with pytest.raises(CTLungCaError, match="outside"):
        read_ctlungca(path, AXIAL, first_level="L5")
    with pytest.raises(CTLungCaError, match="first_level: unknown vertebra level 'Q1'"):
        read_ctlungca(path, AXIAL, first_level="Q1")


@pytest.mark.parametrize("labelled", [True, False])
@pytest.mark.parametrize("direction", [np.eye(3), np.diag([1.0, 1.0, -1.0]), np.diag([-1.0, -1.0, 1.0])])
def test_export_import_round_trip(tmp_path, labelled, direction):
    geometry = ImageGeometry(AXIAL.size, AXIAL.spacing, AXIAL.origin, direction)
    results = read_ctlungca(write(tmp_path, labelled_document()), AXIAL)
    path = write_ctlungca(tmp_path / "out.json", results, geometry, folder="F", series_uid="U", labelled=labelled)
    document = json.loads(path.read_text())
    assert (document["Folder"], document["SeriesInstanceUID"]) == ("F", "U")
    entry = document["Annotation"]["expert1"][1]
    if labelled:
        assert entry["type"] == "Th8" and np.shape(entry["segments"]) == (3, 2, 3)
        points = np.reshape(entry["segments"], (6, 3))
    else:
        points = np.asarray(entry)
        assert points.shape == (6, 3)
    assert points[1, 2] > points[0, 2]  # slice index grows caudally, as in the release
    back = read_ctlungca(path, geometry, first_level=None if labelled else "T7")
    for expert, result in results.items():
        assert back[expert].labels == result.labels
        for a, b in zip(result.vertebrae, back[expert].vertebrae):
            np.testing.assert_allclose(b.keypoints, a.keypoints, atol=1e-9)
    with pytest.raises(ExistingFileError, match=r"out\.json exists; refusing to overwrite"):
        write_ctlungca(path, results, geometry)


def test_exported_points_match_release_layout(tmp_path):
    results = read_ctlungca(write(tmp_path, labelled_document()), AXIAL)
    document = ctlungca_document(results, AXIAL)
    original = labelled_document()["Annotation"]["expert1"][1]["segments"]
    np.testing.assert_allclose(document["Annotation"]["expert1"][1]["segments"], original, atol=1e-9)


def test_points_index_mapping_inverse():
    points = np.array([[300.5, 250.25, 17.0], [1.0, 2.0, 3.0]])
    for reverse in (False, True):
        index = points_to_index(points, AXIAL, reverse_slices=reverse)
        np.testing.assert_allclose(index_to_points(index, AXIAL, reverse_slices=reverse), points)
    np.testing.assert_allclose(points_to_index(points, AXIAL)[0], [250.25, 300.5, 17.0])
    np.testing.assert_allclose(points_to_index(points, AXIAL, reverse_slices=True)[0], [250.25, 300.5, 282.0])
    with pytest.raises(CTLungCaError, match="permutation"):
        points_to_index(points, AXIAL, point_axes=(0, 0, 2))


def test_level_names():
    assert [ctlungca_level_name(x) for x in ("T7", "L1", "C2", "T13", "S1")] == ["Th7", "L1", "C2", "Th13", "S1"]


def broken(change):
    document = labelled_document()
    change(document)
    return document


@pytest.mark.parametrize(
    "document, message",
    [
        (
            broken(lambda d: d["Annotation"]["expert1"][1].update(type="Th99")),
            r"expert1, vertebra 2: unknown vertebra level",
        ),
        (
            broken(lambda d: d["Annotation"]["expert1"][1].update(type="Th7")),
            r"expert1, vertebra 2: duplicate level T7",
        ),
        (
            broken(lambda d: d["Annotation"]["expert1"][0]["segments"].pop()),
            r"expert1, vertebra 1: expected points of shape \(3, 2, 3\)",
        ),
        (broken(lambda d: d["Annotation"]["expert1"][0]["segments"][0][0].__setitem__(0, float("nan"))), "non-finite"),
        (broken(lambda d: d["Annotation"]["expert1"][0]["segments"][0][0].__setitem__(0, "x")), "not a regular array"),
        (broken(lambda d: d["Annotation"]["expert1"][0].pop("segments")), "needs 'segments'"),
        (broken(lambda d: d["Annotation"]["expert2"].__setitem__(0, 5)), r"expert2, vertebra 1: expected six"),
        (broken(lambda d: d["Annotation"].__setitem__("expert2", {"a": 1})), "expert2: expected a list"),
        (broken(lambda d: d.pop("Annotation")), "'Annotation' must be an object"),
        ([1, 2], "expected a JSON object"),
        ({"Annotation": {"e": [file_vertebra(1)[:5]]}}, r"e, vertebra 1: expected points of shape \(6, 3\)"),
    ],
)
def test_malformed_entries_name_file_expert_and_vertebra(tmp_path, document, message):
    path = write(tmp_path, document, "broken.json")
    with pytest.raises(CTLungCaError, match=message) as info:
        read_ctlungca(path, AXIAL, first_level="T1")
    assert "broken.json" in str(info.value)


def test_unreadable_files(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps(labelled_document())[:100])
    with pytest.raises(CTLungCaError, match="not valid JSON"):
        read_ctlungca(path, AXIAL)
    with pytest.raises(CTLungCaError, match="no such file"):
        read_ctlungca(tmp_path / "none.json", AXIAL)
