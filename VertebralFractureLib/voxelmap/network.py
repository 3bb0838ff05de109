"""The 11-layer dual-pathway voxel classifier of Nicolaes et al. 2019 §3.2 (DeepMedic, Kamnitsas et al. 2017).

Two pathways of eight valid 3x3x3 convolutions each see the same location: the *normal* pathway at
full resolution (receptive field 17^3 voxels) and the *subsampled* pathway on the image averaged
over 3x3x3 blocks (receptive field 17^3 coarse voxels = 51^3 voxels). The subsampled features are
up-sampled by 3 (nearest) and concatenated with the normal ones; two 1x1x1 "fully connected" layers
and a 1x1x1 classification layer give the logits of {background, normal, fracture} per voxel:
8 + 2 + 1 = 11 layers, about 230 k parameters.

The three variants of Nicolaes et al. 2019, Table 1 differ only in their kernels (array order ``[k, j, i]`` = (S, A-P,
L-R) on the band grid, so the sagittal plane is (k, j)):

- ``3d``: every kernel 3x3x3;
- ``5slices``: CONV-1 takes 5 slices along L-R (3x3x5), CONV-2 to 8 are sagittal 3x3x1;
- ``1slice``: every kernel sagittal 3x3x1.

Channel widths are scaled so that all three have about the same number of parameters (Nicolaes et al. 2019, Table 1:
"calibrated to contain the same amount of network parameters").

The network works "valid": an input of ``n + 2 * MARGIN`` voxels per axis gives ``n`` output
voxels (``n`` a multiple of 3), so tiles can be stitched without seams.
"""

from __future__ import annotations

import math
from typing import Dict, Sequence, Tuple

import torch
from torch import nn

from .network_constants import CLASSES, FACTOR, MARGIN, VARIANTS

#: Base channel widths of the eight convolution layers of each pathway (3D variant).
BASE_CHANNELS = (16, 16, 24, 24, 24, 24, 32, 32)
#: Width of the two fully connected (1x1x1) layers.
BASE_FC = 64


def kernels(variant: str) -> Tuple[Tuple[int, int, int], ...]:
    """The eight kernel shapes (k, j, i) of one pathway for a variant of Nicolaes et al. 2019, Table 1."""
    if variant == "3d":
        return ((3, 3, 3),) * 8
    if variant == "5slices":
        return ((3, 3, 5),) + ((3, 3, 1),) * 7
    if variant == "1slice":
        return ((3, 3, 1),) * 8
    raise ValueError(f"unknown voxel-map variant {variant!r}; choose one of {VARIANTS}")


def _conv_parameters(channels: Sequence[int], kernel_list, in_channels: int = 1) -> int:
    total, previous = 0, in_channels
    for c, k in zip(channels, kernel_list):
        total += previous * c * math.prod(k) + 3 * c  # weights, bias, batch-norm (2) + PReLU
        previous = c
    return total


def calibrated_width(variant: str) -> float:
    """Channel multiplier giving ``variant`` about the parameter count of the 3D network."""
    target = _conv_parameters(BASE_CHANNELS, kernels("3d"))
    low, high = 0.5, 4.0
    for _ in range(40):
        mid = 0.5 * (low + high)
        channels = [max(1, round(c * mid)) for c in BASE_CHANNELS]
        if _conv_parameters(channels, kernels(variant)) < target:
            low = mid
        else:
            high = mid
    return round(0.5 * (low + high), 3)


class _Pathway(nn.Module):
    def __init__(self, channels: Sequence[int], kernel_list) -> None:
        super().__init__()
        layers = []
        previous = 1
        for c, k in zip(channels, kernel_list):
            layers += [nn.Conv3d(previous, c, k), nn.BatchNorm3d(c), nn.PReLU(c)]
            previous = c
        self.body = nn.Sequential(*layers)
        self.shrink = tuple(sum(k[a] - 1 for k in kernel_list) for a in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _centre_crop(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    slices = [slice(None), slice(None)]
    for axis, n in enumerate(size):
        start = (x.shape[2 + axis] - n) // 2
        slices.append(slice(start, start + n))
    return x[tuple(slices)]


class DualPathwayCNN(nn.Module):
    """Nicolaes et al. 2019, §3.2 voxel classifier: logits ``(B, 3, n, n, n)`` from an input ``(B, 1, n + 48, ...)``.

    Args:
        variant: ``"3d"``, ``"5slices"`` or ``"1slice"`` (Nicolaes et al. 2019, Table 1).
        width: channel multiplier; ``None`` calibrates it to the 3D parameter count.
        fc: width of the two 1x1x1 fully connected layers.

    """

    def __init__(self, variant: str = "3d", width: float | None = None, fc: int = BASE_FC) -> None:
        super().__init__()
        kernel_list = kernels(variant)
        self.variant = variant
        if width is None:
            width = 1.0 if variant == "3d" else calibrated_width(variant)
        self.width = float(width)
        channels = [max(1, round(c * self.width)) for c in BASE_CHANNELS]
        self.normal = _Pathway(channels, kernel_list)
        self.subsampled = _Pathway(channels, kernel_list)
        self.head = nn.Sequential(
            nn.Conv3d(2 * channels[-1], fc, 1), nn.BatchNorm3d(fc), nn.PReLU(fc),
            nn.Conv3d(fc, fc, 1), nn.BatchNorm3d(fc), nn.PReLU(fc),
            nn.Conv3d(fc, len(CLASSES), 1),
        )
        self.fc = fc

    @property
    def config(self) -> Dict[str, object]:
        """Constructor arguments (stored with the weights)."""
        return {"variant": self.variant, "width": self.width, "fc": self.fc}

    def receptive_field(self) -> Dict[str, Tuple[int, int, int]]:
        """Receptive field (voxels, per axis k, j, i) of the normal and subsampled pathways."""
        normal = tuple(s + 1 for s in self.normal.shrink)
        return {"normal": normal, "subsampled": tuple(FACTOR * (s + 1) for s in self.subsampled.shrink)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for the centre ``n = size - 2 * MARGIN`` voxels of each axis (``n`` multiple of 3)."""
        out = [s - 2 * MARGIN for s in x.shape[2:]]
        if any(n <= 0 or n % FACTOR for n in out):
            raise ValueError(f"input spatial size {tuple(x.shape[2:])} must be 2*{MARGIN} + a positive multiple of 3")
        normal = self.normal(_centre_crop(x, [n + s for n, s in zip(out, self.normal.shrink)]))
        coarse_out = [n // FACTOR for n in out]
        coarse_in = [FACTOR * (n + s) for n, s in zip(coarse_out, self.subsampled.shrink)]
        coarse = nn.functional.avg_pool3d(_centre_crop(x, coarse_in), FACTOR)
        coarse = self.subsampled(coarse)
        coarse = coarse.repeat_interleave(FACTOR, 2).repeat_interleave(FACTOR, 3).repeat_interleave(FACTOR, 4)
        return self.head(torch.cat([normal, coarse], dim=1))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
