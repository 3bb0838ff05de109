"""Each body's keypoints turned in the coronal plane onto the line of its neighbours (keypoints/column_tilt.py)."""

import numpy as np
import pytest

from VertebralFractureLib.keypoints.column_tilt import MAX_TURN_DEG, MIN_TURN_DEG, coronal_turn, turned_to_neighbours

# LPS: x = left, y = posterior, z = superior
_SQUARE = np.array([[0.0, -15.0, 11.0], [0.0, -15.0, -11.0], [0.0, 0.0, 10.0], [0.0, 0.0, -10.0],
                    [0.0, 15.0, 11.0], [0.0, 15.0, -11.0]])


def _body(centre, coronal_deg: float = 0.0) -> np.ndarray:
    """Six keypoints of an upright body at ``centre``, tilted ``coronal_deg`` towards +x (left) at the top."""
    angle = np.radians(coronal_deg)
    rotation = np.array([[np.cos(angle), 0.0, np.sin(angle)], [0.0, 1.0, 0.0], [-np.sin(angle), 0.0, np.cos(angle)]])
    return np.asarray(centre, dtype=float) + _SQUARE @ rotation.T


def _coronal_deg(points: np.ndarray) -> float:
    superior = points[0::2].mean(0) - points[1::2].mean(0)
    return float(np.degrees(np.arctan2(superior[0], superior[2])))


def _column(degrees: float, spacing: float = 28.0):
    """Three centres on a line tilted ``degrees`` in the coronal plane, top first."""
    direction = np.array([np.sin(np.radians(degrees)), 0.0, np.cos(np.radians(degrees))])
    return [direction * spacing * k for k in (1, 0, -1)]


def test_a_body_drawn_upright_in_a_tilted_column_is_turned_onto_its_neighbours_line():
    centres = _column(15.0)
    bodies = [_body(c, 15.0) for c in centres]
    bodies[1] = _body(centres[1], 4.0)  # the centre line's smooth tangent: part of the tilt
    out = turned_to_neighbours(bodies, centres)
    assert _coronal_deg(out[1]) == pytest.approx(15.0, abs=0.01)
    assert np.allclose(out[1].mean(0), bodies[1].mean(0))  # turned about its own centre
    np.testing.assert_allclose(np.linalg.norm(out[1] - out[1].mean(0), axis=1),
                               np.linalg.norm(bodies[1] - bodies[1].mean(0), axis=1))  # the shape is kept
    # the ends of the column have one neighbour only and stay as they were
    assert np.array_equal(out[0], bodies[0]) and np.array_equal(out[2], bodies[2])


def test_the_sagittal_tilt_is_the_bodys_own():
    """Only the coronal component moves: a neighbour line leaning forwards does not tip the body."""
    centres = [np.array([0.0, -8.0, 28.0]), np.zeros(3), np.array([0.0, 8.0, -28.0])]
    bodies = [_body(c) for c in centres]
    out = turned_to_neighbours(bodies, centres)
    assert np.array_equal(out[1], bodies[1])


def test_column_order_may_run_either_way():
    centres = _column(-12.0)[::-1]
    bodies = [_body(c) for c in centres]
    assert _coronal_deg(turned_to_neighbours(bodies, centres)[1]) == pytest.approx(-12.0, abs=0.01)


@pytest.mark.parametrize("degrees", [0.5 * MIN_TURN_DEG, MAX_TURN_DEG + 5.0])
def test_turns_below_the_noise_or_beyond_a_plausible_tilt_are_not_made(degrees):
    centres = _column(degrees)
    bodies = [_body(c) for c in centres]
    assert coronal_turn(bodies[1], centres[0] - centres[2]) is None
    assert np.array_equal(turned_to_neighbours(bodies, centres)[1], bodies[1])


def test_a_neighbour_beyond_a_missing_level_or_without_a_centre_gives_no_line():
    centres = _column(15.0) + [np.array([0.0, 0.0, -56.0])]
    bodies = [_body(c) for c in centres]
    far = [centres[0], centres[1], np.array([-20.0, 0.0, -70.0]), centres[3]]  # a level skipped below body 1
    assert np.array_equal(turned_to_neighbours(bodies, far)[1], bodies[1])
    assert np.array_equal(turned_to_neighbours(bodies, [centres[0], centres[1], None, centres[3]])[1], bodies[1])
