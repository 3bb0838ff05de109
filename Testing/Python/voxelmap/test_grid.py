import numpy as np
import SimpleITK as sitk
from vmhelpers import line_centreline, phantom_ct

from VertebralFractureLib.voxelmap.band_grid import (
    HU_CENTRE,
    HU_SCALE,
    band_grid,
    densify,
    image_bounds,
    sample_context,
)
from VertebralFractureLib.voxelmap.network_constants import MARGIN


def test_densify_arc_length():
    points, arc = densify(np.array([[0, 0, 0], [0, 0, 10.0], [0, 10.0, 10.0]]), 0.5)
    assert np.isclose(arc[-1], 20.0) and np.max(np.diff(arc)) <= 0.5 + 1e-9
    np.testing.assert_allclose(points[-1], [0, 10, 10])


def test_band_is_a_cylinder_on_a_multiple_of_three_grid():
    grid = band_grid(line_centreline(60), spacing=2.0, band_mm=10.0)
    assert all(s % 3 == 0 for s in grid.geometry.size)
    k, j, i = np.nonzero(grid.mask)
    xyz = grid.geometry.index_to_lps(np.stack([i, j, k], axis=1))
    radial = np.hypot(xyz[:, 0], xyz[:, 1])
    assert radial.max() <= 10.0 + 1e-6
    # a voxel 9 mm from the line at mid-height is inside, 12 mm is not
    inside = np.round(grid.geometry.lps_to_index([[8.0, 0.0, 0.0]])).astype(int)[0]
    assert grid.mask[inside[2], inside[1], inside[0]]
    assert np.nanmax(grid.arc_mm) > 55 and np.nanmin(grid.arc_mm) < 1


def test_band_clipped_to_image_bounds():
    image = phantom_ct(size=(20, 20, 20))
    grid = band_grid(line_centreline(200), 2.0, 10.0, bounds=image_bounds(image))
    low, high = image_bounds(image)
    lps = grid.geometry.index_to_lps([[0, 0, 0]])[0]
    assert lps[2] >= low[2] - 3 * 2.0 and grid.geometry.extent_mm[2] <= (high - low)[2] + 3 * 2.0 + 1e-6


def test_context_values_and_orientation_independence():
    image = phantom_ct(size=(40, 40, 50), value=lambda x, y, z: 10.0 * z)
    grid = band_grid(line_centreline(40), 2.0, 8.0, bounds=image_bounds(image))
    context = sample_context(image, grid)
    assert context.shape == tuple(s + 2 * MARGIN for s in grid.shape)
    g = grid.context_geometry()
    centre = np.array(context.shape) // 2
    z = g.index_to_lps([centre[::-1]])[0][2]
    assert np.isclose(context[tuple(centre)], (10.0 * z - HU_CENTRE) / HU_SCALE, atol=0.05)
    flipped = sitk.DICOMOrient(image, "RAS")
    np.testing.assert_allclose(sample_context(flipped, grid)[MARGIN:-MARGIN, MARGIN:-MARGIN, MARGIN:-MARGIN],
                               context[MARGIN:-MARGIN, MARGIN:-MARGIN, MARGIN:-MARGIN], atol=1e-4)
