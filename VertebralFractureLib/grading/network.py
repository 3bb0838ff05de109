"""The fracture network of Husseini et al. 2020 §2.3 (after Raghu et al. 2019, "Transfusion").

``(conv32-bn-relu) -> maxpool -> (conv64-bn-relu) -> maxpool -> (conv128-bn-relu) -> maxpool ->
(conv256-bn-relu) -> maxpool -> (linear256-bn-lrelu) -> (linear128-bn-lrelu) -> (linear64-bn-lrelu)
-> linear8``, 5 x 5 kernels. The representation-learning stages train the 8-dimensional embedding
(``linear8``); the fracture stage replaces it with a two-node ``linear2`` head (Husseini et al. 2020, §2.3). Both heads
are kept in the module so one checkpoint carries the whole regime.

Input: ``(B, 2, 112, 112)``: the normalised sagittal patch and the Gaussian marking the vertebra
of interest (Husseini et al. 2020, §3 "Data Preparation"). ``width`` scales every channel count (1.0 = paper); the
k-fold ablation uses a narrower network to fit a CPU budget (documented in the evaluation).
"""

from __future__ import annotations

from typing import Any, Dict

import torch
from torch import nn

from .patches import PATCH_SIZE

IN_CHANNELS = 2
EMBEDDING_DIM = 8


class GradingNet(nn.Module):
    """Convolutional encoder with an embedding head (``linear8``) and a fracture head (``linear2``).

    Args:
        width: channel multiplier (1.0: conv 32-64-128-256, linear 256-128-64, as in Husseini et al. 2020, §2.3).
        patch_size: input side in pixels (112 in Husseini et al. 2020, §3); must be divisible by 16.
        embedding_dim: size of the metric-learning embedding (8 in Husseini et al. 2020, §2.3).
        in_channels: image + Gaussian marker.

    """

    def __init__(
        self,
        width: float = 1.0,
        patch_size: int = PATCH_SIZE,
        embedding_dim: int = EMBEDDING_DIM,
        in_channels: int = IN_CHANNELS,
    ) -> None:
        super().__init__()
        if patch_size % 16:
            raise ValueError(f"patch_size must be divisible by 16 (four 2x pools), got {patch_size}")
        self.config: Dict[str, Any] = {
            "width": float(width),
            "patch_size": int(patch_size),
            "embedding_dim": int(embedding_dim),
            "in_channels": int(in_channels),
        }
        chans = [max(4, int(round(c * width))) for c in (32, 64, 128, 256)]
        layers = []
        previous = in_channels
        for c in chans:
            layers += [nn.Conv2d(previous, c, 5, padding=2, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            previous = c
        self.features = nn.Sequential(*layers)
        flat = chans[-1] * (patch_size // 16) ** 2
        dims = [max(4, int(round(d * width))) for d in (256, 128, 64)]
        mlp = []
        for d in dims:
            mlp += [nn.Linear(flat, d, bias=False), nn.BatchNorm1d(d), nn.LeakyReLU(0.01, inplace=True)]
            flat = d
        self.trunk = nn.Sequential(*mlp)
        self.embed = nn.Linear(flat, embedding_dim)  # linear8
        self.classify = nn.Linear(flat, 2)  # linear2 (fracture stage)

    def backbone(self, x: torch.Tensor) -> torch.Tensor:
        """Output of ``linear64-bn-lrelu``: the features both heads read."""
        return self.trunk(torch.flatten(self.features(x), 1))

    def embedding(self, x: torch.Tensor) -> torch.Tensor:
        """The 8-dimensional representation (``linear8``) trained by the metric losses."""
        return self.embed(self.backbone(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Fracture logits ``(B, 2)`` (``linear2``): index 1 = fractured (grade >= 2)."""
        return self.classify(self.backbone(x))

    def fracture_probability(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax probability of the fractured class, ``(B,)``."""
        return torch.softmax(self.forward(x), dim=1)[:, 1]

    def outputs(self, x: torch.Tensor) -> tuple:
        """``(fracture probability (B,), embedding (B, 8))`` from one pass through the backbone."""
        features = self.backbone(x)
        return torch.softmax(self.classify(features), dim=1)[:, 1], self.embed(features)


class GradingEnsemble(nn.Module):
    """Several :class:`GradingNet` trained alike from different seeds; the fracture probability is their mean.

    Why: trained by the same command from seeds 0, 1 and 2, single networks gave 1, 6 and 4 of 32 real
    normal-looking vertebrae a probability >= 0.5 (``benchmarks/calibrate_real.py``), the same networks differing
    by more than the recipes compared; the mean of independently trained networks (a deep ensemble,
    Lakshminarayanan et al. 2017) has a lower variance than any one of them. The embedding (for the t-SNE figure
    of Husseini et al. 2020, Fig. 3) is the first member's: the members' embeddings live in different spaces.

    Args:
        members: how many networks.
        **network: :class:`GradingNet` arguments, the same for every member.

    """

    def __init__(self, members: int = 3, **network: Any) -> None:
        super().__init__()
        if members < 1:
            raise ValueError(f"an ensemble needs at least one member, got {members}")
        self.members = nn.ModuleList(GradingNet(**network) for _ in range(members))
        self.config: Dict[str, Any] = dict(self.members[0].config)

    def embedding(self, x: torch.Tensor) -> torch.Tensor:
        """The first member's 8-dimensional representation."""
        return self.members[0].embedding(x)

    def fracture_probability(self, x: torch.Tensor) -> torch.Tensor:
        """Mean of the members' probabilities of the fractured class, ``(B,)``."""
        return torch.stack([member.fracture_probability(x) for member in self.members]).mean(dim=0)

    def outputs(self, x: torch.Tensor) -> tuple:
        """``(mean fracture probability (B,), first member's embedding (B, 8))``, one pass per member."""
        results = [member.outputs(x) for member in self.members]
        return torch.stack([p for p, _ in results]).mean(dim=0), results[0][1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Log-probabilities ``(B, 2)`` of the mean (index 1 = fractured), in place of a single network's logits."""
        p = self.fracture_probability(x).clamp(1e-7, 1 - 1e-7)
        return torch.log(torch.stack([1 - p, p], dim=1))


def network_from_checkpoint(checkpoint: Dict[str, Any]) -> nn.Module:
    """The :class:`GradingNet` or :class:`GradingEnsemble` a checkpoint describes, with its weights, in eval mode.

    Args:
        checkpoint: as :func:`VertebralFractureLib.nn.weights.load_weights` returns it (``config["network"]``, and
            ``config["members"]`` for an ensemble).

    """
    members = checkpoint["config"].get("members")
    network = checkpoint["config"]["network"]
    model = GradingEnsemble(int(members), **network) if members else GradingNet(**network)
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval()
