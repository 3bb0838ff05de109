import pytest
from hypothesis import given
from hypothesis import strategies as st

from VertebralFractureLib.levels import (
    LEVEL_NAMES,
    LEVELS,
    TYPICAL_LEVELS,
    UnknownLevelError,
    label_from_level,
    level_from_label,
    level_index,
    normalise_level,
    region_of,
    shift_level,
    sort_levels,
)

KNOWN_LABELS = {label for _, label in LEVELS}


@pytest.mark.parametrize(
    "value, expected",
    [
        ("L1", "L1"),
        ("l1", "L1"),
        (" T12 ", "T12"),
        ("Th7", "T7"),
        ("TH12", "T12"),
        ("th1", "T1"),
        (20, "L1"),
        ("20", "L1"),
        (1, "C1"),
        (7, "C7"),
        (8, "T1"),
        (19, "T12"),
        (24, "L5"),
        (25, "L6"),
        (26, "S1"),
        (28, "T13"),
        ("28", "T13"),
        ("s1", "S1"),
    ],
)
def test_normalise_level(value, expected):
    assert normalise_level(value) == expected


@pytest.mark.parametrize("value", [27, 0, 29, -1, "27", "L7", "T14", "C8", "X1", "", "Th", "T 7", True, None, 3.5])
def test_unknown_levels_raise(value):
    with pytest.raises(UnknownLevelError, match="^unknown (vertebra level|VerSe vertebra label) "):
        normalise_level(value)


def test_unknown_level_messages_name_the_value():
    with pytest.raises(UnknownLevelError, match="'L9'"):
        normalise_level("L9")
    with pytest.raises(UnknownLevelError, match="27"):
        level_from_label(27)
    with pytest.raises(UnknownLevelError, match="unknown VerSe vertebra label 'abc'; expected 1-26 or 28"):
        level_from_label("abc")
    assert issubclass(UnknownLevelError, ValueError)


def test_verse_label_table():
    assert len(LEVELS) == 27
    assert [level_from_label(n) for n in range(1, 27)] == [
        *[f"C{i}" for i in range(1, 8)],
        *[f"T{i}" for i in range(1, 13)],
        *[f"L{i}" for i in range(1, 6)],
        "L6",
        "S1",
    ]
    assert level_from_label(28) == "T13"


@given(st.sampled_from(LEVEL_NAMES))
def test_label_round_trip(name):
    assert level_from_label(label_from_level(name)) == name
    assert normalise_level(label_from_level(name)) == name
    assert normalise_level(name.lower()) == name


@given(st.integers(-1000, 1000).filter(lambda n: n not in KNOWN_LABELS))
def test_every_other_integer_is_unknown(number):
    with pytest.raises(UnknownLevelError, match=f"^unknown VerSe vertebra label {number}; expected 1-26 or 28$"):
        level_from_label(number)


def test_cranio_caudal_order_with_transitional_levels():
    assert LEVEL_NAMES[0] == "C1" and LEVEL_NAMES[-1] == "S1"
    assert level_index("T12") + 1 == level_index("T13") == level_index("L1") - 1
    assert level_index("L5") + 1 == level_index("L6") == level_index("S1") - 1
    assert level_index("Th7") == level_index(14)
    assert sort_levels(["L1", "Th12", "T13", "c2", "S1", "L6", "L5"]) == ["C2", "T12", "T13", "L1", "L5", "L6", "S1"]
    assert "T13" not in TYPICAL_LEVELS and "L6" not in TYPICAL_LEVELS and len(TYPICAL_LEVELS) == 25


def test_shift_level():
    assert shift_level("T12", 1) == "L1"
    assert shift_level("T12", 1, transitional=True) == "T13"
    assert shift_level("L1", -1) == "T12"
    assert shift_level("T13", 1) == "L1"  # a transitional start counts in the full sequence
    assert shift_level("L5", 1) == "S1"
    assert shift_level("Th7", 0) == "T7"
    assert shift_level("C1", 26, transitional=True) == "S1"
    assert shift_level("C1", 24) == "S1"
    assert shift_level("C2", -1) == "C1"  # the first level is inside the range
    with pytest.raises(UnknownLevelError, match="outside"):
        shift_level("S1", 1)
    with pytest.raises(UnknownLevelError, match="outside"):
        shift_level("C1", -1)


def test_region_of():
    assert [region_of(x) for x in ("C7", "Th7", 28, "L6", "S1")] == ["C", "T", "T", "L", "S"]
