"""Vertebral fracture classifier trained with the grading loss (Husseini et al. 2020).

Modules:
    regions: the five spine regions of the label pre-training (§2.2) and the grade classes.
    patches: 112 x 112 sagittal patches at 1 mm from the straightened spine + Gaussian channel (§3).
    network: the §2.3 network (conv 32-64-128-256, linear 256-128-64-8, linear2 head).
    classifier: :func:`fracture_probabilities` with the shipped weights.
    stage: :class:`ClassifierStage`, the analysis stage.

Training, the grading loss, the three-stage regime and the ablation tables:
:mod:`VertebralFractureLib.training.grading`. Importing this package does not import torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["fracture_probabilities"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import classifier

        return getattr(classifier, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
