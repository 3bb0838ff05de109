"""Small synthetic inputs shared by the voxel-map tests."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk


def line_centreline(length_mm: float = 60.0, step: float = 1.0) -> np.ndarray:
    """A straight vertical centre-line through (0, 0, z), z from +length/2 down to -length/2 (LPS)."""
    z = np.arange(length_mm / 2, -length_mm / 2 - 1e-9, -step)
    return np.stack([np.zeros_like(z), np.zeros_like(z), z], axis=1)


def phantom_ct(size=(40, 40, 40), spacing=(2.0, 2.0, 2.0), value=lambda x, y, z: 100.0 + 0 * x):
    """An identity-direction CT centred on the origin, HU = value(x, y, z) (LPS mm)."""
    spacing = np.asarray(spacing, float)
    origin = -0.5 * (np.asarray(size) - 1) * spacing
    k, j, i = np.meshgrid(*[np.arange(n) for n in size[::-1]], indexing="ij")
    x, y, z = (origin[0] + i * spacing[0], origin[1] + j * spacing[1], origin[2] + k * spacing[2])
    image = sitk.GetImageFromArray(np.asarray(value(x, y, z), np.float32))
    image.SetSpacing(spacing.tolist())
    image.SetOrigin(origin.tolist())
    return image


def tiny_model(seed: int = 0, variant: str = "3d"):
    """A real (untrained, seeded) dual-pathway network in eval mode."""
    import torch

    from VertebralFractureLib.voxelmap.network import DualPathwayCNN

    torch.manual_seed(seed)
    model = DualPathwayCNN(variant).eval()
    model.spacing, model.band_mm = 2.0, 12.0
    return model
