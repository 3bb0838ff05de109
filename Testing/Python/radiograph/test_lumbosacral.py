"""The lumbosacral classifier's patch (what lies below a body, on the body's own axes) and its shipped network."""

from __future__ import annotations

import numpy as np
import pytest

from VertebralFractureLib.radiograph.lumbosacral import (
    ABOVE_DEPTHS,
    ANTERIOR_DEPTHS,
    BELOW_DEPTHS,
    POSTERIOR_DEPTHS,
    cut_patch,
    l5_probabilities,
    load_model,
)


def _body(centre, depth=40.0, height=30.0, degrees=0.0):
    """Six keypoints [column, row] of an upright body (anterior at smaller columns), turned by ``degrees``."""
    u = np.array([-depth / 2, -depth / 2, 0.0, 0.0, depth / 2, depth / 2])
    t = np.array([-height / 2, height / 2] * 3)
    angle = np.radians(degrees)
    across, down = np.array([np.cos(angle), np.sin(angle)]), np.array([-np.sin(angle), np.cos(angle)])
    return np.asarray(centre, float) + u[:, None] * across + t[:, None] * down


def _picture_with_spot(centre, spot, shape=(400, 400)):
    image = np.zeros(shape, np.float32)
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    image[(rows - spot[1]) ** 2 + (cols - spot[0]) ** 2 <= 36] = 1.0
    return image


@pytest.mark.parametrize("degrees", [0.0, 20.0])
def test_patch_shows_what_lies_two_depths_below_the_body(degrees):
    keypoints = _body((200, 120), degrees=degrees)
    angle = np.radians(degrees)
    down = np.array([-np.sin(angle), np.cos(angle)])
    spot = np.array([200.0, 120.0]) + 2.0 * 40.0 * down
    patch = cut_patch(_picture_with_spot((200, 120), spot), keypoints)
    weights = np.clip(patch - np.median(patch), 0, None)
    rows, cols = np.mgrid[: patch.shape[0], : patch.shape[1]]
    row, col = (rows * weights).sum() / weights.sum(), (cols * weights).sum() / weights.sum()
    size = patch.shape[0]
    assert row == pytest.approx((size - 1) * (ABOVE_DEPTHS + 2.0) / (ABOVE_DEPTHS + BELOW_DEPTHS), abs=1.0)
    assert col == pytest.approx((size - 1) * ANTERIOR_DEPTHS / (ANTERIOR_DEPTHS + POSTERIOR_DEPTHS), abs=1.0)


def test_a_view_facing_right_gives_the_same_patch():
    keypoints = _body((180, 120), degrees=10.0)
    spot = np.array([215.0, 210.0])
    image = _picture_with_spot((180, 120), spot)
    mirrored = image[:, ::-1]
    mirrored_keypoints = keypoints.copy()
    mirrored_keypoints[:, 0] = image.shape[1] - 1 - keypoints[:, 0]
    assert np.allclose(cut_patch(image, keypoints), cut_patch(mirrored, mirrored_keypoints), atol=1e-4)


def test_shipped_network_tells_l5_over_the_sacrum_from_a_body_with_two_more_below():
    """A drawn column: four bodies on discs, the sacrum turning back below the last; only the last is L5."""
    image = np.full((420, 300), 0.25, np.float32)
    rows, cols = np.mgrid[:420, :300]
    centres = [(120, 60 + 52 * k) for k in range(4)]
    for cx, cy in centres:
        inside = (np.abs(cols - cx) <= 20) & (np.abs(rows - cy) <= 17)
        image[inside] = 0.55
        image[inside & ((np.abs(cols - cx) >= 18) | (np.abs(rows - cy) >= 15))] = 0.9
    # the sacrum below the last disc: a bony band turning posteriorly (to larger columns) and narrowing
    for step in range(60):
        t = step / 59.0
        cx, cy = 125 + 70 * t ** 1.3, 60 + 52 * 3 + 30 + 110 * t
        half = 20 - 12 * t
        image[(np.abs(cols - cx) <= half) & (np.abs(rows - cy) <= 2)] = 0.55
    keypoints = [_body(c, depth=40.0, height=34.0) for c in centres]
    scores = l5_probabilities(image, keypoints, load_model())
    assert int(np.argmax(scores)) == 3
    assert scores[0] < 0.5 and scores[1] < 0.5
