"""The lateral-view fracture classifier: its patch, the shipped network, its place in the verdict."""

import numpy as np
import pytest

from VertebralFractureLib.radiograph.fracture import (
    PATCH_SIZE,
    body_axes,
    cut_patch,
    fracture_probabilities,
    load_model,
    normalise_patch,
)


def _picture(height: float = 30.0, depth: float = 40.0, scale: float = 1.0, below: bool = True):
    """A lateral picture (facing left) with one bright body of ``height`` x ``depth`` pixels and its keypoints."""
    rows, cols = int(200 * scale), int(160 * scale)
    image = np.full((rows, cols), 0.2, np.float32)
    top, left = 100 * scale - height * scale / 2, 60 * scale
    image[int(round(top)):int(round(top + height * scale)), int(round(left)):int(round(left + depth * scale))] = 0.8
    if below:  # the next body down
        image[int(round(top + height * scale + 4 * scale)):, int(round(left)):int(round(left + depth * scale))] = 0.7
    bottom, right = top + height * scale, left + depth * scale
    keypoints = np.array([[left, top], [left, bottom], [(left + right) / 2, top], [(left + right) / 2, bottom],
                          [right, top], [right, bottom]])
    return image, keypoints


def test_the_patch_is_cut_on_the_body_axes_whichever_way_the_view_faces():
    image, keypoints = _picture()
    mirrored = image[:, ::-1]
    flipped = keypoints.copy()
    flipped[:, 0] = image.shape[1] - 1 - flipped[:, 0]
    np.testing.assert_allclose(cut_patch(mirrored, flipped), cut_patch(image, keypoints), atol=1e-4)


def test_the_patch_needs_no_pixel_size_the_body_depth_sets_its_scale():
    image, keypoints = _picture()
    large, large_points = _picture(scale=2.0)
    same = cut_patch(image, keypoints)
    twice = cut_patch(large, large_points)
    assert np.mean(np.abs(same - twice)) < 0.1  # the same picture at twice the pixels gives the same patch


def test_a_collapsed_body_stays_collapsed_in_its_patch():
    """Scaling by the height would enlarge a crushed body back to a normal shape; the depth keeps the loss."""
    normal = cut_patch(*_picture(height=30.0, below=False))
    crushed = cut_patch(*_picture(height=15.0, below=False))
    column = PATCH_SIZE // 2
    rows_of_body = [int((patch[:, column] > 0.5).sum()) for patch in (normal, crushed)]
    assert rows_of_body[1] < 0.7 * rows_of_body[0]


def test_degenerate_keypoints_are_refused_and_flat_patches_are_not_blown_up():
    with pytest.raises(ValueError, match="no height or no depth"):
        body_axes(np.zeros((6, 2)))
    flat = np.full((8, 8), 0.3, np.float32)
    flat[0, 0] = 0.31
    assert np.abs(normalise_patch(flat)).max() <= 0.2 + 1e-6  # 0.01 over a spread of at least 0.05
    outside = normalise_patch(np.full((4, 4), np.nan))
    assert np.all(outside == 0)


def test_the_shipped_network_scores_every_body_and_nan_where_it_cannot():
    image, keypoints = _picture()
    model = load_model()
    assert model.config["patch_size"] == PATCH_SIZE and getattr(model, "sha256", "")
    values = fracture_probabilities(image, [keypoints, np.zeros((6, 2))], model)
    assert values.shape == (2,) and 0.0 <= values[0] <= 1.0 and np.isnan(values[1])
    assert fracture_probabilities(image, [], model).shape == (0,)


def test_a_radiograph_result_carries_the_score_and_the_model_that_gave_it(drawn):
    from VertebralFractureLib.keypoints.detector import Detection
    from VertebralFractureLib.radiograph.analyze import analyze_radiograph
    from VertebralFractureLib.radiograph.model import CentroidModel

    column = drawn()
    centroids = CentroidModel.create({"channels": [4, 8, 8], "convs": [1, 1, 1]}, seed=1)

    def annotated(image, pixel_mm):
        return [Detection(points, 0.9, "T1", 0.5) for points in column.keypoints]

    result = analyze_radiograph(column.image, pixel_spacing=(1.0, 1.0), detector=annotated,
                                centroid_model=centroids).result
    scored = [v.fracture_probability for v in result.vertebrae]
    assert scored and all(p is not None and 0.0 <= p <= 1.0 for p in scored)
    assert len(result.models["radiograph_fracture"]) == 64  # the weights' SHA-256
    unscored = analyze_radiograph(column.image, pixel_spacing=(1.0, 1.0), detector=annotated,
                                  centroid_model=centroids, fracture_model=False).result
    assert [v.label for v in unscored.vertebrae] == [v.label for v in result.vertebrae]
    assert all(v.fracture_probability is None for v in unscored.vertebrae)
    assert "radiograph_fracture" not in unscored.models


def test_only_thoracic_and_lumbar_bodies_are_scored():
    """Trained on T1-L5 (the levels Genant grades): the sacrum's wedge-shaped S1 keeps no score."""
    from VertebralFractureLib.radiograph.fracture import score_vertebrae
    from VertebralFractureLib.schema import SpineResult, Vertebra

    image, keypoints = _picture()
    result = SpineResult(frame="pixel", pixel_spacing=(1.0, 1.0))
    for label, shift in (("L5", 0.0), ("S1", 40.0), ("C7", -40.0)):
        points = keypoints + [0.0, shift]
        result.vertebrae.append(Vertebra(label=label, centroid=points.mean(0), keypoints=points))
    score_vertebrae(result, image, [v.keypoints for v in result.vertebrae])
    assert result.vertebrae[0].fracture_probability is not None
    assert [v.fracture_probability for v in result.vertebrae[1:]] == [None, None]
    assert result.models["radiograph_fracture"] == load_model().sha256


def test_a_lateral_view_vertebra_is_judged_by_the_lateral_view_calibration():
    from VertebralFractureLib.schema import Vertebra
    from VertebralFractureLib.verdict import MASK_SCORE_RULES, RADIOGRAPH_SCORE_RULES, SCORE_RULES, rules_for

    flat = np.array([[0, 0], [0, 30], [20, 0], [20, 30], [40, 0], [40, 30]], float)
    lateral = Vertebra(label="L1", centroid=flat.mean(0), keypoints=flat)
    ct = Vertebra(label="L1", centroid=np.zeros(3), keypoints=np.c_[flat, np.zeros(6)])
    assert rules_for(lateral) == RADIOGRAPH_SCORE_RULES and rules_for(ct) == SCORE_RULES
    ct.source = "mask"
    assert rules_for(ct) == MASK_SCORE_RULES


def test_the_command_line_runs_the_lateral_view_classifier_unless_the_stages_leave_it_out(tmp_path):
    import json
    from pathlib import Path

    from VertebralFractureLib.cli import main

    film = Path(__file__).resolve().parents[2] / "Data" / "real" / "covid_sagittal" / "A058062_19001231-073.nii.gz"
    scored = {}
    for stages in ("classifier", "none"):
        out = tmp_path / stages
        assert main(["analyze", str(film), "--out", str(out), "--stages", stages, "--quiet"]) == 0
        document = json.loads((out / "results.json").read_text())
        scored[stages] = [v.get("fracture_probability") for v in document["vertebrae"]]
        assert ("radiograph_fracture" in document["models"]) == (stages == "classifier")
    assert any(p is not None for p in scored["classifier"]) and all(p is None for p in scored["none"])
