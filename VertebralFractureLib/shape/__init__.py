"""Measures from any vertebra segmentation, and the shape abnormality score of paper 003.

Modules:
    body: separate each vertebral body from a labelled mask (canal detection) and find its axes.
    measure: six Genant keypoints on the endplates, heights, G, grade -> :func:`measure_from_mask`.
    crops: context crops along the column (two neighbours each side) for the shape model.
    networks: coarse / refinement generators and WGAN critic (torch; import lazily).
    score: weighted surplus-volume abnormality 0-100 -> :func:`abnormality_scores`, pipeline stage.
    synthdata: training crops from the synthetic generator's columns.
    train: training of the shape model.
    figure: keypoints on the mid-sagittal slice, abnormality colours and legend.
"""

from __future__ import annotations

from .measure import MaskMeasureError, measure_from_mask
from .score import abnormality_scores, stage_abnormality


def stage_mask_measures(analysis, options, progress) -> None:
    """Pipeline stage: replace the vertebrae's keypoints by those measured on ``options.segmentation``.

    Levels of the segmentation that the keypoint detector did not find are added; levels the
    detector found but the mask lacks keep the model's keypoints. Does nothing without a segmentation.
    """
    segmentation = getattr(options, "segmentation", None)
    if segmentation is None:
        return
    progress(0.0, "measuring vertebrae on the given segmentation")
    measured = measure_from_mask(segmentation)
    result = analysis.result
    by_level = {v.label: v for v in measured.vertebrae}
    kept = [v for v in result.vertebrae if v.label not in by_level]
    result.vertebrae = kept + list(by_level.values())
    result.warnings += [w for w in measured.warnings if w not in result.warnings]
    result.models["keypoints"] = "mask" if not kept else f"{result.models.get('keypoints', 'model')} + mask"
    result.recompute()
    progress(1.0, f"{len(by_level)} vertebrae measured on the segmentation")


__all__ = ["MaskMeasureError", "abnormality_scores", "measure_from_mask", "stage_abnormality", "stage_mask_measures"]
