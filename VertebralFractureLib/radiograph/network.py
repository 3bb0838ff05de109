"""The U-Net of Gartland et al. 2025 for CPU: a lossless space-to-depth stem around :class:`..nn.unet.UNet`.

The 264 x 264 input is rearranged into ``factor**2`` channels at ``264 / factor`` pixels
(``pixel_unshuffle``: no information is lost) and the U-Net runs there. Its 13 heatmaps come out
either at that resolution (``upsample=False``, 66 x 66 for the default factor 4; the targets and
the Gartland et al. 2025 losses are then computed there too) or upsampled bilinearly back to the input size.
Measured on the project's shared CPU, the 264 x 264 loss and upsampling cost more than the network
itself, so the shipped models use ``upsample=False``; ``factor`` 1 is the plain U-Net.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..nn.unet import UNet


class HeatmapUNet(nn.Module):
    """U-Net from a (B, 1, H, W) image to (B, C, H, W) heatmaps (or (B, C, H / factor, W / factor))."""

    def __init__(self, n_levels: int, channels: Sequence[int], convs: Sequence[int], factor: int = 4,
                 upsample: bool = True):
        super().__init__()
        self.factor = int(factor)
        self.upsample = bool(upsample)
        self.body = UNet(self.factor**2, n_levels, channels, dims=2, convs=convs)

    @property
    def divisor(self) -> int:
        """Input sizes must be multiples of this."""
        return self.factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Heatmaps at the input's size, or ``factor`` times smaller without ``upsample``."""
        if self.factor == 1:
            return self.body(x)
        rows, cols = x.shape[-2:]
        pad_r, pad_c = (-rows) % self.factor, (-cols) % self.factor
        if pad_r or pad_c:
            x = F.pad(x, (0, pad_c, 0, pad_r), mode="replicate")
        y = self.body(F.pixel_unshuffle(x, self.factor))
        if not self.upsample:
            return y
        y = F.interpolate(y, scale_factor=self.factor, mode="bilinear", align_corners=False)
        return y[..., :rows, :cols]
