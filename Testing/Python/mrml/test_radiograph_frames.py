"""Where a radiograph's pixels land in the scene: one known point through every pixel <-> RAS path.

A body drawn on a lateral radiograph with pixel spacing (0.8, 0.9) mm (column, row): anterior column
at column 100, posterior at column 130, superior endplate at row 200, inferior at row 230 (heights
30 rows = 27 mm, depth 30 columns = 24 mm). In the created convention (``mrml/radiographs.py``)
pixel (column 100, row 200) is 80 mm posterior (RAS y = -80) and 180 mm inferior (RAS z = -180) of
pixel (0, 0), on the sagittal plane x = 0; in LPS that is (0, +80, -180).
"""

from __future__ import annotations

import numpy as np
import pytest

from VertebralFractureLib.geometry import ImageGeometry
from VertebralFractureLib.schema import SpineResult, Vertebra

SPACING = (0.8, 0.9)  # (column mm, row mm): anisotropic, so a swapped axis shows
PIXELS = np.array([[100.0, 200.0], [100.0, 230.0], [115.0, 200.0], [115.0, 230.0], [130.0, 200.0], [130.0, 230.0]])
# RAS of each keypoint: x = 0, y = -column * 0.8, z = -row * 0.9
RAS = np.column_stack([np.zeros(6), -PIXELS[:, 0] * 0.8, -PIXELS[:, 1] * 0.9])


def drawn_result():
    return SpineResult([Vertebra("L1", PIXELS.mean(axis=0), PIXELS.copy())], frame="pixel", pixel_spacing=SPACING)


def control_points(node):
    points = np.zeros((node.GetNumberOfControlPoints(), 3))
    for index in range(len(points)):
        node.GetNthControlPointPosition(index, points[index])
    return points


def test_created_radiograph_maps_the_known_pixel(mrml_scene):
    from VertebralFractureLib.mrml.radiographs import (
        default_pixel_to_ras,
        pixels_to_ras,
        radiograph_volume,
        ras_to_pixels,
        volume_pixel_spacing,
        volume_pixel_to_ras,
    )

    image = np.arange(300 * 200, dtype=np.float32).reshape(300, 200)
    node = radiograph_volume(image, SPACING, scene=mrml_scene, name="XR")
    matrix = volume_pixel_to_ras(node)
    np.testing.assert_allclose(matrix @ [100.0, 200.0, 0.0, 1.0], [0.0, -80.0, -180.0, 1.0], atol=1e-9)
    np.testing.assert_allclose(default_pixel_to_ras(SPACING), matrix, atol=1e-12)  # a node-less result: same plane
    np.testing.assert_allclose(pixels_to_ras(PIXELS, matrix), RAS, atol=1e-9)
    np.testing.assert_allclose(ras_to_pixels(RAS, matrix), PIXELS, atol=1e-9)
    assert volume_pixel_spacing(node) == pytest.approx(SPACING)
    # the voxel the scene shows at that RAS point is the pixel the array holds at [row 200, column 100]
    ijk = np.linalg.inv(matrix) @ [0.0, -80.0, -180.0, 1.0]
    assert image[int(round(ijk[1])), int(round(ijk[0]))] == image[200, 100]


def test_a_2d_result_placed_in_lps_and_read_back():
    from VertebralFractureLib.mrml.radiographs import default_pixel_to_ras, lps_result_of_pixels, pixel_result_from_lps

    matrix = default_pixel_to_ras(SPACING)
    placed = lps_result_of_pixels(drawn_result(), matrix)
    assert placed.frame == "LPS"
    lps = np.asarray(placed.vertebra("L1").keypoints)
    np.testing.assert_allclose(lps[0], [0.0, 80.0, -180.0], atol=1e-9)  # posterior is +y, superior +z in LPS
    assert lps[4, 1] - lps[0, 1] == pytest.approx(30 * 0.8)  # the posterior column lies 24 mm behind the anterior
    assert lps[0, 2] - lps[1, 2] == pytest.approx(30 * 0.9)  # superior endplate 27 mm above the inferior one
    back = pixel_result_from_lps(placed, matrix)
    assert back.frame == "pixel" and back.pixel_spacing == pytest.approx(SPACING)
    np.testing.assert_allclose(back.vertebra("L1").keypoints, PIXELS, atol=1e-9)
    assert back.vertebra("L1").measure.heights == pytest.approx((27.0, 27.0, 27.0))


def test_shown_without_a_picture_the_points_sit_where_a_created_radiograph_would_show_them(logic):
    from VertebralFractureLib.mrml.radiographs import PIXEL_TO_RAS_ATTRIBUTE, default_pixel_to_ras, matrix_of_text

    nodes = logic.show_result(drawn_result(), name="drawn")
    np.testing.assert_allclose(control_points(nodes.keypoints), RAS, atol=1e-6)
    stored = matrix_of_text(nodes.keypoints.GetAttribute(PIXEL_TO_RAS_ATTRIBUTE))
    np.testing.assert_allclose(stored, default_pixel_to_ras(SPACING), atol=1e-12)


def test_a_picture_with_another_orientation_keeps_each_point_on_its_pixel(logic, mrml_scene):
    """A one-slice volume on an LPS-identity grid with an origin: pixel (c, r) is LPS origin + (0.8 c, 0.9 r, 0)."""
    from VertebralFractureLib.mrml.volumes import volume_from_array

    geometry = ImageGeometry((200, 300, 1), (0.8, 0.9, 1.0), np.array([10.0, 20.0, 30.0]), np.eye(3))
    volume = volume_from_array(np.zeros((1, 300, 200), np.float32), geometry, scene=mrml_scene, name="picture")
    nodes = logic.show_result(drawn_result(), volume=volume, name="picture")
    lps = np.column_stack([10.0 + PIXELS[:, 0] * 0.8, 20.0 + PIXELS[:, 1] * 0.9, np.full(6, 30.0)])
    np.testing.assert_allclose(control_points(nodes.keypoints), lps * [-1.0, -1.0, 1.0], atol=1e-6)
