"""Training data and command of the lumbosacral classifier (training/radiograph/train_lumbosacral.py)."""

from __future__ import annotations

import numpy as np

from VertebralFractureLib.radiograph.fracture import body_axes
from VertebralFractureLib.radiograph.lumbosacral import l5_probabilities, load_model
from VertebralFractureLib.training.radiograph import train_lumbosacral as T


def _body(top, left=100.0, height=24.0, depth=34.0):
    return np.array([[left, top], [left, top + height], [left + depth / 2, top], [left + depth / 2, top + height],
                     [left + depth, top], [left + depth, top + height]])


def test_candidates_label_l5_only_and_keep_the_off_body_boxes_off_every_body():
    levels = ["L3", "L4", "L5"]
    keypoints = [_body(20.0 + 32.0 * k) for k in range(3)]
    s1 = _body(20.0 + 32.0 * 3, left=110.0)
    items = T.candidates(levels, keypoints, s1, np.random.default_rng(0))
    labels = [label for _, label in items]
    assert labels.count(1) == 1 and labels[2] == 1
    assert len(items) == 3 + 2 + T.OFF_BODY_BOXES
    centre, _, _, depth = body_axes(keypoints[2])
    s1_centre = s1.mean(axis=0)
    for points, label in items[5:]:
        assert label == 0
        moved = points.mean(axis=0)
        assert min(np.linalg.norm(moved - centre), np.linalg.norm(moved - s1_centre)) >= T.OFF_BODY_DEPTHS * depth
    # without S1's keypoints (a spine cut above the sacrum) only the true bodies are candidates
    assert len(T.candidates(levels, keypoints, None, np.random.default_rng(0))) == 3


def test_each_generated_picture_has_one_l5_and_the_command_writes_loadable_weights(tmp_path):
    patches, labels, pictures = T.seed_patches((300007, 0))
    assert patches.shape[1:] == (64, 64) and len(patches) == len(labels) == len(pictures)
    assert sorted(np.unique(pictures)) == list(range(T.SLICES + 2))  # the slices and the film's two looks
    for number in np.unique(pictures):
        assert labels[pictures == number].sum() == 1
    out = tmp_path / "l5.pt"
    assert T.main(["--first-seed", "300007", "--count", "1", "--members", "1", "--steps", "4", "--held-out", "0",
                   "--threads", "1", "--no-real", "--out", str(out)]) == 0
    model = load_model(out)
    scores = l5_probabilities(np.random.default_rng(1).random((200, 200)).astype(np.float32),
                              [_body(40.0), _body(72.0)], model)
    assert scores.shape == (2,) and np.all((scores >= 0) & (scores <= 1))
