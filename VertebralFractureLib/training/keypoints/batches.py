"""Training batches: detector crops with eq. 2/3 targets, whole-column level inputs (Gartland et al. 2025)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Sequence, Tuple

import numpy as np

from ...keypoints.detector import level_input, normalise_intensity
from .sample import Sample
from .targets import (
    LABEL_LEVELS,
    detection_targets,
    gaussian_heatmaps,
    keypoint_centroids,
    labelled_channels,
    layer_weights,
)


@dataclass
class Augment:
    """Random intensity changes applied to normalised images (scanner variation)."""

    contrast: Tuple[float, float] = (0.75, 1.3)
    shift: float = 0.15
    noise: Tuple[float, float] = (0.0, 0.25)

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The augmented image."""
        out = image * rng.uniform(*self.contrast) + rng.normal(0, self.shift)
        return (out + rng.normal(0, rng.uniform(*self.noise), image.shape)).astype(np.float32)


#: Default augmentation.
AUGMENT = Augment()


def crop_sample(
    sample: Sample, rng: np.random.Generator, shape: Tuple[int, int]
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A random crop of a normalised sample, padded with its minimum where it is smaller.

    Returns:
        image (rows, cols), keypoints (m, 6, 2) of the vertebrae whose centre lies in the crop,
        the indices of those vertebrae, and the ignore points in crop pixels.

    """
    image = normalise_intensity(sample.image)
    rows, cols = shape
    top = int(rng.integers(-rows // 4, max(image.shape[0] - 3 * rows // 4, -rows // 4 + 1) + 1))
    left = int(rng.integers(min(0, image.shape[1] - cols), max(image.shape[1] - cols, 0) + 1))
    out = np.full(shape, float(image.min()), dtype=np.float32)
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(top + rows, image.shape[0]), min(left + cols, image.shape[1])
    if r1 > r0 and c1 > c0:
        out[r0 - top : r1 - top, c0 - left : c1 - left] = image[r0:r1, c0:c1]
    points = sample.keypoints - np.array([left, top], dtype=np.float64)
    centres = keypoint_centroids(points)
    inside_mask = (centres[:, 1] >= 0) & (centres[:, 1] < min(rows, r1 - top)) & (centres[:, 0] >= 0)
    inside = np.flatnonzero(inside_mask)
    # vertebrae cut by the crop edge (centre outside, part inside) are ignored, not negatives
    cut = ~inside_mask & (points[:, :, 1].max(axis=1) > 0) & (points[:, :, 1].min(axis=1) < rows)
    ignore = np.concatenate([sample.ignore - np.array([left, top], dtype=np.float64), centres[cut]])
    return out, points[inside], inside, ignore


def detector_batch(
    samples: Sequence[Sample],
    rng: np.random.Generator,
    batch: int,
    shape: Tuple[int, int],
    stride: int,
    shapes: np.ndarray,
    augment: Augment = AUGMENT,
    genant_power: float = 1.0,
) -> Dict[str, np.ndarray]:
    """Images (B, 1, H, W) and eq. 3 targets on the stride grid.

    ``genant_power`` k makes the keypoint weight of a vertebra 1 / G**k (eq. 3 of Pisov et al. 2020: k = 1); a
    larger k weighs fractured (small-G) bodies more.
    """
    grid = (shape[0] // stride, shape[1] // stride)
    images, objectness, encoded, weight, valid = [], [], [], [], []
    for _ in range(batch):
        sample = samples[int(rng.integers(len(samples)))]
        image, points, index, ignore = crop_sample(sample, rng, shape)
        targets = detection_targets(points, sample.genant[index] ** genant_power, grid, stride, shapes, ignore=ignore)
        images.append(augment(image, rng)[None])
        objectness.append(targets.objectness)
        encoded.append(targets.encoded)
        weight.append(targets.weight)
        valid.append(targets.valid)
    return {
        "valid": np.stack(valid),
        "image": np.stack(images),
        "objectness": np.stack(objectness),
        "encoded": np.stack(encoded),
        "weight": np.stack(weight),
    }


def level_batch(
    samples: Sequence[Sample],
    rng: np.random.Generator,
    batch: int,
    grid_shape: Tuple[int, int],
    cell_mm: float = 4.0,
    sigma_mm: float = 6.0,
    channels: Sequence[str] = LABEL_LEVELS,
    augment: Augment = AUGMENT,
    min_length_mm: float = 120.0,
) -> Dict[str, np.ndarray]:
    """Whole-column (randomly shortened: partial fields of view) level-net inputs and Gartland et al. 2025 targets.

    Returns:
        ``image`` (B, 1, Hg, Wg) at ``cell_mm``, ``heatmaps`` (B, C, Hg, Wg), ``layer_weight``
        (B, C) and ``mask`` (B, 1, Hg, Wg) of pixels inside the image.

    """
    factor = int(round(cell_mm))
    images, heatmaps, weights, masks = [], [], [], []
    for _ in range(batch):
        sample = samples[int(rng.integers(len(samples)))]
        full = normalise_intensity(sample.image)
        length = full.shape[0]
        limit = min(length, grid_shape[0] * factor)
        keep = int(rng.uniform(min(min_length_mm, limit), limit + 1))
        top = int(rng.integers(0, length - keep + 1))
        image = full[top : top + keep, : grid_shape[1] * factor]
        points = sample.keypoints - np.array([0.0, top])
        centres = keypoint_centroids(points)
        inside = (centres[:, 1] >= 0) & (centres[:, 1] < keep)
        levels = [name for name, flag in zip(sample.levels, inside) if flag]
        small = level_input(augment(image, rng), cell_mm)
        canvas = np.full(grid_shape, float(small.min()), dtype=np.float32)
        mask = np.zeros(grid_shape, dtype=np.float32)
        canvas[: small.shape[0], : small.shape[1]] = small
        mask[: small.shape[0], : small.shape[1]] = 1.0
        heat = gaussian_heatmaps(centres[inside], levels, grid_shape, cell_mm, sigma_mm, channels)
        heatmaps.append(heat)
        weights.append(layer_weights(labelled_channels(levels, channels), channels))
        images.append(canvas[None])
        masks.append(mask[None])
    return {
        "image": np.stack(images),
        "heatmaps": np.stack(heatmaps),
        "layer_weight": np.stack(weights),
        "mask": np.stack(masks),
    }
