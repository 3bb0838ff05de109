"""Input frames (264 x 264 resize, native), Gaussian targets, peak decoding, 004 metrics, spacing estimate."""

import numpy as np
import pytest

from VertebralFractureLib.radiograph.locate import heatmap_peaks
from VertebralFractureLib.radiograph.spacing import estimate_spacing, expected_distance_mm
from VertebralFractureLib.radiograph.transform import frame_for, gaussian_targets, prepare
from VertebralFractureLib.training.radiograph.metrics import Tally, neighbour_distance


def test_resize_frame_maps_pixel_centres_both_ways():
    frame = frame_for((528, 132), "resize")
    assert frame.shape == (264, 264) and frame.scale == (2.0, 0.5)
    assert np.allclose(frame.to_input([[0.0, 0.0]]), [[0.5, -0.25]])
    points = np.array([[10.3, 400.7], [131.0, 0.0]])
    assert np.allclose(frame.to_image(frame.to_input(points)), points)


def test_native_frame_keeps_proportions_and_pads():
    x, frame = prepare(np.random.default_rng(0).random((300, 200)), "native", pixel_mm=1.0, native_mm=1.5)
    assert frame.shape == (200, 133)
    assert x.shape == (224, 160)  # padded to multiples of 32
    assert abs(float(x[:200, :133].mean())) < 1e-4


def test_a_bright_dot_stays_where_the_frame_says():
    image = np.zeros((400, 300), np.float32)
    image[100:104, 60:64] = 1.0  # centre (61.5, 101.5)
    x, frame = prepare(image)
    r, c = np.unravel_index(np.argmax(x), x.shape)
    expected = frame.to_input([[61.5, 101.5]])[0]
    assert abs(c - expected[0]) <= 1.5 and abs(r - expected[1]) <= 1.5


def test_gaussian_targets_and_subpixel_peaks():
    heat = gaussian_targets(np.array([[10.25, 20.5], [30.0, 5.0]]), [0, 2], 3, (40, 50), sigma=2.0)
    assert heat.shape == (3, 40, 50) and heat[1].max() == 0
    assert heat[2, 5, 30] == pytest.approx(1.0)
    points, values = heatmap_peaks(heat)
    assert points[0] == pytest.approx([10.25, 20.5], abs=0.02)  # exact for a Gaussian
    assert points[2] == pytest.approx([30.0, 5.0], abs=1e-6)
    assert values[0] > 0.9 and values[1] == 0


def test_tally_follows_004_protocol():
    truth = {"T4": np.array([0.0, 0.0]), "T5": np.array([0.0, 20.0]), "T6": np.array([0.0, 40.0])}
    predicted = {"T4": np.array([3.0, 4.0]), "T5": np.array([0.0, 31.0]), "T6": np.array([0.0, 40.0])}
    tally = Tally()
    tally.add(truth, predicted, np.array([1.0, 1.0]), pixel_mm=0.5)
    summary = tally.summary()
    # spacing 20 px: T4 off by 5 (correct), T5 off by 11 (> 10: wrong), T6 exact
    assert summary["n"] == 3 and summary["accuracy_pct"] == pytest.approx(200 / 3)
    assert summary["rmse_px"] == pytest.approx(np.sqrt(25 / 2))
    assert summary["rmse_mm"] == pytest.approx(np.sqrt(25 / 2) * 0.5)
    assert summary["rmse_rel_pct"] == pytest.approx(100 * np.sqrt((0.25**2) / 2))


def test_neighbour_distance_divides_skipped_levels():
    assert neighbour_distance(["T4", "T6"], [np.zeros(2), np.array([0.0, 40.0])]) == pytest.approx(20.0)
    assert neighbour_distance(["T12", "L1"], [np.zeros(2), np.array([0.0, 30.0])]) == pytest.approx(30.0)


def test_spacing_estimate_recovers_the_pixel_size():
    levels = ["T10", "T11", "T12", "L1", "L2"]
    rows = np.cumsum([0] + [expected_distance_mm(a, b) for a, b in zip(levels[:-1], levels[1:])])
    centroids = {lv: (100.0, r / 0.4, 0.9) for lv, r in zip(levels, rows)}  # 0.4 mm pixels
    assert estimate_spacing(centroids) == pytest.approx(0.4)
    assert estimate_spacing({"T4": (0, 0, 1)}) is None
