"""A small U-Net in 2D or 3D (Ronneberger et al. 2015; 3D as in Cicek et al. 2016).

Pisov et al. 2020 (section 3.1) uses a "3D UNet-like" network for the spine centre-line; the same block
serves 2D keypoint heads. Each level has two 3x3(x3) convolutions with instance normalisation
and leaky ReLU; down-sampling by max pooling, up-sampling by (tri)linear interpolation followed by
concatenation with the skip connection.
"""

from __future__ import annotations

from typing import Sequence, Union

import torch
from torch import nn


def _layers(dims: int):
    if dims == 3:
        return nn.Conv3d, nn.InstanceNorm3d, nn.MaxPool3d, "trilinear"
    if dims == 2:
        return nn.Conv2d, nn.InstanceNorm2d, nn.MaxPool2d, "bilinear"
    raise ValueError(f"dims must be 2 or 3, got {dims}")


class ConvBlock(nn.Module):
    """``convs`` x (conv 3 -> instance norm -> leaky ReLU)."""

    def __init__(self, in_channels: int, out_channels: int, dims: int = 3, convs: int = 2) -> None:
        super().__init__()
        conv, norm, _, _ = _layers(dims)
        layers = []
        for n in range(convs):
            layers += [
                conv(in_channels if n == 0 else out_channels, out_channels, 3, padding=1),
                norm(out_channels, affine=True),
                nn.LeakyReLU(0.1, inplace=True),
            ]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        return self.body(x)


class UNet(nn.Module):
    """U-Net with ``len(channels)`` levels; input sizes must be divisible by ``2 ** (levels - 1)``.

    Args:
        in_channels: input channels.
        out_channels: output channels (logits, no final activation).
        channels: feature channels per level, e.g. ``(8, 16, 32, 32)``.
        dims: 2 or 3.
        convs: convolutions per block, one value or one per level (the first level's blocks are the
            most expensive: one convolution there makes the network much cheaper).

    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        channels: Sequence[int] = (8, 16, 32),
        dims: int = 3,
        convs: Union[int, Sequence[int]] = 2,
    ):
        super().__init__()
        per_level = [int(convs)] * len(channels) if isinstance(convs, int) else [int(c) for c in convs]
        if len(per_level) != len(channels):
            raise ValueError(f"convs has {len(per_level)} values for {len(channels)} levels")
        _, _, pool, mode = _layers(dims)
        conv = nn.Conv3d if dims == 3 else nn.Conv2d
        self.dims = dims
        self.mode = mode
        self.channels = tuple(int(c) for c in channels)
        self.down = nn.ModuleList()
        previous = in_channels
        for c, n in zip(self.channels, per_level):
            self.down.append(ConvBlock(previous, c, dims, n))
            previous = c
        self.pool = pool(2)
        self.up = nn.ModuleList()
        for level in range(len(self.channels) - 2, -1, -1):
            c_skip, c_low = self.channels[level], self.channels[level + 1]
            self.up.append(ConvBlock(c_skip + c_low, c_skip, dims, per_level[level]))
        self.head = conv(self.channels[0], out_channels, 1)

    @property
    def divisor(self) -> int:
        """Input sizes must be multiples of this."""
        return 2 ** (len(self.channels) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape ``(B, out_channels, *spatial)``."""
        skips = []
        for i, block in enumerate(self.down):
            if i:
                x = self.pool(x)
            x = block(x)
            skips.append(x)
        x = skips.pop()
        for block in self.up:
            skip = skips.pop()
            x = nn.functional.interpolate(x, size=skip.shape[2:], mode=self.mode, align_corners=False)
            x = block(torch.cat([skip, x], dim=1))
        return self.head(x)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
