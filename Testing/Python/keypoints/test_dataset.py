"""Straightening a (tiny, hand-made) CT and mapping its 3D keypoints into the mid-sagittal image."""

import numpy as np
import pytest

from VertebralFractureLib.geometry import ImageGeometry
from VertebralFractureLib.schema import SpineResult, Vertebra
from VertebralFractureLib.training.keypoints.data import (
    centreline_from_result,
    perturb_curve,
    sample_from_ct,
    spine_of,
    truth_of,
)
from VertebralFractureLib.training.keypoints.sample import Sample


def _phantom():
    """A CT with three bright boxes (bodies) along S-I; returns (array, geometry, truth)."""
    shape = (120, 80, 60)  # k (S-I), j (A-P), i (R-L), 1 mm, identity direction (LPS)
    array = np.full(shape, -1000.0, dtype=np.float32)
    vertebrae = []
    for label, z0 in (("L1", 20), ("L2", 50), ("L3", 80)):
        height, y0, depth, x = 22, 25, 30, 30.0
        array[z0 : z0 + height, y0 : y0 + depth, 20:40] = 300.0
        keypoints = []
        for y in (y0, y0 + depth / 2, y0 + depth - 1):  # anterior (small y), middle, posterior
            keypoints += [[x, y, z0 + height - 1], [x, y, z0]]  # superior (larger z in LPS), inferior
        vertebrae.append(Vertebra(label, np.mean(keypoints, axis=0), keypoints, source="synthetic"))
    geometry = ImageGeometry(shape[::-1], (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3))
    return array, geometry, SpineResult(vertebrae)


def test_keypoints_land_on_the_bodies_in_the_mid_sagittal_image(tmp_path):
    array, geometry, truth = _phantom()
    sample, spine = sample_from_ct((array, geometry), truth, name="phantom")
    assert sample.levels == ["L1", "L2", "L3"]
    image = sample.image
    for points in sample.keypoints:
        centre = points.mean(axis=0)
        assert image[int(round(centre[1])), int(round(centre[0]))] > 200  # inside a body
    # superior points above inferior ones (rows grow inferiorly), anterior columns smaller
    kp = sample.keypoints[0]
    assert np.all(kp[0::2, 1] < kp[1::2, 1])
    assert kp[0, 0] < kp[4, 0]
    # heights preserved (straight spine): 21 mm
    np.testing.assert_allclose(np.abs(kp[1::2, 1] - kp[0::2, 1]), 21.0, atol=0.05)
    # and back to LPS exactly
    back = spine.mid_sagittal_to_patient(kp, order="col_row")
    np.testing.assert_allclose(back, truth.vertebrae[0].keypoints, atol=1e-6)
    # cache round trip keeps what evaluation needs
    loaded = Sample.load(sample.save(tmp_path / "s.npz"))
    assert loaded.levels == sample.levels
    np.testing.assert_allclose(loaded.keypoints, sample.keypoints)
    np.testing.assert_allclose(spine_of(loaded).mid_sagittal_to_patient(kp, order="col_row"), back, atol=0.01)
    assert truth_of(loaded).labels == ["L1", "L2", "L3"]


def test_centreline_through_annotation_and_perturbation():
    _, _, truth = _phantom()
    curve = centreline_from_result(truth, margin_mm=10)
    centres = np.array([v.keypoints.mean(axis=0) for v in truth.vertebrae])
    for centre in centres:
        assert np.min(np.linalg.norm(curve - centre, axis=1)) < 0.6
    moved = perturb_curve(curve, np.random.default_rng(0), 1.5)
    shift = np.linalg.norm(moved - curve, axis=1)
    assert shift.max() < 4.0 and shift.mean() > 0.05
    assert np.allclose(moved[:, 2], curve[:, 2])  # only A-P / lateral displacement


def test_pixel_annotations_are_refused():
    _, geometry, truth = _phantom()
    flat = SpineResult(
        [Vertebra("L1", [0, 0], np.zeros((6, 2)) + np.arange(6)[:, None])], frame="pixel"
    )
    with pytest.raises(ValueError, match="LPS"):
        sample_from_ct((np.zeros((2, 2, 2)), geometry), flat)


def test_evaluation_plumbing_on_the_phantom():
    from VertebralFractureLib.keypoints.model import KeypointModel
    from VertebralFractureLib.training.keypoints.evaluate import evaluate_samples, format_table

    array, geometry, truth = _phantom()
    sample, _ = sample_from_ct((array, geometry), truth, name="phantom")
    model = KeypointModel.create().eval()  # untrained: objectness prior ~2 %, nothing above 0.5
    figures = evaluate_samples(model, [sample])
    assert figures["true_vertebrae"] == 3 and figures["detections"] == 0
    assert figures["recall"] == 0.0 and figures["level_id_counts"] == [0, 3]
    assert figures["vertebra_mild"]["negatives"] == 3  # the phantom bodies are rectangles: G = 1
    table = format_table(figures)
    assert "Recall" in table and "Moderate (G<=0.75)" in table
