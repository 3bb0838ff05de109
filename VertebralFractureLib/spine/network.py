"""The centre-line network: a small 3D U-Net with a per-axial-slice 2D soft-argmax (Pisov et al. 2020, section 3.1).

The U-Net sees the whole CT at 3 mm (canonical orientation, ``x[b, 0, k, j, i]``) and outputs two
channels: a heatmap logit and a presence logit. For every axial slice ``k`` the heatmap is turned
into a probability map by a softmax over ``(j, i)``; its expectation is the slice's vertebral-body
centre (2D soft-argmax, Luvizon et al. 2017, ref. [16] of 001). The presence logit of the slice is
the presence channel averaged with the same probability map, so slices without spine are
recognised instead of being forced onto a point.
"""

from __future__ import annotations

from typing import Dict, Sequence, Tuple

import torch
from torch import nn

from ..nn.unet import UNet

#: HU window of the input normalisation (clip, then divide by 1000).
HU_RANGE = (-1000.0, 2000.0)


def normalise_hu(array):
    """Clip HU to :data:`HU_RANGE` and scale by 1/1000 (numpy array or tensor, float32)."""
    if isinstance(array, torch.Tensor):
        return array.float().clamp(*HU_RANGE) / 1000.0
    import numpy as np

    return (np.clip(array.astype(np.float32), *HU_RANGE) / 1000.0).astype(np.float32)


def soft_argmax_2d(logits: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-slice 2D soft-argmax (Luvizon et al. 2017).

    Args:
        logits: ``(B, K, J, I)`` heatmap logits.

    Returns:
        ``(coords, probability)``: ``(B, K, 2)`` expected ``(j, i)`` voxel positions and the
        ``(B, K, J, I)`` softmax maps.

    """
    b, k, j, i = logits.shape
    probability = torch.softmax(logits.reshape(b, k, j * i), dim=-1).reshape(b, k, j, i)
    grid_j = torch.arange(j, dtype=logits.dtype, device=logits.device)
    grid_i = torch.arange(i, dtype=logits.dtype, device=logits.device)
    coord_j = (probability.sum(dim=3) * grid_j).sum(dim=2)
    coord_i = (probability.sum(dim=2) * grid_i).sum(dim=2)
    return torch.stack([coord_j, coord_i], dim=-1), probability


class CentrelineNet(nn.Module):
    """Stem -> 3D U-Net -> per-slice soft-argmax point and presence logit.

    CPU adaptation (documented in ``docs``/report): a strided stem convolution halves the
    in-plane resolution (3 mm -> 6 mm, slices stay at 3 mm) before the U-Net, which makes training
    about four times cheaper; the soft-argmax still returns continuous coordinates, converted back
    to the 3 mm voxel grid.

    Args:
        channels: U-Net channels per level.
        convs: convolutions per U-Net block (one value per level).
        stem_channels: channels of the strided stem convolution (0: no stem, full resolution).

    """

    def __init__(
        self,
        channels: Sequence[int] = (8, 16, 32, 32),
        convs: Sequence[int] = (1, 2, 2, 2),
        stem_channels: int = 8,
    ) -> None:
        super().__init__()
        self.config = {
            "channels": [int(c) for c in channels],
            "convs": [int(c) for c in convs],
            "stem_channels": int(stem_channels),
        }
        if stem_channels:
            self.stem = nn.Sequential(
                nn.Conv3d(1, stem_channels, 3, stride=(1, 2, 2), padding=1),
                nn.InstanceNorm3d(stem_channels, affine=True),
                nn.LeakyReLU(0.1, inplace=True),
            )
            self.in_plane_stride = 2
        else:
            self.stem = nn.Identity()
            self.in_plane_stride = 1
        self.unet = UNet(stem_channels or 1, 2, channels, dims=3, convs=tuple(convs))

    @property
    def divisor(self) -> Tuple[int, int, int]:
        """Input sizes (k, j, i) must be multiples of these."""
        d = self.unet.divisor
        return (d, d * self.in_plane_stride, d * self.in_plane_stride)

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Run on ``(B, 1, K, J, I)`` normalised CT.

        Returns:
            ``coords`` (B, K, 2) voxel ``(j, i)``, ``presence_logit`` (B, K), ``spread`` (B, K) the
            standard deviation of the probability map in voxels (a confidence measure).

        """
        out = self.unet(self.stem(x))
        coords, probability = soft_argmax_2d(out[:, 0])
        presence_logit = (probability * out[:, 1]).sum(dim=(2, 3))
        j = torch.arange(probability.shape[2], dtype=x.dtype, device=x.device)
        i = torch.arange(probability.shape[3], dtype=x.dtype, device=x.device)
        var_j = (probability.sum(dim=3) * (j[None, None] - coords[..., :1]) ** 2).sum(dim=2)
        var_i = (probability.sum(dim=2) * (i[None, None] - coords[..., 1:]) ** 2).sum(dim=2)
        # a strided stem's output voxel m is centred on input voxel stride * m
        stride = float(self.in_plane_stride)
        spread = torch.sqrt(var_j + var_i + 1e-8) * stride
        return {"coords": coords * stride, "presence_logit": presence_logit, "spread": spread}


def centreline_loss(
    output: Dict[str, torch.Tensor],
    target: torch.Tensor,
    present: torch.Tensor,
    valid: torch.Tensor,
    spacing_mm: float = 3.0,
    presence_weight: float = 1.0,
) -> Tuple[torch.Tensor, Dict[str, float]]:
    """Mean absolute error of the slice points (mm) plus presence cross-entropy (Pisov et al. 2020, §3.1).

    Args:
        output: :meth:`CentrelineNet.forward` output.
        target: ``(B, K, 2)`` target ``(j, i)`` voxel positions.
        present: ``(B, K)`` 1 where the slice crosses a vertebral body (spine present).
        valid: ``(B, K)`` 1 for real slices, 0 for padding.
        spacing_mm: in-plane voxel size, to express the MAE in mm.
        presence_weight: weight of the presence term.

    Returns:
        The loss and a dict of its parts as floats.

    """
    mask = present * valid
    error = (output["coords"] - target).abs().sum(dim=-1) * spacing_mm / 2.0  # mean over the two axes
    mae = (error * mask).sum() / mask.sum().clamp(min=1.0)
    bce = nn.functional.binary_cross_entropy_with_logits(output["presence_logit"], present, reduction="none")
    bce = (bce * valid).sum() / valid.sum().clamp(min=1.0)
    loss = mae + presence_weight * bce
    return loss, {"mae_mm": float(mae.detach()), "bce": float(bce.detach())}
