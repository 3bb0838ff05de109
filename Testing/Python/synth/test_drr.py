"""Lateral DRR: geometry of the projection and bone landing on bright pixels."""

from __future__ import annotations

import numpy as np
import pytest

from VertebralFractureLib.synth.drr import lateral_drr, line_integrals
from VertebralFractureLib.synth.grid import Grid


def test_line_integral_of_water_block():
    hu = np.full((4, 5, 10), -1000.0, np.float32)
    hu[:, :, 2:8] = 0.0  # 6 voxels of water along x
    integral = line_integrals(hu, 2.0)
    assert integral.shape == (4, 5)
    assert integral == pytest.approx(0.019 * 12.0)


def test_projection_frame_rows_down_columns_posterior():
    grid = Grid(origin=(-10.0, -20.0, -30.0), spacing=(1.0, 1.0, 1.0), shape=(61, 41, 21))
    hu = np.full(grid.shape, 0.0, np.float32)
    # a small bone cube near the top (superior) and the front (anterior)
    hu[50:55, 5:10, 8:13] = 1000.0
    image, geometry = lateral_drr(hu, grid, pixel_mm=1.0)
    assert image.shape == (61, 41)
    row, column = np.unravel_index(np.argmax(image), image.shape)
    assert 6 <= row <= 10 and 5 <= column <= 9  # top rows = superior, left columns = anterior
    point = np.array([0.0, -20.0 + 7.0, -30.0 + 52.0])
    assert geometry.project(point) == pytest.approx([7.0, 8.0])


def test_projected_points_land_on_the_projected_bodies(fine_case):
    import SimpleITK as sitk

    truth = fine_case.radiograph_truth
    assert truth.frame == "pixel"
    image = fine_case.radiograph
    assert image.dtype == np.float32 and 0.0 <= image.min() and image.max() <= 1.0
    # path length through the bodies along the beam, mapped with the DRR's own geometry
    ct = fine_case.ct
    assert ct.GetSpacing()[1:] == pytest.approx((1.0, 1.0)) and truth.pixel_spacing[0] == pytest.approx(1.0)
    grid = Grid(ct.GetOrigin(), ct.GetSpacing(), tuple(reversed(ct.GetSize())))
    body = sitk.GetArrayFromImage(fine_case.body_mask) > 0
    _, geometry = lateral_drr(np.zeros(grid.shape, np.float32), grid, truth.pixel_spacing[0])
    path_mm = body.sum(axis=2)[::-1] * ct.GetSpacing()[0]  # rows: superior first
    assert path_mm.shape == image.shape
    bright = path_mm > 10.0
    rows, cols = image.shape
    for v, v3d in zip(truth.vertebrae, fine_case.truth.vertebrae):
        assert v.label == v3d.label
        assert np.allclose(v.keypoints, geometry.project(v3d.keypoints))
        column, row = np.rint(v.centroid).astype(int)
        assert bright[row, column], v.label
        for point in v.keypoints:
            column, row = np.rint(point).astype(int)
            assert 0 <= column < cols and 0 <= row < rows
            assert bright[max(row - 2, 0) : row + 3, max(column - 2, 0) : column + 3].any(), (v.label, point)


def test_bodies_are_brighter_than_the_soft_tissue_in_front(fine_case):
    image = fine_case.radiograph
    truth = fine_case.radiograph_truth
    pixel = truth.pixel_spacing[0]

    def sample(point, half=2):
        """Mean of a (2 half + 1)^2 pixel window (the trabecular texture is grainy)."""
        column, row = np.rint(point).astype(int)
        return float(image[max(row - half, 0) : row + half + 1, max(column - half, 0) : column + half + 1].mean())

    # body centre against the soft tissue 8 mm in front of the anterior wall (ribs and heart cross
    # the thoracic spine in a lateral view, so only most levels and the mean are asserted)
    contrast = np.array([sample(v.centroid) - sample(v.keypoints[0:2].mean(axis=0) - [8.0 / pixel, 0.0])
                         for v in truth.vertebrae])  # fmt: skip
    assert np.mean(contrast) > 0.04 and np.mean(contrast > 0) >= 0.6, contrast
    lumbar = [c for c, v in zip(contrast, truth.vertebrae) if v.label.startswith("L")]
    assert lumbar and min(lumbar) > 0.0, lumbar


def test_projected_heights_follow_the_3d_heights(fine_case):
    truth = fine_case.radiograph_truth
    # parallel beam, near-sagittal bodies
    for v, v3d in zip(truth.vertebrae, fine_case.truth.vertebrae):
        assert np.allclose(v.measure.heights, v3d.measure.heights, rtol=0.05, atol=0.3)


def test_point_source_magnifies_about_the_central_ray():
    # two small bone cubes, one near the source (right, small x) and one near the detector
    grid = Grid(origin=(-100.0, -60.0, -60.0), spacing=(2.0, 1.0, 1.0), shape=(121, 121, 101))
    hu = np.zeros(grid.shape, np.float32)
    near_source = np.array([-80.0, 30.0, 30.0])
    near_detector = np.array([80.0, 30.0, 30.0])
    for point in (near_source, near_detector):
        i, j, k = np.rint((point - np.array(grid.origin)) / np.array(grid.spacing)).astype(int)
        hu[k - 1 : k + 2, j - 1 : j + 2, i - 1 : i + 2] = 2000.0
    image, geometry = lateral_drr(hu, grid, 1.0, sid_mm=700.0, centre=(0.0, 0.0, 0.0), detector_gap_mm=200.0)
    assert geometry.source == pytest.approx((-500.0, 0.0, 0.0, 500.0))
    sod = 500.0
    # the detector is cropped to what every ray sees inside the volume: the far (x = 100) edge, magnified least
    assert geometry.y0 == pytest.approx(-60.0 * sod / 600) and geometry.z_top == pytest.approx(60.0 * sod / 600)
    # a point in the isocentre plane projects as in a parallel beam
    assert geometry.project([0.0, 30.0, 30.0]) == pytest.approx([30.0 - geometry.y0, geometry.z_top - 30.0])
    # off-centre points come closer to the central ray on the detector side, move out on the source side
    far, near = geometry.project(near_detector), geometry.project(near_source)
    assert far[0] == pytest.approx(30 * sod / 580 - geometry.y0)
    assert near[0] == pytest.approx(30 * sod / 420 - geometry.y0)
    for point in (far, near):
        column, row = np.rint(point).astype(int)
        window = image[row - 2 : row + 3, column - 2 : column + 3]
        assert window.max() > 0.9 * image.max()


def test_generated_radiograph_with_point_source_keeps_projected_points_consistent():
    from VertebralFractureLib.synth import generate_case

    case = generate_case(2, "radiograph", spacing=(3.0, 1.5, 1.5), radiograph_sid_mm=1100.0)
    info = case.radiograph_truth.input
    assert info["sid_mm"] == 1100.0 and info["source"]["sod_mm"] == pytest.approx(920.0)
    for v, v3d in zip(case.radiograph_truth.vertebrae, case.truth.vertebrae):
        # near-isocentre bodies: projected heights within a few percent of the 3D heights
        assert np.allclose(v.measure.heights, v3d.measure.heights, rtol=0.06, atol=0.5), v.label
