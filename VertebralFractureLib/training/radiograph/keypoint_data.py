"""Keypoint-detector samples from radiographs: the Pisov et al. 2020, §3.2 detector without its first network.

Pisov et al. 2020, §6: the method carries to 2D X-ray "by simply dropping the first network" (no centre-line,
no straightening): the detector runs on the radiograph itself. Its training code is the keypoint
engineer's (:func:`VertebralFractureLib.training.keypoints.train.train`); this module only turns
generated radiographs into its :class:`~VertebralFractureLib.training.keypoints.sample.Sample` (1 mm
pixels, ``[column, row]`` keypoints).
"""

from __future__ import annotations

from typing import List

import numpy as np

from .columns import Column

#: Pixel size of the radiograph detector's input: 2 mm (the CT detector works at 1 mm; a
#: lateral radiograph's vertebrae are 15-35 mm tall, and 2 mm pixels make training 4x cheaper).
DETECTOR_MM = 2.0
#: Margin (mm) around the spine of the narrow band sample.
BAND_MARGIN_MM = 40.0


def _resampled(column: Column, pixel_mm: float) -> tuple:
    from ...keypoints.detector import resample_2d

    factor = column.pixel_mm / pixel_mm
    image = resample_2d(column.image, (column.pixel_mm, column.pixel_mm), pixel_mm)
    return image, (column.keypoints + 0.5) * factor - 0.5


def samples_from_column(column: Column, band: bool = True, pixel_mm: float = DETECTOR_MM) -> List:
    """Detector samples of one column: the whole width, and optionally a band around the spine.

    The whole-width sample teaches the detector to ignore the soft tissues and ribs in front of
    the spine (a radiograph is much wider than the 97 mm mid-sagittal plane of a CT); the band
    raises the share of training crops that hold vertebrae. Training samples are at the
    detector's pixel size; validation samples (for the threshold calibration of the keypoint
    package, which runs the detector on 1 mm images) at ``pixel_mm=1.0``.
    """
    from ..keypoints.sample import Sample

    image, keypoints = _resampled(column, pixel_mm)
    name = f"radiograph-{column.seed}"
    meta = {"source": "radiograph", "pixel_mm": pixel_mm}
    samples = [Sample(image, keypoints, list(column.levels), name, dict(meta))]
    if band and len(keypoints):
        margin = BAND_MARGIN_MM / pixel_mm
        low = int(max(0, np.floor(keypoints[..., 0].min() - margin)))
        high = int(min(image.shape[1], np.ceil(keypoints[..., 0].max() + margin)))
        shifted = keypoints - np.array([low, 0.0])
        samples.append(Sample(image[:, low:high], shifted, list(column.levels), name + "-band", dict(meta)))
    return samples
