import math

import numpy as np
import torch

from VertebralFractureLib.training.keypoints.losses import detection_loss, tailored_heatmap_loss


def test_eq3_on_hand_made_values():
    logits = torch.zeros(1, 2, 1, 2)  # o_hat = 0.5 everywhere
    objectness = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]])
    encoded = torch.zeros(1, 2, 1, 2, 12)
    target = torch.zeros(1, 2, 1, 2, 12)
    target[0, 0, 0, 0] = 0.6  # MAE 0.6, G = 0.5 -> weight 2
    target[0, 1, 0, 1] = -0.3  # MAE 0.3, G = 1 -> weight 1
    weight = torch.tensor([[[[2.0, 0.0]], [[0.0, 1.0]]]])
    out = detection_loss(logits, encoded, objectness, target, weight)
    assert math.isclose(out["bce"].item(), math.log(2), rel_tol=1e-6)
    # (2 * 0.6 + 1 * 0.3) / 2 positives
    assert math.isclose(out["mae"].item(), 0.75, rel_tol=1e-6)
    assert math.isclose(out["loss"].item(), math.log(2) + 0.75, rel_tol=1e-6)


def test_eq3_ignores_keypoints_at_negatives_and_handles_no_positive():
    logits = torch.full((1, 1, 2, 2), -20.0)
    encoded = torch.ones(1, 1, 2, 2, 12) * 5
    out = detection_loss(logits, encoded, torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2, 12), torch.zeros(1, 1, 2, 2))
    assert out["mae"].item() == 0.0 and out["bce"].item() < 1e-8


def test_eq3_gradient_reaches_both_heads():
    logits = torch.zeros(1, 1, 1, 1, requires_grad=True)
    encoded = torch.zeros(1, 1, 1, 1, 12, requires_grad=True)
    out = detection_loss(logits, encoded, torch.ones(1, 1, 1, 1), torch.ones(1, 1, 1, 1, 12), torch.ones(1, 1, 1, 1))
    out["loss"].backward()
    assert logits.grad.item() < 0 and torch.all(encoded.grad < 0)


def test_004_l2_weights_by_hand():
    # 3 layers of 2 pixels: layer 0 labelled (pixels 1.0 and 0.2), layer 1 empty next to it (weight 0),
    # layer 2 empty far away (weight 5)
    target = torch.tensor([[[[1.0, 0.2]], [[0.0, 0.0]], [[0.0, 0.0]]]])
    predicted = torch.tensor([[[[0.5, 0.0]], [[0.9, 0.9]], [[0.1, 0.2]]]])
    layer_weight = torch.tensor([[1.0, 0.0, 5.0]])
    loss = tailored_heatmap_loss(predicted, target, layer_weight)
    expected = (10 * 0.25 + 1 * 0.04 + 0 + 0 + 5 * 0.01 + 5 * 0.04) / 6
    assert math.isclose(loss.item(), expected, rel_tol=1e-6)
    mask = torch.tensor([[[[1.0, 0.0]]]])
    masked = tailored_heatmap_loss(predicted, target, layer_weight, mask)
    assert math.isclose(masked.item(), (10 * 0.25 + 0 + 5 * 0.01) / 3, rel_tol=1e-6)


def test_hotspot_weight_applies_even_in_zero_weight_layer():
    target = torch.tensor([[[[0.6]]]])
    predicted = torch.zeros(1, 1, 1, 1)
    assert math.isclose(tailored_heatmap_loss(predicted, target, torch.zeros(1, 1)).item(), 10 * 0.36, rel_tol=1e-6)
    np.testing.assert_allclose(0, 0)
