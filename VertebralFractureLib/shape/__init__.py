"""Measures from any vertebra segmentation, and the shape abnormality score (Botros et al. 2022).

Modules:
    body_axes: separate each vertebral body from a labelled mask (canal detection) and find its axes.
    measure: six Genant keypoints on the endplates, heights, G, grade -> :func:`measure_from_mask`.
    crops: context crops along the column (two neighbours each side) for the shape model.
    network: coarse / refinement generators and WGAN critic (torch; import lazily).
    score: weighted surplus-volume abnormality 0-100 -> :func:`abnormality_scores`.
    stage: the body-mask, mask-measure and abnormality stages of the analysis.

Training and evaluation of the shape model: :mod:`VertebralFractureLib.training.abnormality`.
"""

from __future__ import annotations

from .measure import MaskMeasureError, measure_from_mask
from .score import abnormality_scores

__all__ = ["MaskMeasureError", "abnormality_scores", "measure_from_mask"]
