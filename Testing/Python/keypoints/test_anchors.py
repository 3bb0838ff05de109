import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from VertebralFractureLib.keypoints.anchors import (
    ASPECT_RATIOS,
    SCALES_MM,
    anchor_shapes,
    centre_size_to_corners,
    decode,
    encode,
    grid_anchors,
    grid_centres,
    iou,
    keypoint_boxes,
)


def test_sixteen_shapes_with_paper_scales_and_width_over_height_ratio():
    shapes = anchor_shapes()
    assert shapes.shape == (16, 2)
    assert SCALES_MM == (17.0, 23.0, 28.0, 35.0) and ASPECT_RATIOS == (0.8, 1.1, 1.3, 2.0)
    # area = scale**2, width / height = ratio
    np.testing.assert_allclose(np.sqrt(shapes[:, 0] * shapes[:, 1]), np.repeat(SCALES_MM, 4))
    np.testing.assert_allclose(shapes[:, 0] / shapes[:, 1], np.tile(ASPECT_RATIOS, 4))
    # 2 mm pixels halve the sizes in pixels
    np.testing.assert_allclose(anchor_shapes(spacing_mm=2.0), shapes / 2)


def test_grid_centres_at_stride():
    centres = grid_centres((3, 2), stride=2)
    assert centres.shape == (3, 2, 2)
    np.testing.assert_allclose(centres[0, 0], [0.5, 0.5])
    np.testing.assert_allclose(centres[2, 1], [2.5, 4.5])
    anchors = grid_anchors((3, 2), 2, anchor_shapes())
    assert anchors.shape == (16, 3, 2, 4)
    np.testing.assert_allclose(anchors[5, 1, 1], [2.5, 2.5, *anchor_shapes()[5]])


def test_iou_values():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 5, 5]])
    np.testing.assert_allclose(iou(a, b)[0], [1.0, 50 / 150, 0.0, 0.25])


def test_keypoint_box_and_corners():
    points = np.array([[10, 20], [11, 40], [25, 19], [25, 41], [40, 21], [39, 42]], float)
    np.testing.assert_allclose(keypoint_boxes(points), [10, 19, 40, 42])
    np.testing.assert_allclose(centre_size_to_corners([5, 5, 4, 2]), [3, 4, 7, 6])


def test_encoding_matches_eq2_by_hand():
    anchor = np.array([50.0, 100.0, 40.0, 20.0])
    point = np.array([[60.0, 95.0]])
    # e_x = (60 - 50) / 40, e_y = (95 - 100) / 20
    np.testing.assert_allclose(encode(point, anchor), [[0.25, -0.25]])


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(-200, 200), min_size=12, max_size=12),
    st.floats(0, 300), st.floats(0, 300), st.floats(5, 60), st.floats(5, 60),
)
def test_encode_decode_round_trip(coords, ax, ay, aw, ah):
    points = np.asarray(coords).reshape(6, 2)
    anchor = np.array([ax, ay, aw, ah])
    np.testing.assert_allclose(decode(encode(points, anchor), anchor), points, atol=1e-9)


def test_encode_broadcasts_over_anchors():
    points = np.random.default_rng(0).uniform(0, 100, (7, 6, 2))
    anchors = np.random.default_rng(1).uniform(10, 50, (7, 4))
    encoded = encode(points, anchors)
    assert encoded.shape == (7, 6, 2)
    np.testing.assert_allclose(decode(encoded, anchors), points)
    with pytest.raises(ValueError, match="could not be broadcast"):
        encode(points, anchors[:3])
