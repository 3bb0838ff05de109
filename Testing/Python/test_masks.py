import numpy as np
import pytest

from VertebralFractureLib.geometry import ImageGeometry
from VertebralFractureLib.masks import WIDTH_TO_DEPTH, body_frame, body_masks_from_keypoints
from VertebralFractureLib.schema import SpineResult, Vertebra


def _box_vertebra(label, z0, height=24.0, depth=30.0, anterior_height=None):
    ha = height if anterior_height is None else anterior_height
    points = np.array([
        [0, -depth / 2, z0 + ha / 2], [0, -depth / 2, z0 - ha / 2],
        [0, 0, z0 + height / 2], [0, 0, z0 - height / 2],
        [0, depth / 2, z0 + height / 2], [0, depth / 2, z0 - height / 2],
    ])
    return Vertebra(label, points.mean(axis=0), points)


def test_body_frame_of_an_upright_body_is_the_lps_axes():
    centre, superior, posterior, lateral = body_frame(_box_vertebra("L1", 0.0).keypoints)
    assert centre == pytest.approx([0, 0, 0])
    assert superior == pytest.approx([0, 0, 1])
    assert posterior == pytest.approx([0, 1, 0])
    assert abs(lateral[0]) == pytest.approx(1.0)


def test_mask_volume_matches_the_elliptic_prism_and_labels_follow_levels():
    result = SpineResult([_box_vertebra("L1", 0.0), _box_vertebra("L2", -32.0)])
    geometry = ImageGeometry((80, 80, 100), (1.0, 1.0, 1.0), (-40, -40, -70), np.eye(3))
    labels = body_masks_from_keypoints(result, geometry)
    expected = np.pi * 15 * (15 * WIDTH_TO_DEPTH) * 24
    assert (labels == 20).sum() == pytest.approx(expected, rel=0.06)
    assert (labels == 21).sum() == pytest.approx(expected, rel=0.06)
    centre_index = np.round(geometry.lps_to_index([0, 0, -32])).astype(int)
    assert labels[centre_index[2], centre_index[1], centre_index[0]] == 21


def test_a_wedge_body_is_smaller_anteriorly():
    geometry = ImageGeometry((80, 80, 60), (1.0, 1.0, 1.0), (-40, -40, -30), np.eye(3))
    wedge = body_masks_from_keypoints(SpineResult([_box_vertebra("T8", 0.0, anterior_height=12.0)]), geometry)
    anterior = wedge[:, 40 - 14, 40]
    posterior = wedge[:, 40 + 14, 40]
    assert anterior.sum() < 0.7 * posterior.sum()
