"""Helpers of the hardening tests: small CT-like images."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk


def ct_like(shape=(16, 32, 32), seed: int = 0) -> np.ndarray:
    """A small int16 volume with air (-1000), soft tissue and bone (1200) values: passes the CT checks."""
    rng = np.random.default_rng(seed)
    array = rng.normal(40, 30, shape).astype(np.int16)
    array[:, :4] = -1000
    array[shape[0] // 2, shape[1] // 2, shape[2] // 2] = 1200
    return array


def image(array: np.ndarray, spacing=(1.0, 1.0, 1.0)) -> sitk.Image:
    """A SimpleITK image of ``array[k, j, i]`` with the given spacing."""
    result = sitk.GetImageFromArray(array)
    result.SetSpacing(tuple(spacing)[: result.GetDimension()])
    return result


def oblique(source: sitk.Image, angles) -> sitk.Image:
    """``source`` resampled (linearly) onto a grid rotated by Euler ``angles`` (rad), covering all of it."""
    transform = sitk.Euler3DTransform()
    transform.SetRotation(*angles)
    rotation = np.asarray(transform.GetMatrix()).reshape(3, 3)
    size, spacing = np.array(source.GetSize()), np.array(source.GetSpacing())
    corners = np.array([source.TransformIndexToPhysicalPoint([int(c) for c in np.array(b) * (size - 1)])
                        for b in np.ndindex(2, 2, 2)])
    local = corners @ rotation  # coordinates along the new grid's axes
    low, high = local.min(axis=0), local.max(axis=0)
    reference = sitk.Image([int(s) for s in np.ceil((high - low) / spacing).astype(int) + 1], source.GetPixelID())
    reference.SetSpacing(spacing.tolist())
    reference.SetDirection(rotation.flatten().tolist())
    reference.SetOrigin((rotation @ low).tolist())
    return sitk.Resample(source, reference, sitk.Transform(), sitk.sitkLinear, -1024.0)


def keypoint_weights_missing() -> bool:
    """Whether the shipped keypoint detector is absent (the end-to-end tests then skip)."""
    from VertebralFractureLib.nn.weights import WEIGHTS_DIR, read_manifest

    return not (WEIGHTS_DIR / "keypoints.pt").exists() or "keypoints.pt" not in read_manifest()


