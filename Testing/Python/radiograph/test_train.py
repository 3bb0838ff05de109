"""Training of the Gartland et al. 2025 net (four losses side by side) and the radiograph detector, a few steps."""

import argparse
import json

import numpy as np
import pytest
import torch

from VertebralFractureLib.nn.weights import read_manifest
from VertebralFractureLib.radiograph.model import CentroidModel, default_config
from VertebralFractureLib.training.radiograph import train as centroid_train
from VertebralFractureLib.training.radiograph import train_keypoints
from VertebralFractureLib.training.radiograph.batches import centroid_batch

TINY = {"channels": [4, 8, 8], "convs": [1, 1, 1]}


def test_batch_holds_both_views_with_targets_on_labelled_channels(drawn):
    batch = centroid_batch([drawn()], np.random.default_rng(0), 2, default_config())
    assert batch["image"].shape == (4, 1, 264, 264) and batch["heatmaps"].shape == (4, 13, 66, 66)
    peaks = batch["heatmaps"].max(axis=(2, 3))
    assert np.array_equal(peaks > 0.5, batch["labelled"])  # sigma 1 px: a peak between pixels stays > 0.6
    assert not np.any(batch["labelled"][0] & batch["labelled"][1])  # a pair labels each level once


def test_four_losses_train_on_the_same_batches(drawn):
    torch.set_num_threads(1)
    models = centroid_train.train([drawn(0), drawn(1)], ("base", "l1", "l2", "l3"), steps=2, pairs=1, config=TINY)
    assert set(models) == {"base", "l1", "l2", "l3"}
    weights = [next(iter(m.net.parameters())).detach().clone() for m in models.values()]
    assert not torch.equal(weights[0], weights[2])  # different losses, different updates
    assert models["l3"].config["loss"] == "l3" and models["l3"].config["trained_steps"] == 2


def test_train_main_writes_registered_weights_that_load(tmp_path, drawn, monkeypatch):
    columns = tmp_path / "columns"
    drawn(0).save(columns / "column_0000000.npz")
    drawn(1).save(columns / "column_0000001.npz")
    parser = centroid_train.add_train_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["--columns", str(columns), "--loss", "l2", "--steps", "1", "--pairs", "1",
                              "--out-dir", str(tmp_path / "out"), "--register"])
    monkeypatch.setattr(centroid_train, "train", lambda *a, **k: {
        "l2": CentroidModel.create({**TINY, "loss": "l2"})})
    assert centroid_train.train_main(args) == 0
    path = tmp_path / "out" / "radiograph_centroids_l2.pt"
    assert read_manifest(path.parent)[path.name]["model"] == "radiograph-centroids"
    loaded = CentroidModel.load(path)
    assert loaded.config["channels"] == TINY["channels"] and len(loaded.sha256) == 64
    assert json.loads((path.parent / "radiograph_centroids_train.json").read_text())["columns"] == 2
    with pytest.raises(FileExistsError, match="radiograph_centroids_l2.pt exist; pass --overwrite"):
        centroid_train.train_main(args)


def _train_detector(tmp_path, drawn, *extra: str):
    """One training step of the radiograph detector on four drawn columns; returns the weights' path."""
    columns = tmp_path / "columns"
    for seed in range(4):
        drawn(seed).save(columns / f"column_{seed:07d}.npz")
    parser = train_keypoints.add_train_arguments(argparse.ArgumentParser())
    out = tmp_path / "kp" / "radiograph_keypoints.pt"
    args = parser.parse_args(["--columns", str(columns), "--steps", "1", "--batch", "2", "--val-columns", "1",
                              *extra, "--out", str(out)])
    assert train_keypoints.train_main(args) == 0
    return out


def test_radiograph_detector_training_uses_the_keypoint_package(tmp_path, drawn):
    out = _train_detector(tmp_path, drawn)
    from VertebralFractureLib.keypoints.model import load_model

    model = load_model(out)
    assert model.config["domain"] == "radiograph" and model.config["spacing_mm"] == 2.0
    summary = json.loads((out.parent / "radiograph_keypoints_train.json").read_text())
    assert summary["columns"] == 4 and summary["val_samples"] == 1 and summary["train_samples"] == 6


def test_radiograph_detector_training_adds_columns_with_a_clinical_look(tmp_path, drawn):
    out = _train_detector(tmp_path, drawn, "--looks", "2")
    summary = json.loads((out.parent / "radiograph_keypoints_train.json").read_text())
    assert summary["train_samples"] == 6 * 3  # three training columns: as given and two looks, whole and band


def test_column_in_air_keeps_its_pixels_under_its_keypoints(drawn):
    column = drawn(0)
    rows, cols = column.image.shape
    padded = train_keypoints.in_air(column, 0.6, np.random.default_rng(3))
    # the padding is the stated share of the new picture (rounding aside) and is air (0)
    assert abs(1.0 - rows * cols / padded.image.size - 0.6) < 0.02
    shift = (padded.keypoints - column.keypoints)[0, 0]
    left, top = int(round(shift[0])), int(round(shift[1]))
    assert np.allclose(padded.keypoints - column.keypoints, shift) and np.allclose(padded.centroids - column.centroids,
                                                                                   shift)
    assert np.array_equal(padded.image[top:top + rows, left:left + cols], column.image)
    assert padded.image.sum() == pytest.approx(float(column.image.sum()), rel=1e-5)  # nothing but air added
    # mostly in front and behind: the picture grows more in width than in height
    assert padded.image.shape[1] / cols > padded.image.shape[0] / rows > 1.0


def test_radiograph_detector_training_adds_columns_in_air(tmp_path, drawn):
    out = _train_detector(tmp_path, drawn, "--air", "2")
    summary = json.loads((out.parent / "radiograph_keypoints_train.json").read_text())
    assert summary["air"] == 2
    assert summary["train_samples"] == 6 + 3 * 2  # whole and band of three columns, and two padded copies each
