"""Metric losses of Husseini et al. 2020: the grading loss (eqs. 3-5) and the contrastive / triplet baselines.

All distances are squared Euclidean distances between embeddings, ``d(x^i, x^j) = ||f(x^i) - f(x^j)||_2^2``
(Husseini et al. 2020, §2.1). Embeddings are not normalised (Husseini et al. 2020 does not say so); the margins then
fix the scale.
"""

from __future__ import annotations

from typing import Dict

import torch

#: Husseini et al. 2020, §2.3: alpha = 1.5, beta = 1, gamma = 0.5 (alpha > beta > gamma, §2.1).
ALPHA, BETA, GAMMA = 1.5, 1.0, 0.5


def squared_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise ``||a - b||_2^2`` of two ``(B, D)`` batches -> ``(B,)``."""
    return ((a - b) ** 2).sum(dim=-1)


def grading_loss_terms(
    g0: torch.Tensor,
    g2: torch.Tensor,
    g3: torch.Tensor,
    anchor: torch.Tensor,
    anchor_class: torch.Tensor,
    alpha: float = ALPHA,
    beta: float = BETA,
    gamma: float = GAMMA,
) -> Dict[str, torch.Tensor]:
    """Per-quadruplet terms of the grading loss (Husseini et al. 2020, §2.1, eqs. 3-5).

    A quadruplet is the static triplet ``(x_g0, x_g2, x_g3)`` (healthy, grade 2, grade 3) plus the
    positive anchor ``x_gn`` of a randomly chosen grade ``n in {0, 2, 3}``:

    * ``L1 = max(0, d(g2, g3) - d(g2, g0) + alpha)`` (eq. 3): grade 2 nearer grade 3 than healthy;
    * ``L2 = max(0, d(g0, g2) - d(g0, g3) + beta)`` (eq. 4): healthy nearer grade 2 than grade 3;
    * ``L3 = max(0, d(x_gn^{i,j,k}, x_gn^l) - gamma)``: the clustering term.

    Reading of eq. 5: as printed, ``max(0, gamma - d(match, anchor))`` is zero only when the anchor is
    at least ``gamma`` away from its match, i.e. it *pushes* the anchor away, whereas the text (and
    Fig. 2) says the term *pulls* ``x_gn`` towards its match in the static triplet. We implement the
    pull the text describes: a hinge that is zero exactly when the anchor lies within ``gamma``
    (squared distance) of the static-triplet sample of its own grade, and grows linearly beyond.
    Each term is zero exactly when its margin condition (eq. 1, eq. 2, ``d <= gamma``) holds.

    Args:
        g0: embeddings ``(B, D)`` of the healthy samples.
        g2: embeddings ``(B, D)`` of the grade-2 samples.
        g3: embeddings ``(B, D)`` of the grade-3 samples.
        anchor: embeddings ``(B, D)`` of the positive anchors.
        anchor_class: ``(B,)`` long, 0 / 1 / 2 for an anchor of grade 0 / 2 / 3 (its match is
            ``g0`` / ``g2`` / ``g3`` of the same quadruplet).
        alpha: margin of eq. 3 (Husseini et al. 2020, §2.3: 1.5).
        beta: margin of eq. 4 (1).
        gamma: radius of the clustering term (0.5).

    Returns:
        ``{"L1", "L2", "L3"}`` each ``(B,)``.

    """
    l1 = torch.relu(squared_distance(g2, g3) - squared_distance(g2, g0) + alpha)
    l2 = torch.relu(squared_distance(g0, g2) - squared_distance(g0, g3) + beta)
    static = torch.stack([g0, g2, g3], dim=1)  # (B, 3, D)
    match = static[torch.arange(static.shape[0], device=static.device), anchor_class.long()]
    l3 = torch.relu(squared_distance(match, anchor) - gamma)
    return {"L1": l1, "L2": l2, "L3": l3}


def grading_loss(
    g0: torch.Tensor,
    g2: torch.Tensor,
    g3: torch.Tensor,
    anchor: torch.Tensor,
    anchor_class: torch.Tensor,
    alpha: float = ALPHA,
    beta: float = BETA,
    gamma: float = GAMMA,
) -> torch.Tensor:
    """The grading loss ``L_G = L1 + L2 + L3`` (Husseini et al. 2020, §2.1), averaged over the quadruplets.

    See :func:`grading_loss_terms` for the terms and the reading of eq. 5.
    """
    terms = grading_loss_terms(g0, g2, g3, anchor, anchor_class, alpha, beta, gamma)
    return (terms["L1"] + terms["L2"] + terms["L3"]).mean()


def contrastive_loss(a: torch.Tensor, b: torch.Tensor, same: torch.Tensor, margin: float = 2.0) -> torch.Tensor:
    """Contrastive loss (Hadsell et al. 2006): baseline of Husseini et al. 2020, Tables 1-2, and label pre-training.

    ``L = y * D^2 + (1 - y) * max(0, m - D)^2`` with ``D = ||a - b||_2`` (so ``D^2`` is Husseini et al. 2020's ``d``);
    similar pairs are pulled together, dissimilar ones pushed at least ``m`` apart.

    Args:
        a: embeddings ``(B, D)`` of the first members of the pairs.
        b: embeddings ``(B, D)`` of the second members.
        same: ``(B,)`` 1 for a pair of the same class, 0 otherwise.
        margin: ``m`` on the Euclidean distance.

    """
    d2 = squared_distance(a, b)
    distance = torch.sqrt(d2 + 1e-12)
    same = same.to(d2.dtype)
    return (same * d2 + (1 - same) * torch.relu(margin - distance) ** 2).mean()


def triplet_loss(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor,
                 margin: float = BETA) -> torch.Tensor:
    """Triplet loss of Schroff et al. (2015, FaceNet), the baseline of Husseini et al. 2020, Tables 1-2.

    ``L = max(0, d(a, p) - d(a, n) + margin)`` with Husseini et al. 2020's squared distance ``d``.
    """
    return torch.relu(squared_distance(anchor, positive) - squared_distance(anchor, negative) + margin).mean()
