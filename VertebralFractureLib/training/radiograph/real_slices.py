"""Real sagittal CT slices as detector training samples: the shipped detector's own boxes on the annotated bodies.

Why: fine-tuned on generated columns alone, the radiograph detector moves its boxes on real bodies and the real
levels fall (``train_keypoints`` module doc: 96 -> 64 of 113 on the real slices, also without any new augmentation),
so the way to teach it something new (a picture in a wider field of air, :func:`.train_keypoints.in_air`) without
losing what it does on real pictures is to keep real pictures in the training set with what it already finds there.

Each slice of ``covid_sagittal`` whose bodies are all annotated (levels certain from a sacrum in view:
:func:`.train_lumbosacral.anchored_slices`) gives one sample at the detector's pixel size, read as the analysis reads
it (collimation as air, facing left, :func:`~VertebralFractureLib.radiograph.gate2d.detector_window`). Targets: every
annotated body T1-L5 with the annotated keypoints where the reference has them, else the box the given detector draws
on it (its centre within :data:`MATCH_MM` of the annotated centre; a self-distillation target); an annotated body with
no such box, and S1, are ignored (neither a body nor background). Everything else in the slice is background.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np

#: A detector box whose centre lies within this distance (mm) of an annotated centre is that body's box.
MATCH_MM = 8.0
#: Annotated levels that are never a target (the detector learns mobile bodies; S1 is the sacrum's first segment).
IGNORED_LEVELS = ("S1",)


@dataclass
class RealSlice:
    """One real sagittal slice as the radiograph analysis reads it: collimation as air, facing left.

    Attributes:
        image: the grey picture (collimator's shadow set to air; mirrored when the slice faces right).
        spacing: ``(column mm, row mm)`` of the file.
        mirrored: whether the slice faced right (its annotations are mirrored by :meth:`facing_left`).
        result: the analysis of the file with the sacral test alone and no fracture classifier (its boxes and facing
            must not depend on the networks being trained from them).
    """

    image: np.ndarray
    spacing: Tuple[float, float]
    mirrored: bool
    result: object

    @classmethod
    def read(cls, entry: dict) -> "RealSlice":
        """The slice of a ``covid_sagittal.json`` image entry."""
        from ...radiograph.analyze import _load, analyze_radiograph
        from ...radiograph.gate2d import collimation_mask, without_collimation
        from ..real.reference import reference_dir

        path = reference_dir().parent / entry["image"]
        image, size, _ = _load(path)
        if collimation_mask(image).any():
            image = without_collimation(image)
        result = analyze_radiograph(str(path), fracture_model=False, lumbosacral_model=False).result
        mirrored = result.input.get("facing") == "right"
        if mirrored:
            image = np.ascontiguousarray(image[:, ::-1])
        return cls(image, tuple(float(x) for x in size.spacing), mirrored, result)

    def facing_left(self, points) -> np.ndarray:
        """``[column, row]`` points of the file in the picture facing left."""
        points = np.array(points, dtype=np.float64).reshape(-1, 2)
        if self.mirrored:
            points[:, 0] = self.image.shape[1] - 1 - points[:, 0]
        return points


def slice_sample(entry: dict, pixel_mm: float, model=None):
    """One annotated real slice as a :class:`~VertebralFractureLib.training.keypoints.sample.Sample` (module doc).

    Args:
        entry: a ``covid_sagittal.json`` image entry.
        pixel_mm: the detector's pixel size.
        model: the detector whose boxes are the targets where the reference has no keypoints (default: shipped).
    """
    from ...keypoints.detector import detect_vertebrae, resample_2d
    from ...radiograph.analyze import load_keypoint_model
    from ...radiograph.gate2d import detector_window
    from ..keypoints.sample import Sample

    picture = RealSlice.read(entry)
    col_mm, row_mm = picture.spacing
    seen = detector_window(picture.image)
    boxes = detect_vertebrae(seen, spacing_mm=(row_mm, col_mm), model=model or load_keypoint_model(),
                             order_levels=False)
    centres = np.array([b.centre for b in boxes]).reshape(-1, 2)
    keypoints, levels, ignore = [], [], []
    for vertebra in entry["vertebrae"]:
        centre = picture.facing_left(vertebra["centroid"])[0]
        if vertebra.get("label") in IGNORED_LEVELS:
            ignore.append(centre)
            continue
        if vertebra.get("keypoints"):
            keypoints.append(picture.facing_left(vertebra["keypoints"]))
        else:
            distance = np.linalg.norm((centres - centre) * [col_mm, row_mm], axis=1)
            if not len(distance) or distance.min() > MATCH_MM:
                ignore.append(centre)
                continue
            keypoints.append(np.asarray(boxes[int(np.argmin(distance))].keypoints, dtype=np.float64))
        levels.append(str(vertebra.get("label") or "L1"))
    factor = np.array([col_mm / pixel_mm, row_mm / pixel_mm])

    def scaled(points: np.ndarray) -> np.ndarray:
        return (np.asarray(points, dtype=np.float64) + 0.5) * factor - 0.5

    resampled = resample_2d(seen, (row_mm, col_mm), pixel_mm)
    return Sample(resampled, scaled(np.array(keypoints).reshape(-1, 6, 2)), levels, name=f"real-{entry['image']}",
                  meta={"source": "real sagittal slice", "pixel_mm": pixel_mm,
                        "ignore": scaled(np.array(ignore).reshape(-1, 2)).tolist()})


def real_samples(pixel_mm: float, leave_out: Sequence[str] = (), model=None) -> List:
    """:func:`slice_sample` of every anchored real slice but those of the patients in ``leave_out``."""
    from .train_lumbosacral import anchored_slices

    return [slice_sample(entry, pixel_mm, model) for entry in anchored_slices(leave_out)]


def in_air(sample, share: float, rng: np.random.Generator):
    """A real sample in a wider field of air (:func:`.train_keypoints.padded_in_air`), its ignore points moved along."""
    from ..keypoints.sample import Sample
    from .train_keypoints import padded_in_air

    image, shift = padded_in_air(sample.image, share, rng)
    return Sample(image, sample.keypoints + shift, list(sample.levels), name=sample.name + "-air",
                  meta={**sample.meta, "ignore": (sample.ignore + shift).tolist()})
