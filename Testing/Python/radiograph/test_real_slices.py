"""Real sagittal slices as detector samples: annotated points where the reference has them, S1 ignored."""

import numpy as np
import pytest

from VertebralFractureLib.training.radiograph import real_slices
from VertebralFractureLib.training.radiograph.train_lumbosacral import anchored_slices


@pytest.fixture(scope="module")
def entry():
    return next(e for e in anchored_slices() if "A067967_19001231" in e["image"])


def test_a_real_slice_sample_holds_the_annotated_bodies_at_the_detector_scale(entry):
    sample = real_slices.slice_sample(entry, 2.0)
    col_mm, row_mm = entry["spacing_mm"]
    scale = np.array([col_mm / 2.0, row_mm / 2.0])
    annotated = [v for v in entry["vertebrae"] if v["label"] != "S1"]
    assert sample.levels == [v["label"] for v in annotated]  # every body the detector boxed, S1 left out
    by_level = dict(zip(sample.levels, sample.keypoints))
    for vertebra in annotated:
        if vertebra.get("keypoints"):  # the reference's own points, scaled
            expected = (np.asarray(vertebra["keypoints"], float) + 0.5) * scale - 0.5
            np.testing.assert_allclose(by_level[vertebra["label"]], expected, atol=1e-6)
        else:  # the detector's box on that body: its centre near the annotated one
            centre = (np.asarray(vertebra["centroid"], float) + 0.5) * scale - 0.5
            assert np.linalg.norm((by_level[vertebra["label"]].mean(axis=0) - centre) * 2.0) < real_slices.MATCH_MM
    s1 = next(v for v in entry["vertebrae"] if v["label"] == "S1")
    np.testing.assert_allclose(sample.ignore[-1], (np.asarray(s1["centroid"], float) + 0.5) * scale - 0.5)
    assert sample.image.shape == tuple(int(round(n * f)) for n, f in zip((568, 568), scale[::-1]))


def test_a_real_sample_in_air_keeps_its_points_on_its_pixels(entry):
    sample = real_slices.slice_sample(entry, 2.0)
    padded = real_slices.in_air(sample, 0.5, np.random.default_rng(0))
    shift = padded.keypoints[0, 0] - sample.keypoints[0, 0]
    left, top = (int(round(x)) for x in shift)
    rows, cols = sample.image.shape
    assert np.array_equal(padded.image[top:top + rows, left:left + cols], sample.image)
    np.testing.assert_allclose(padded.ignore - sample.ignore, np.broadcast_to(shift, sample.ignore.shape))
    assert abs(1.0 - sample.image.size / padded.image.size - 0.5) < 0.02
