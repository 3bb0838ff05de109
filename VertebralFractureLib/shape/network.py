"""The two generators and the critic of the contextual shape model (Botros et al. 2022, section 2).

* coarse: an encoder-decoder (the project's small 3D U-Net) from the four context channels to a
  coarse mask of the expected body, trained with binary cross-entropy;
* refine: the same architecture given the context plus the coarse probability (five channels),
  trained with binary cross-entropy and a Wasserstein GAN loss (Arjovsky et al. 2017) with a
  gradient penalty (Gulrajani et al. 2017), as in generative inpainting (Yu et al. 2018);
* critic: a small strided 3D CNN scoring (context, shape) pairs, used only in training.

Torch is imported by this module: import it lazily from code the CLI loads at start.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..nn.unet import UNet

#: Channels per U-Net level of both generators.
GENERATOR_CHANNELS = (4, 8, 16)
#: Channels of the critic's strided convolutions.
CRITIC_CHANNELS = (4, 8, 16)


class ShapeModel(nn.Module):
    """Coarse and refinement generators together: context (B, 4, T, U, W) -> body logits."""

    def __init__(self, channels: Sequence[int] = GENERATOR_CHANNELS) -> None:
        super().__init__()
        self.channels = tuple(int(c) for c in channels)
        self.coarse = UNet(4, 1, self.channels, dims=3)
        self.refine = UNet(5, 1, self.channels, dims=3)

    def forward(self, context: torch.Tensor, *, refine: bool = True) -> tuple:
        """(coarse logits, refined logits or None)."""
        coarse = self.coarse(context)
        if not refine:
            return coarse, None
        refined = self.refine(torch.cat([context, torch.sigmoid(coarse)], dim=1)) + coarse
        return coarse, refined

    def predict(self, context: torch.Tensor) -> torch.Tensor:
        """Probability of the expected healthy body, (B, T, U, W)."""
        _, refined = self.forward(context)
        return torch.sigmoid(refined)[:, 0]


class Critic(nn.Module):
    """WGAN critic on (context, body) pairs: 5 channels -> one score per sample."""

    def __init__(self, channels: Sequence[int] = CRITIC_CHANNELS) -> None:
        super().__init__()
        layers = []
        previous = 5
        for c in channels:
            layers += [nn.Conv3d(previous, c, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            previous = c
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(previous, 1)

    def forward(self, context: torch.Tensor, body: torch.Tensor) -> torch.Tensor:
        """Critic value, shape (B,)."""
        x = self.features(torch.cat([context, body], dim=1))
        return self.head(x.mean(dim=(2, 3, 4)))[:, 0]


def gradient_penalty(critic: Critic, context: torch.Tensor, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP penalty (Gulrajani et al. 2017): (||grad D(x_hat)|| - 1)^2 on random interpolates."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, 1, device=real.device)
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    score = critic(context, mixed)
    (grad,) = torch.autograd.grad(score.sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
