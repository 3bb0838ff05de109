"""Stages on vertebra segmentations: body masks, measures from a user's mask, shape abnormality.

* :class:`BodyMaskStage`: the vertebral-body label image for the outputs (the user's mask on the CT grid,
  else bodies drawn from the keypoints, :mod:`VertebralFractureLib.masks`).
* :class:`MaskMeasureStage`: six keypoints and Genant measures taken from the user's segmentation
  (:func:`VertebralFractureLib.shape.measure.measure_from_mask`) replace the detector's.
* :class:`AbnormalityStage`: shape abnormality 0-100 per vertebra (Botros et al. 2022).
"""

from __future__ import annotations

import time

from ..progress import Progress
from ..stage import Analysis, AnalysisOptions, RunsWhenChosen, StageContext


class BodyMaskStage:
    """Vertebral-body label image (VerSe labels) on the input's grid."""

    name = "masks"
    title = "drawing vertebral-body masks"
    share = 0.05

    def enabled(self, options: AnalysisOptions) -> bool:
        """Runs when masks are wanted."""
        return options.masks

    def run(self, analysis: Analysis, context: StageContext, progress: Progress) -> None:
        """Set ``analysis.labels`` (None when there is neither a segmentation nor a vertebra)."""
        from ..io.images import image_from_array, resample_like
        from ..masks import body_masks_from_keypoints

        progress(0.0, self.title)
        if context.segmentation is not None:
            analysis.labels = resample_like(context.segmentation, analysis.image, nearest=True)
        elif analysis.result.vertebrae:
            geometry = analysis.geometry
            analysis.labels = image_from_array(body_masks_from_keypoints(analysis.result, geometry), geometry)


class MaskMeasureStage:
    """Keypoints and Genant measures from the user's segmentation replace the detector's."""

    name = "mask_measures"
    title = "measuring vertebrae on the given segmentation"
    share = 0.05

    def enabled(self, options: AnalysisOptions) -> bool:
        """Runs when a segmentation is given."""
        return options.segmentation is not None

    def run(self, analysis: Analysis, context: StageContext, progress: Progress) -> None:
        """Replace the detector's vertebrae by those measured on the segmentation.

        Levels of the segmentation that the detector did not find are added; levels the detector found
        but the mask lacks keep the model's keypoints. Does nothing without a segmentation.
        """
        from .measure import measure_from_mask

        if context.segmentation is None:
            return
        progress(0.0, self.title)
        measured = measure_from_mask(context.segmentation)
        result = analysis.result
        by_level = {v.label: v for v in measured.vertebrae}
        kept = [v for v in result.vertebrae if v.label not in by_level]
        result.vertebrae = kept + list(by_level.values())
        result.warnings += [w for w in measured.warnings if w not in result.warnings]
        result.models["keypoints"] = "mask" if not kept else f"{result.models.get('keypoints', 'model')} + mask"
        result.recompute()
        progress(1.0, f"{len(by_level)} vertebrae measured on the segmentation")


class AbnormalityStage(RunsWhenChosen):
    """Shape abnormality 0-100 per vertebra from the segmentation or the body labels (Botros et al. 2022)."""

    name = "abnormality"
    title = "scoring vertebral shape abnormality"
    share = 0.05

    def run(self, analysis: Analysis, context: StageContext, progress: Progress) -> None:
        """Set ``Vertebra.abnormality``; without a mask or weights a warning is added and nothing else changes."""
        from ..nn.weights import WeightsError
        from .score import abnormality_scores

        result = analysis.result
        mask = context.segmentation if context.segmentation is not None else analysis.labels
        if mask is None:
            result.warnings.append("abnormality: no vertebra segmentation available; skipped")
            return
        progress(0.0, self.title)
        started = time.perf_counter()
        try:
            scores = abnormality_scores(mask, result, device=context.device)
        except WeightsError as error:
            result.warnings.append(f"abnormality: {error}; skipped")
            return
        said = [w for w in result.warnings if w.startswith("abnormality: ")]
        missing = [v.label for v in result.vertebrae if v.label not in scores and v.assessed
                   and not any(w.startswith(f"abnormality: {v.label} ") for w in said)]
        if missing:
            result.warnings.append(f"abnormality: no body in the segmentation for {', '.join(missing)}")
        result.timings_s["abnormality_model"] = round(time.perf_counter() - started, 3)
        progress(1.0, f"abnormality scored for {len(scores)} vertebrae")
