"""Detections on the mid-sagittal image -> a :class:`~VertebralFractureLib.schema.SpineResult` in LPS.

The keypoints are mapped back to patient space through the straightening
(:meth:`VertebralFractureLib.spine.StraightenedSpine.mid_sagittal_to_patient`, Pisov et al. 2020, §3.2 "mapped
back to 3D"); heights, G, grade, type and the neighbour-relative reduction then come from
:mod:`VertebralFractureLib.genant` through :meth:`SpineResult.recompute`, and the patient level is the
most severe vertebra (Pisov et al. 2020, §5.1, :meth:`SpineResult.patient_summary`).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..schema import SpineResult, Vertebra


def result_from_detections(
    detections: Sequence, spine=None, pixel_spacing: float = 1.0, model_sha256: Optional[str] = None
) -> SpineResult:
    """Build the result of one image.

    Args:
        detections: :class:`.detector.Detection` objects (labels unique, as the joint labelling gives).
        spine: the :class:`~VertebralFractureLib.spine.StraightenedSpine` whose mid-sagittal image
            was analysed; None for a 2D result in the ``pixel`` frame (e.g. a radiograph).
        pixel_spacing: mm per pixel of the analysed image (``pixel`` frame only).
        model_sha256: recorded under ``models["keypoints"]``.

    """
    vertebrae = []
    seen = set()
    for detection in sorted(detections, key=lambda d: -d.score):
        if detection.label in seen:  # never from decode_levels; kept for hand-made inputs
            continue
        seen.add(detection.label)
        points = np.asarray(detection.keypoints, dtype=np.float64)
        if spine is not None:
            points = spine.mid_sagittal_to_patient(points, order="col_row")
        vertebrae.append(
            Vertebra(
                label=detection.label,
                centroid=points.mean(axis=0),
                keypoints=points,
                confidence=float(detection.score * detection.label_confidence),
                source="model",
                extra={
                    "detection_score": float(detection.score),
                    "label_confidence": float(detection.label_confidence),
                },
            )
        )
    frame = "LPS" if spine is not None else "pixel"
    result = SpineResult(vertebrae, frame=frame, pixel_spacing=(pixel_spacing, pixel_spacing))
    if model_sha256:
        result.models["keypoints"] = model_sha256
    return result
