"""Losses: Pisov et al. 2020, eq. 3 for the detector and Gartland et al. 2025, appendix B (L2) for the level heatmaps.

torch is imported here; the CLI loads this module only inside training and inference functions.
"""

from __future__ import annotations

from typing import Dict, Optional

import torch
import torch.nn.functional as F

#: Gartland et al. 2025, appendix B: pixels with target >= 0.5 (around a centroid) weigh 10.
HOTSPOT_THRESHOLD = 0.5
HOTSPOT_WEIGHT = 10.0


def detection_loss(
    objectness_logits: torch.Tensor,
    encoded: torch.Tensor,
    target_objectness: torch.Tensor,
    target_encoded: torch.Tensor,
    target_weight: torch.Tensor,
    pos_weight: Optional[float] = None,
    valid: Optional[torch.Tensor] = None,
) -> Dict[str, torch.Tensor]:
    """Eq. 3 of Pisov et al. 2020: ``BCE(o_hat, o) + 1 / sum_i I[o_i=1] * sum_i I[o_i=1] / G_i * MAE(e_hat_i, e_i)``.

    Args:
        objectness_logits: (B, A, Hg, Wg) raw scores (sigmoid gives o_hat).
        encoded: (B, A, Hg, Wg, 12) predicted eq. 2 encodings.
        target_objectness: (B, A, Hg, Wg) 0/1.
        target_encoded: (B, A, Hg, Wg, 12).
        target_weight: (B, A, Hg, Wg) 1 / G_i at positives, 0 elsewhere.
        pos_weight: optional BCE weight of positives (None = the paper's plain BCE).
        valid: optional (B, A, Hg, Wg) 0/1: anchors whose objectness is not penalised (near a
            visible but unannotated vertebra) have 0; the BCE is the mean over valid anchors.

    Returns:
        ``{"loss", "bce", "mae"}``; ``mae`` is the 1/G-weighted keypoint term normalised by the
        number of positives (0 when the batch has none).

    """
    extra = {} if pos_weight is None else {"pos_weight": torch.tensor(float(pos_weight), device=encoded.device)}
    if valid is None:
        bce = F.binary_cross_entropy_with_logits(objectness_logits, target_objectness, **extra)
    else:
        each = F.binary_cross_entropy_with_logits(objectness_logits, target_objectness, reduction="none", **extra)
        bce = (each * valid).sum() / valid.sum().clamp(min=1)
    positive = target_objectness > 0.5
    n_positive = positive.sum()
    mae_each = (encoded - target_encoded).abs().mean(dim=-1)  # MAE over the 12 coordinates
    weighted = (mae_each * target_weight * positive).sum()
    mae = weighted / n_positive.clamp(min=1)
    return {"loss": bce + mae, "bce": bce, "mae": mae}


def tailored_heatmap_loss(
    predicted: torch.Tensor,
    target: torch.Tensor,
    layer_weight: torch.Tensor,
    mask: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Loss L2 of Gartland et al. 2025, appendix B on per-level heatmaps.

    Squared error per pixel, weighted 10 where the target is >= 0.5 (near a centroid), else by the
    layer's class: 5 for a layer whose level and neighbours are not in view, 0 for an empty layer
    next to a labelled one (a visible but unlabelled vertebra is not penalised), 1 otherwise; the
    mean over all pixels of all layers (N of the formula).

    Args:
        predicted: (B, C, H, W).
        target: (B, C, H, W) Gaussian heatmaps in [0, 1].
        layer_weight: (B, C) per-layer weights from :func:`..targets.layer_weights`.
        mask: optional (B, 1, H, W) 0/1 of pixels inside the image (padding excluded from N).

    """
    error = (predicted - target) ** 2
    weight = layer_weight[:, :, None, None].expand_as(error)
    weight = torch.where(target >= HOTSPOT_THRESHOLD, torch.full_like(weight, HOTSPOT_WEIGHT), weight)
    if mask is None:
        return (error * weight).mean()
    mask = mask.expand_as(error)
    return (error * weight * mask).sum() / mask.sum().clamp(min=1)
