import math

import pytest

from VertebralFractureLib.colors import (
    GRADE_COLORS,
    UNKNOWN_COLOR,
    abnormality_color,
    grade_color,
    level_color,
    to_hex,
    to_uint8,
)


def test_grade_colours_go_green_to_red():
    assert grade_color(0) == GRADE_COLORS[0] and grade_color(3) == GRADE_COLORS[3]
    green, red = grade_color(0), grade_color(3)
    assert green[1] > green[0] and red[0] > red[1]
    assert grade_color(None) == UNKNOWN_COLOR
    with pytest.raises(ValueError, match="0, 1, 2 or 3"):
        grade_color(4)


def test_abnormality_ramp():
    assert abnormality_color(0) == pytest.approx(GRADE_COLORS[0])
    assert abnormality_color(100) == pytest.approx(GRADE_COLORS[3])
    assert abnormality_color(250) == abnormality_color(100) and abnormality_color(-5) == abnormality_color(0)
    reds = [abnormality_color(s)[0] for s in range(0, 51, 10)]
    assert reds == sorted(reds)
    greens = [abnormality_color(s)[1] for s in range(50, 101, 10)]
    assert greens == sorted(greens, reverse=True)
    assert abnormality_color(None) == UNKNOWN_COLOR and abnormality_color(math.nan) == UNKNOWN_COLOR


def test_level_colours_differ_between_neighbours_and_conversions():
    assert level_color("L1") != level_color("L2") and level_color("T12") != level_color("L1")
    assert level_color(20) == level_color("L1")
    assert to_uint8((1.0, 0.5, 0.0)) == (255, 128, 0)
    assert to_hex((1.0, 0.0, 0.0)) == "#ff0000"
