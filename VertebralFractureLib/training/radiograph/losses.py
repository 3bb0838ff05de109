"""The four heatmap losses of Gartland et al. 2025, appendix B (Table 2): Base (MSE), L1, L2 and L3.

All are means over the N pixels of the (B, C, H, W) heatmap stack of squared errors with weights:

* ``base``: 1 everywhere (MSE).
* ``l1``: 10 where the target is >= 0.5 (around a labelled centroid), else 1.
* ``l2``: L1, plus per layer ``j``: 5 for a layer whose level and both neighbours have no label
  (the level is not in view), 0 for an empty layer next to a labelled one (a visible but unlabelled
  vertebra at the end of a labelled run is not penalised). The 10 near centroids takes precedence.
  The appendix's formula prints ``(y - y^2)^2``; its text and the other rows mean the squared error.
  This is :func:`VertebralFractureLib.training.keypoints.losses.tailored_heatmap_loss` with the layer
  classes of :func:`VertebralFractureLib.training.keypoints.targets.layer_weights`.
* ``l3``: L2 with the 10 applied in every layer wherever *any* layer's target is >= 0.5,
  discouraging two levels on one vertebra.

torch is imported here; the CLI loads this module only inside training and evaluation.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from ...radiograph.model import LOSSES
from ..keypoints.losses import HOTSPOT_THRESHOLD, HOTSPOT_WEIGHT, tailored_heatmap_loss

__all__ = ["LOSSES", "heatmap_loss", "layer_classes"]


def layer_classes(labelled: np.ndarray, channels: Sequence[str]) -> np.ndarray:
    """(B, C) L2 layer weights (1 labelled, 5 out of view, 0 next to a labelled layer)."""
    from ..keypoints.targets import layer_weights

    labelled = np.asarray(labelled, dtype=bool).reshape(-1, len(channels))
    return np.stack([layer_weights(row, channels) for row in labelled]).astype(np.float32)


def heatmap_loss(kind: str, predicted: torch.Tensor, target: torch.Tensor,
                 layer_weight: Optional[torch.Tensor] = None) -> torch.Tensor:
    """One of the Gartland et al. 2025, appendix B losses.

    Args:
        kind: ``"base"``, ``"l1"``, ``"l2"`` or ``"l3"``.
        predicted: (B, C, H, W).
        target: (B, C, H, W) Gaussian heatmaps in [0, 1].
        layer_weight: (B, C) from :func:`layer_classes` (needed by ``l2`` and ``l3``).

    Raises:
        ValueError: for an unknown kind or a missing ``layer_weight``.

    """
    error = (predicted - target) ** 2
    if kind == "base":
        return error.mean()
    if kind == "l1":
        weight = torch.where(target >= HOTSPOT_THRESHOLD, HOTSPOT_WEIGHT, 1.0)
        return (error * weight).mean()
    if kind not in ("l2", "l3"):
        raise ValueError(f"unknown loss {kind!r}; expected one of {', '.join(LOSSES)}")
    if layer_weight is None:
        raise ValueError(f"loss {kind} needs the per-layer weights (which levels are labelled)")
    if kind == "l2":
        return tailored_heatmap_loss(predicted, target, layer_weight)
    weight = layer_weight[:, :, None, None].expand_as(error)
    anywhere = (target >= HOTSPOT_THRESHOLD).any(dim=1, keepdim=True).expand_as(error)
    weight = torch.where(anywhere, torch.full_like(weight, HOTSPOT_WEIGHT), weight)
    return (error * weight).mean()
