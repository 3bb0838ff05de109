"""A clinical radiograph's look on generated views (training/radiograph/appearance.py), in training and evaluation."""

import argparse
from pathlib import Path

import numpy as np

from VertebralFractureLib.radiograph.model import default_config
from VertebralFractureLib.training.radiograph import evaluate
from VertebralFractureLib.training.radiograph.appearance import clinical_appearance
from VertebralFractureLib.training.radiograph.batches import view_sample
from VertebralFractureLib.training.radiograph.views import evaluation_views

REFERENCE = Path(__file__).resolve().parents[2] / "Data" / "real" / "reference" / "covid_sagittal.json"


def test_the_look_is_reproducible_keeps_the_geometry_and_changes_the_picture(drawn):
    image = drawn().image
    a = clinical_appearance(image, 1.0, seed=3)
    assert a.shape == image.shape and a.dtype == np.float32 and a.min() >= 0.0 and a.max() <= 1.0
    assert np.array_equal(a, clinical_appearance(image, 1.0, seed=3))
    assert not np.array_equal(a, clinical_appearance(image, 1.0, seed=4))
    # the bodies stay where they were: a body is still brighter than the soft tissue beside it
    looks = [clinical_appearance(image, 1.0, seed=s) for s in range(12)]
    body, beside = (slice(150, 165), slice(115, 130)), (slice(150, 165), slice(40, 60))
    assert sum(float(x[body].mean()) > float(x[beside].mean()) for x in looks) >= 11
    # the steps that only some views get: bright bands (collimation, text) and 8-bit JPEG levels
    assert any(np.isclose(x, 1.0).mean() > 0.02 for x in looks)
    assert any(len(np.unique(x)) <= 256 for x in looks)


def test_training_views_get_the_look_only_when_asked(drawn):
    view = evaluation_views([drawn()])[0]
    plain = view_sample(view, default_config(), np.random.default_rng(0))["image"]
    clinical = view_sample(view, {**default_config(), "appearance": "clinical"}, np.random.default_rng(0))["image"]
    assert plain.shape == clinical.shape and not np.allclose(plain, clinical)


def test_clinical_held_out_views_are_fixed_per_view(drawn):
    views = evaluation_views([drawn(0), drawn(1)])
    once, twice = evaluate.clinical_views(views), evaluate.clinical_views(views)
    assert all(np.array_equal(a.image, b.image) for a, b in zip(once, twice))
    assert all(a.keypoints is b.keypoints for a, b in zip(once, views))


def test_real_slices_are_scored_like_generated_views():
    views = evaluate.real_views(REFERENCE)
    assert len(views) == 8  # the slices whose levels were counted from the sacrum with certainty
    assert all(v.labels(("L1", "L2"))["L1"].shape == (2,) for v in views if "L1" in v.centroids)

    class Perfect:  # a model that returns the annotated centroids scores 100 %
        config = {**default_config()}
        levels = tuple(default_config()["levels"])

    import VertebralFractureLib.radiograph.locate as locate

    original = locate.predict_centroids
    try:
        locate.predict_centroids = lambda image, model, pixel_mm: {
            k: (*c, 1.0) for k, c in next(v for v in views if v.image is image).centroids.items()}
        rows = evaluate.score_views(Perfect(), views)
    finally:
        locate.predict_centroids = original
    assert rows["labelled"]["accuracy_pct"] == 100.0 and rows["labelled"]["n"] > 60


def test_evaluate_cli_takes_the_new_options():
    args = evaluate.add_evaluate_arguments(argparse.ArgumentParser()).parse_args(
        ["--appearance", "clinical", "--real", str(REFERENCE)])
    assert args.appearance == "clinical" and args.real == str(REFERENCE)
