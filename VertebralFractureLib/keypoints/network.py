"""Networks: the U-Net region-proposal detector of Pisov et al. 2020, §3.2 and the level-heatmap net of 004.

Both are small U-Nets (Ronneberger et al. 2015) sized for CPU training:

* :class:`KeypointRPN` works on the 1 mm mid-sagittal image. Encoder 8-16-32-64 channels (full,
  1/2, 1/4, 1/8 resolution), decoder back to 1/2: the heads predict at **stride 2** (one anchor
  set every 2 mm; Pisov et al. 2020 predicts at full resolution, the stride keeps CPU training under an hour).
  Per cell and anchor shape: one objectness logit and 12 encoded keypoint coordinates (eq. 2).
* :class:`LevelNet` works on the whole column downsampled to 4 mm (a large receptive field to see
  the landmarks - cervical shape, sacrum, vertebra sizes - that fix the level) and predicts one
  heatmap per level channel (Gartland et al. 2025, §2) at 4 mm.
"""

from __future__ import annotations

from typing import Dict, Sequence, Tuple

import torch
from torch import nn


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class UNet2d(nn.Module):
    """Plain 2D U-Net; returns the decoder features at ``1 / 2**out_level`` resolution.

    Args:
        channels: encoder widths, one per resolution level (full, 1/2, 1/4, ...).
        out_level: decoder level at which to stop (0 = full resolution).

    """

    def __init__(self, channels: Sequence[int] = (8, 16, 32, 64), out_level: int = 1, in_channels: int = 1):
        super().__init__()
        self.channels = tuple(channels)
        self.out_level = out_level
        self.down = nn.ModuleList()
        previous = in_channels
        for width in self.channels:
            self.down.append(_block(previous, width))
            previous = width
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for level in range(len(self.channels) - 1, out_level, -1):
            self.up.append(nn.ConvTranspose2d(self.channels[level], self.channels[level - 1], 2, stride=2))
            self.merge.append(_block(2 * self.channels[level - 1], self.channels[level - 1]))

    @property
    def out_channels(self) -> int:
        """Width of the returned features."""
        return self.channels[self.out_level]

    @property
    def divisor(self) -> int:
        """Input sizes must be multiples of this."""
        return 2 ** (len(self.channels) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Decoder features of ``x`` (B, C, H, W)."""
        skips = []
        for level, block in enumerate(self.down):
            x = block(x if level == 0 else self.pool(x))
            skips.append(x)
        x = skips[-1]
        for up, merge, skip in zip(self.up, self.merge, reversed(skips[self.out_level : -1])):
            x = merge(torch.cat([up(x), skip], dim=1))
        return x


class KeypointRPN(nn.Module):
    """U-Net region-proposal network with anchors, Pisov et al. 2020, §3.2.

    Forward returns ``(objectness_logits (B, A, Hg, Wg), encoded (B, A, Hg, Wg, 12))`` with
    ``Hg = H / stride``.
    """

    def __init__(self, n_anchors: int = 16, channels: Sequence[int] = (8, 16, 32, 64), stride: int = 2):
        super().__init__()
        out_level = {1: 0, 2: 1, 4: 2}[stride]
        self.config: Dict = {"n_anchors": n_anchors, "channels": list(channels), "stride": stride}
        self.stride = stride
        self.n_anchors = n_anchors
        self.body = UNet2d(channels, out_level)
        width = self.body.out_channels
        self.neck = nn.Sequential(nn.Conv2d(width, 32, 3, padding=1), nn.ReLU(inplace=True))
        self.objectness = nn.Conv2d(32, n_anchors, 1)
        self.keypoints = nn.Conv2d(32, n_anchors * 12, 1)
        nn.init.constant_(self.objectness.bias, -4.0)  # start with few positives (prior ~2 %)
        nn.init.zeros_(self.keypoints.bias)
        nn.init.normal_(self.keypoints.weight, std=0.01)

    @property
    def divisor(self) -> int:
        """Input sizes must be multiples of this."""
        return self.body.divisor

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Objectness logits and encoded keypoints of ``x`` (B, 1, H, W)."""
        features = self.neck(self.body(x))
        batch, _, rows, cols = features.shape
        logits = self.objectness(features)
        encoded = self.keypoints(features).view(batch, self.n_anchors, 12, rows, cols).permute(0, 1, 3, 4, 2)
        return logits, encoded


class LevelNet(nn.Module):
    """Per-level heatmaps on the whole column at 4 mm (Gartland et al. 2025, §2); outputs (B, C, H, W) at input size."""

    def __init__(self, n_levels: int, channels: Sequence[int] = (8, 16, 32, 32, 32)):
        super().__init__()
        self.config: Dict = {"n_levels": n_levels, "channels": list(channels)}
        self.body = UNet2d(channels, 0)
        self.head = nn.Conv2d(self.body.out_channels, n_levels, 1)

    @property
    def divisor(self) -> int:
        """Input sizes must be multiples of this."""
        return self.body.divisor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Level heatmaps of ``x`` (B, 1, H, W)."""
        return self.head(self.body(x))
