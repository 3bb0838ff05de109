"""The four Gartland et al. 2025, appendix B losses on hand-made heatmaps: exact values."""

import numpy as np
import pytest
import torch

from VertebralFractureLib.training.keypoints.losses import tailored_heatmap_loss
from VertebralFractureLib.training.radiograph.losses import heatmap_loss, layer_classes
from VertebralFractureLib.training.radiograph.views import CENTROID_LEVELS


def _stack():
    target = torch.zeros(1, 13, 4, 4)
    target[0, 2, 1, 1] = 1.0  # T6 labelled, one hot pixel
    target[0, 3, 2, 2] = 0.4  # T7 labelled, tail only
    labelled = np.zeros((1, 13), dtype=bool)
    labelled[0, [2, 3]] = True
    predicted = torch.full((1, 13, 4, 4), 0.1)
    return predicted, target, torch.from_numpy(layer_classes(labelled, CENTROID_LEVELS))


def test_layer_classes_follow_l2():
    _, _, weights = _stack()
    w = weights[0].tolist()
    assert w[2] == w[3] == 1.0  # labelled
    assert w[1] == w[4] == 0.0  # next to a labelled layer: visible but unlabelled, no penalty
    assert w[0] == w[5] == w[12] == 5.0  # level not in view


def test_base_is_mse_and_l1_weights_hotspots_by_ten():
    predicted, target, _ = _stack()
    error = (predicted - target) ** 2
    assert heatmap_loss("base", predicted, target).item() == pytest.approx(error.mean().item())
    expected = (error.sum() + 9 * error[0, 2, 1, 1]) / error.numel()
    assert heatmap_loss("l1", predicted, target).item() == pytest.approx(expected.item())


def test_l2_matches_the_keypoint_package_and_the_formula():
    predicted, target, weights = _stack()
    value = heatmap_loss("l2", predicted, target, weights).item()
    assert value == pytest.approx(tailored_heatmap_loss(predicted, target, weights).item())
    error = ((predicted - target) ** 2)[0]
    by_hand = 10 * error[2, 1, 1] + (error[2].sum() - error[2, 1, 1]) + error[3].sum() + 5 * 0.01 * 16 * 9
    assert value == pytest.approx((by_hand / error.numel()).item())


def test_l3_puts_the_hotspot_weight_in_every_layer():
    predicted, target, weights = _stack()
    l2 = heatmap_loss("l2", predicted, target, weights).item()
    l3 = heatmap_loss("l3", predicted, target, weights).item()
    # pixel (1, 1): layers with weight 1 -> 10 (11 layers not T6 ... of which 2 weigh 0, 9 weigh 5, 1 weighs 1)
    n = 13 * 16
    delta = 0.01 * ((10 - 0) * 2 + (10 - 5) * 9 + (10 - 1) * 1) / n
    assert l3 - l2 == pytest.approx(delta, rel=1e-5)


def test_unlabelled_neighbour_layer_gets_no_gradient_under_l2():
    predicted, target, weights = _stack()
    predicted.requires_grad_(True)
    heatmap_loss("l2", predicted, target, weights).backward()
    assert torch.all(predicted.grad[0, 4] == 0) and torch.all(predicted.grad[0, 5] > 0)


def test_unknown_loss_and_missing_weights_are_refused():
    predicted, target, _ = _stack()
    with pytest.raises(ValueError, match="unknown loss"):
        heatmap_loss("l9", predicted, target)
    with pytest.raises(ValueError, match="per-layer"):
        heatmap_loss("l2", predicted, target)
