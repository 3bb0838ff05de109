import numpy as np

from VertebralFractureLib.shape.crops import CROP_SHAPE
from VertebralFractureLib.training.abnormality.data import build_set


def test_training_crops_are_unfractured_bodies_between_neighbours():
    context, body, facts = build_set(range(0, 2), fracture_prevalence=0.1, cut_probability=0.0)
    assert context.shape[1:] == (4, *CROP_SHAPE) and body.shape[1:] == CROP_SHAPE
    assert all(f["grade"] == 0 for f in facts)
    full = [i for i, f in enumerate(facts) if f["n_context"] == 4]
    assert full
    i = full[0]
    # the body sits in the middle of the crop, its first neighbours above and below it
    profile = body[i].astype(float).sum(axis=(1, 2))
    centre = (profile * np.arange(CROP_SHAPE[0])).sum() / profile.sum()
    assert abs(centre - (CROP_SHAPE[0] - 1) / 2) < 1.5
    above = context[i, 1].astype(float).sum(axis=(1, 2))
    below = context[i, 2].astype(float).sum(axis=(1, 2))
    assert (above * np.arange(CROP_SHAPE[0])).sum() / above.sum() > centre + 3
    assert (below * np.arange(CROP_SHAPE[0])).sum() / below.sum() < centre - 3
    # no overlap between the target and its neighbours
    assert (np.minimum(body[i], context[i].max(axis=0)) > 128).sum() == 0


def test_train_shape_writes_loadable_weights(tmp_path):
    from VertebralFractureLib.shape.score import AbnormalityModel
    from VertebralFractureLib.training.abnormality.train import train_shape

    context, body, facts = build_set(range(2, 3), limit=6)
    data = tmp_path / "crops.npz"
    np.savez(data, context=context, body=body, facts=np.array([str(f) for f in facts]))
    out = train_shape(str(data), str(data), str(tmp_path / "abnormality_test.pt"), coarse_minutes=0.01,
                      refine_minutes=0.01, batch=2, log=lambda text: None)
    model = AbnormalityModel.load(str(out))
    predicted = model.predict(context[:2].astype(np.float32) / 255)
    assert predicted.shape == (2, *CROP_SHAPE)
    assert np.all((predicted >= 0) & (predicted <= 1))
    assert model.config["crop_shape"] == list(CROP_SHAPE)
