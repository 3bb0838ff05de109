import json

import numpy as np
import pytest

from VertebralFractureLib.shape.crops import CROP_SHAPE
from VertebralFractureLib.shape.score import (
    AbnormalityModel,
    abnormality_scores,
    gaussian_weight,
    score_from_fraction,
    surplus_fraction,
)


def _box(top: int, bottom: int) -> np.ndarray:
    body = np.zeros(CROP_SHAPE, np.float32)
    body[bottom:top, 6:14, 5:15] = 1.0
    return body


def test_gaussian_weight_is_centred_on_the_prediction_and_narrow_antero_posteriorly():
    predicted = _box(20, 12)
    weight = gaussian_weight(predicted)
    peak = np.unravel_index(np.argmax(weight), weight.shape)
    assert peak == (15, 9, 9) or np.allclose(weight[peak], weight[15, 9, 9])
    # same distance (4 voxels) along the superior and the antero-posterior axis: AP weighs less
    assert weight[15 + 4, 9, 9] > weight[15, 9 + 4, 9] > 0


def test_surplus_fraction_grows_with_height_loss():
    healthy = _box(20, 12)
    assert surplus_fraction(healthy, healthy) == 0.0
    losses = [surplus_fraction(healthy, _box(20, 12 + k)) for k in (1, 2, 4, 6)]
    assert all(a < b for a, b in zip(losses, losses[1:]))
    assert 0.4 < losses[-1] < 0.9
    # a surplus of the actual body over the prediction does not count
    assert surplus_fraction(healthy, _box(22, 10)) == 0.0


def test_score_is_clipped_to_0_100():
    assert score_from_fraction(0.0) == 0.0
    assert score_from_fraction(0.25, scale=0.5) == 50.0
    assert score_from_fraction(2.0) == 100.0
    assert score_from_fraction(-0.1) == 0.0


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    import torch

    from VertebralFractureLib.nn.weights import save_weights
    from VertebralFractureLib.shape.network import ShapeModel

    torch.manual_seed(0)
    model = ShapeModel((2, 4, 4))
    path = tmp_path_factory.mktemp("weights") / "abnormality_tiny.pt"
    save_weights(model, path, name="abnormality", config={"channels": [2, 4, 4], "scale": 0.5})
    return path


def test_scores_from_a_mask_fill_the_result(column_mask, tiny_weights):
    from VertebralFractureLib.shape.measure import measure_from_mask

    result = measure_from_mask(column_mask)
    model = AbnormalityModel.load(str(tiny_weights))
    scores = abnormality_scores(column_mask, result, model)
    assert list(scores) == result.labels
    for v in result.vertebrae:
        assert 0.0 <= scores[v.label] <= 100.0
        assert v.abnormality == scores[v.label]
        assert 0.0 <= v.extra["shape"]["surplus_fraction"]
    document = json.loads(result.to_json())
    assert all("abnormality" in entry for entry in document["vertebrae"])
    assert document["patient"]["max_abnormality"] == max(scores.values())
    assert result.models["abnormality"] == "abnormality_tiny.pt"


def test_stage_without_segmentation_warns():
    from types import SimpleNamespace

    from VertebralFractureLib.progress import Progress
    from VertebralFractureLib.schema import SpineResult
    from VertebralFractureLib.shape.stage import AbnormalityStage
    from VertebralFractureLib.stage import StageContext

    analysis = SimpleNamespace(result=SpineResult(), labels=None)
    AbnormalityStage().run(analysis, StageContext(device="cpu"), Progress())
    assert any("no vertebra segmentation" in w for w in analysis.result.warnings)


def test_shipped_weights_load_and_predict_a_body():
    from VertebralFractureLib.nn.weights import WEIGHTS_DIR

    if not (WEIGHTS_DIR / "abnormality_shape.pt").exists():
        pytest.skip("shipped abnormality weights not trained yet")
    model = AbnormalityModel.load(device="cpu")
    from VertebralFractureLib.training.abnormality.data import column_samples, synthetic_column

    models = synthetic_column(11, "spine", fracture_prevalence=0.0)
    samples = column_samples(models, np.random.default_rng(0), cut_probability=0.0, mirror=False)
    context, body, _ = next(s for s in samples if s[2]["n_context"] == 4)
    predicted = model.predict(context[None])[0]
    overlap = (np.minimum(predicted, body).sum()) / max(np.maximum(predicted, body).sum(), 1e-6)
    assert overlap > 0.6
    assert model.score(predicted, body)[0] < 40


def test_stage_scores_the_body_labels_with_the_shipped_model(column_mask):
    from types import SimpleNamespace

    from VertebralFractureLib.nn.weights import WEIGHTS_DIR
    from VertebralFractureLib.progress import Progress
    from VertebralFractureLib.shape.measure import measure_from_mask
    from VertebralFractureLib.shape.stage import AbnormalityStage
    from VertebralFractureLib.stage import StageContext

    if not (WEIGHTS_DIR / "abnormality_shape.pt").exists():
        pytest.skip("shipped abnormality weights not trained yet")
    result = measure_from_mask(column_mask)
    analysis = SimpleNamespace(result=result, labels=column_mask)
    AbnormalityStage().run(analysis, StageContext(device="cpu"), Progress())
    scores = {v.label: v.abnormality for v in result.vertebrae}
    assert all(s is not None for s in scores.values())
    # the grade-3 wedge (L1) is the most abnormal body of the column
    assert max(scores, key=scores.get) == "L1"
    assert scores["L1"] > 50 and min(scores.values()) < 40
    assert result.models["abnormality"] == "abnormality_shape.pt"
