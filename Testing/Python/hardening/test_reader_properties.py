"""Property-based tests (hypothesis) of the readers users feed by hand: Slicer ``.mrk.json`` keypoints.

Annotation files (``read_annotations``) and Genant tables (``read_genant_csv``) already have
property tests in Testing/Python/io/test_annotations.py and test_tables.py. Here: any edit of a
valid keypoints file (a value replaced by arbitrary JSON, a key dropped, a point duplicated,
the text cut anywhere) gives either a valid result (six finite keypoints per vertebra, unique
known levels) or :class:`MarkupsFormatError` naming the file, never another exception.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from testdata import box_keypoints

from VertebralFractureLib.io.mrk_json import (
    MarkupsFormatError,
    keypoints_list,
    markups_document,
    read_result_markups,
)
from VertebralFractureLib.levels import normalise_level
from VertebralFractureLib.schema import SpineResult, Vertebra

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _document() -> dict:
    vertebrae = [Vertebra(level, [0.0, 0.0, z], box_keypoints([0.0, 0.0, z], heights))
                 for level, z, heights in (("T12", 60.0, (25, 25, 25)), ("L1", 30.0, (17, 24, 25)))]
    return markups_document(keypoints_list(SpineResult(vertebrae=vertebrae, frame="LPS")))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, prefix + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, prefix + (index,))


def _check(path: Path) -> None:
    try:
        result = read_result_markups(path)
    except MarkupsFormatError as error:
        assert str(path.name) in str(error) or "Keypoints" in str(error) or "point" in str(error)
        return
    labels = result.labels
    assert len(labels) == len(set(labels))
    assert all(normalise_level(label) == label for label in labels)
    for vertebra in result.vertebrae:
        assert np.asarray(vertebra.keypoints).shape == (6, 3)
        assert np.all(np.isfinite(vertebra.keypoints))


@SETTINGS
@given(data=st.data())
def test_any_edit_of_a_keypoints_file_reads_or_fails_clearly(tmp_path, data):
    document = _document()
    paths = [p for p in _paths(document) if p]
    where = data.draw(st.sampled_from(paths), label="where")
    parent = document
    for key in where[:-1]:
        parent = parent[key]
    action = data.draw(st.sampled_from(["replace", "drop", "duplicate"]), label="action")
    if action == "replace" or not isinstance(parent, (dict, list)):
        parent[where[-1]] = data.draw(json_values, label="value")
    elif action == "drop":
        del parent[where[-1]]
    else:
        if isinstance(parent, list):
            parent.append(json.loads(json.dumps(parent[where[-1]])))
        else:
            parent[where[-1]] = data.draw(json_values, label="value")
    path = tmp_path / "keypoints.mrk.json"
    path.write_text(json.dumps(document, allow_nan=True))
    _check(path)


@SETTINGS
@given(cut=st.integers(0, 4000))
def test_a_keypoints_file_cut_anywhere_reads_or_fails_clearly(tmp_path, cut):
    text = json.dumps(_document(), indent=2)
    path = tmp_path / "keypoints.mrk.json"
    path.write_text(text[: cut % len(text)])
    _check(path)
