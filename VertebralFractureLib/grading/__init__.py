"""Vertebral fracture classifier trained with the grading loss (paper 000, Husseini et al. 2020).

Modules:
    regions: the five spine regions of the label pre-training (000 §2.2) and the grade classes.
    patches: 112 x 112 sagittal patches at 1 mm from the straightened spine + Gaussian channel (000 §3).
    dataset: patch sets cut from generated or real cases, cached as ``.npz``.
    network: the 000 §2.3 network (conv 32-64-128-256, linear 256-128-64-8, linear2 head).
    losses: grading loss (eqs. 3-5), contrastive and triplet baselines.
    regime: the three stages, label pre-train -> representation learn -> fracture train.
    probe: linear SVM on the embeddings (000 Table 1).
    ablation: k-fold Tables 1 and 2 of 000.
    figures: t-SNE (or PCA) plot of the embeddings (000 Fig. 3).
    inference: :func:`fracture_probabilities` and the pipeline stage :func:`stage_fracture_classifier`.
    train, evaluate: ``vertebral-fracture train grading`` / ``evaluate grading``.

Importing this package does not import torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["fracture_probabilities", "stage_fracture_classifier"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import inference

        return getattr(inference, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
