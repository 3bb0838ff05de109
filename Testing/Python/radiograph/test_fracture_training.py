"""Fracture-rich training of the radiograph detector: column generation overrides, 1 / G**k weights, several folders."""

import argparse
import json

import numpy as np

from VertebralFractureLib.keypoints.anchors import anchor_shapes
from VertebralFractureLib.training.keypoints.batches import detector_batch
from VertebralFractureLib.training.radiograph import columns as columns_module
from VertebralFractureLib.training.radiograph import train_keypoints
from VertebralFractureLib.training.radiograph.keypoint_data import samples_from_column


def test_column_cli_passes_fracture_settings_and_skips_a_failing_seed(tmp_path, drawn, monkeypatch):
    calls = []

    def fake(seed, **overrides):
        calls.append((seed, overrides))
        if seed == 11:
            raise ValueError("cannot convert float NaN to integer")
        return drawn(seed)

    monkeypatch.setattr(columns_module, "generate_column", fake)
    assert columns_module.main([str(tmp_path), "10", "3", "--fracture-prevalence", "0.5",
                                "--grade-weights", "0.2", "0.4", "0.4"]) == 0
    assert [seed for seed, _ in calls] == [10, 11, 12]
    assert calls[0][1] == {"fracture_prevalence": 0.5, "grade_weights": (0.2, 0.4, 0.4)}
    assert [c.seed for c in columns_module.load_columns(tmp_path)] == [10, 12]  # 11 left out, not fatal


def test_genant_power_raises_the_keypoint_weight_of_flat_bodies(drawn):
    column = drawn(0)
    column.keypoints[5, [2, 3], 1] = column.keypoints[5, [0, 1], 1].mean()  # biconcave: middle height 0
    column.keypoints[5, 2, 1] -= 6.0
    column.keypoints[5, 3, 1] += 2.0
    sample = samples_from_column(column, band=False, pixel_mm=2.0)[0]
    shapes = anchor_shapes(spacing_mm=2.0)
    batches = [detector_batch([sample], np.random.default_rng(3), 4, (96, 48), 4, shapes, genant_power=k)
               for k in (1.0, 2.0)]
    assert np.array_equal(batches[0]["objectness"], batches[1]["objectness"])
    positive = batches[0]["objectness"] > 0
    assert np.allclose(batches[1]["weight"][positive], batches[0]["weight"][positive] ** 2, rtol=1e-5)
    assert batches[0]["weight"][positive].max() > 1.2  # the flattened body weighs more than 1 / G ~ 1


def test_detector_training_reads_several_column_folders(tmp_path, drawn):
    first, second = tmp_path / "normal", tmp_path / "fractured"
    for seed in range(3):
        drawn(seed).save(columns_module.column_path(first, seed))
    drawn(7).save(columns_module.column_path(second, 7))
    parser = train_keypoints.add_train_arguments(argparse.ArgumentParser())
    out = tmp_path / "kp" / "radiograph_keypoints.pt"
    args = parser.parse_args(["--columns", str(first), str(second), "--steps", "1", "--batch", "2",
                              "--val-columns", "1", "--genant-power", "2", "--out", str(out)])
    assert train_keypoints.train_main(args) == 0
    summary = json.loads((out.parent / "radiograph_keypoints_train.json").read_text())
    assert summary["columns"] == 4 and summary["val_samples"] == 1 and summary["train_samples"] == 6
    assert summary["genant_power"] == 2.0


def test_trainable_keypoint_head_leaves_objectness_and_threshold_alone(tmp_path, drawn):
    import torch

    from VertebralFractureLib.keypoints.model import load_model

    torch.set_num_threads(1)
    folder = tmp_path / "columns"
    for seed in range(3):
        drawn(seed).save(columns_module.column_path(folder, seed))
    parser = train_keypoints.add_train_arguments(argparse.ArgumentParser())
    init = tmp_path / "init" / "radiograph_keypoints.pt"
    assert train_keypoints.train_main(parser.parse_args(
        ["--columns", str(folder), "--steps", "1", "--batch", "2", "--val-columns", "1", "--out", str(init)])) == 0
    before = load_model(init)
    before.config["score_threshold"] = 0.65
    before.save(init, overwrite=True)
    out = tmp_path / "head" / "radiograph_keypoints.pt"
    assert train_keypoints.train_main(parser.parse_args(
        ["--columns", str(folder), "--steps", "3", "--batch", "2", "--val-columns", "1", "--init", str(init),
         "--trainable", "keypoints", "--out", str(out)])) == 0
    after = load_model(out)
    assert after.config["score_threshold"] == 0.65
    old, new = before.rpn.state_dict(), after.rpn.state_dict()
    changed = {k for k in old if not torch.equal(old[k], new[k])}
    assert changed and all(k.startswith("keypoints.") for k in changed)  # batch-norm statistics included
    levels = zip(before.levels.state_dict().values(), after.levels.state_dict().values())
    assert all(torch.equal(a, b) for a, b in levels)
    assert json.loads((out.parent / "radiograph_keypoints_train.json").read_text())["trainable"] == ["keypoints"]
