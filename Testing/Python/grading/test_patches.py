"""Patch extraction on the straightened spine and the network input (Husseini et al. 2020, §3)."""

import numpy as np
import pytest

from VertebralFractureLib.geometry import ImageGeometry
from VertebralFractureLib.grading.patches import (
    CACHE_SIZE,
    extract_patch,
    gaussian_channel,
    model_input,
    normalise_hu,
    straighten_for_patches,
)
from VertebralFractureLib.grading.regions import REGION_NAMES, is_fractured, region_index


def straight_phantom():
    """A CT (array k, j, i; identity LPS, 1 mm) with a 20 x 30 mm bright body centred at (0, 0, 100)."""
    array = np.full((201, 161, 161), -1000.0, np.float32)  # z 0..200, y -80..80, x -80..80
    # body: z 90..109 (20 mm), y -15..14 (30 mm, anterior = smaller y in LPS), x -10..9
    array[90:110, 65:95, 70:90] = 500.0
    geometry = ImageGeometry((161, 161, 201), (1.0, 1.0, 1.0), (-80.0, -80.0, 0.0), np.eye(3))
    curve = np.stack([np.zeros(201), np.zeros(201), np.arange(201.0)], 1)
    return (array, geometry), curve


def test_patch_is_centred_on_the_centroid():
    image, curve = straight_phantom()
    st = straighten_for_patches(image, curve)
    centroid = np.array([-0.5, -0.5, 99.5])
    patch = extract_patch(st, centroid)
    assert patch.shape == (112, 112)
    bright = patch > 0
    rows, cols = np.nonzero(bright)
    # 20 rows (superior-inferior) x 30 columns (anterior-posterior), centred on pixel 55.5
    assert rows.max() - rows.min() + 1 == pytest.approx(20, abs=1)
    assert cols.max() - cols.min() + 1 == pytest.approx(30, abs=1)
    assert rows.mean() == pytest.approx(55.5, abs=0.6)
    assert cols.mean() == pytest.approx(55.5, abs=0.6)


def test_patch_orientation_superior_up_anterior_left():
    image, curve = straight_phantom()
    array, geometry = image
    array = array.copy()
    array[100:110, 65:80, 70:90] = 1500.0  # superior (larger z in LPS) and anterior (smaller y) quarter
    st = straighten_for_patches((array, geometry), curve)
    patch = extract_patch(st, np.array([-0.5, -0.5, 99.5]))
    very = np.nonzero(patch > 1000)
    assert very[0].mean() < 55.5  # upper rows = superior
    assert very[1].mean() < 55.5  # left columns = anterior


def test_normalise_hu_clips():
    assert normalise_hu(np.array([-3000.0, 250.0, 750.0, 5000.0])).tolist() == [-2.5, 0.0, 1.0, 3.5]


def test_gaussian_channel_peak():
    g = gaussian_channel(112, (40.0, 70.0))
    assert np.unravel_index(np.argmax(g), g.shape) == (40, 70)
    assert g.max() == pytest.approx(1.0)


def test_model_input_shift_moves_the_marker_with_the_centroid():
    cached = np.zeros((CACHE_SIZE, CACHE_SIZE), np.float32)
    cached[63:65, 63:65] = 1.0  # the centroid pixels
    x = model_input(cached, shift=(5, -3))
    assert x.shape == (2, 112, 112)
    image_peak = np.array(np.nonzero(x[0])).mean(axis=1)
    marker_peak = np.unravel_index(np.argmax(x[1]), (112, 112))
    assert image_peak == pytest.approx([55.5 - 5, 55.5 + 3])
    assert abs(marker_peak[0] - image_peak[0]) <= 0.5 and abs(marker_peak[1] - image_peak[1]) <= 0.5
    flipped = model_input(cached, shift=(5, -3), flip=True)
    assert np.array_equal(flipped[:, ::-1], x)
    with pytest.raises(ValueError, match=r"shift \(9, 0\) leaves the cached"):
        model_input(cached, shift=(9, 0))


def test_regions():
    assert len(REGION_NAMES) == 5
    assert [region_index(x) for x in ("T1", "T5", "T6", "T9", "T10", "T12", "T13", "L1", "L4", "L5", "L6")] == [
        0, 0, 1, 1, 2, 2, 2, 3, 3, 4, 4]
    assert region_index("C7") is None and region_index("S1") is None
    assert [is_fractured(g) for g in range(4)] == [False, False, True, True]
