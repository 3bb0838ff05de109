"""Is this body L5, the last mobile one with the sacrum below it? A learned score on a lateral view.

Why: a radiologist counts lumbar levels upwards from the sacrum (:mod:`.sacrum`), and the hand-written test there
(bone below the disc, soft tissue straight ahead, a long bony mass turning posteriorly) misses the sacrum on three real
sagittal CT slices that show it (a sacrum that runs nearly straight down for a level below L5, a thin pale sacrum
behind a vacuum disc, an L5 the detector barely saw) and, on generated films with a realistic sacrum, took a lordotic
L5 for the sacrum on 11 of 24. Those are ordinary variants (sacral slope 20-65 degrees, vacuum discs,
contrast-filled bowel, osteoporotic bone), and a rule with fixed sectors and contrasts cannot cover them all. This
module learns what the lumbosacral junction looks like from generated spines whose
sacrum and pelvis vary in those ways (:func:`VertebralFractureLib.synth.vertebrae.draw_curved_sacrum`,
:func:`VertebralFractureLib.synth.body.draw_pelvic_contents`), read as sagittal CT slices and as radiographs, with
the bodies of the real reference CTs and the eight real sagittal slices whose levels are certain from a sacrum in
view as real examples (:mod:`VertebralFractureLib.training.radiograph.train_lumbosacral`).

Patch: cut from the :func:`~.gate2d.body_window` image on the body's own axes from its six keypoints
(:func:`~.fracture.body_axes`), like the fracture classifier's (:mod:`.fracture`), but reaching further down: from
:data:`ABOVE_DEPTHS` body depths above the body's centre to :data:`BELOW_DEPTHS` below it (the disc, S1 and the
sacrum's turn, or the next two mobile bodies), and from :data:`ANTERIOR_DEPTHS` in front of it to
:data:`POSTERIOR_DEPTHS` behind it (the pelvis in front of the sacrum; the sacrum's posterior turn). The depth sets
the scale, so no pixel size is needed; a view facing right gives the same patch. Intensities are centred and scaled
as the fracture patches (:func:`~.fracture.normalise_patch`); a second channel marks the body.

Network: :class:`VertebralFractureLib.grading.network.GradingNet` (Husseini et al. 2020, §2.3, the same small
encoder), binary: 1 for L5, 0 for every other body (T11-L4, S1 and boxes on the sacrum). The anchor
(:func:`.sacrum.sacral_anchor`) reads it beside the hand-written test: the candidate it scores highest, when that
score reaches :data:`ANCHOR_PROBABILITY` and the whole region below the body is in the image; when the two name
different bodies there is no anchor, and since 2026-12-05 (sixth session) a body the test names and this score does
not confirm is no anchor either.

Measured (docs/findings.md, "A sacrum that looks like one" and "Real slices in the lumbosacral classifier's
training"): on held-out generated spines it names L5 right on every slice and film; with the test as two readers the
confident wrong levels on 24 generated films fell from 11 to 4. Trained on generated spines alone it transferred
poorly to the real slices (the true L5 scored >= 0.5 on two of nine); with the real slices of the other patients in
training (each patient's slices analysed by a network trained without that patient, ``benchmarks/bench_sagittal.py
--folds``) it scores the true L5 0.99-1.00 on 7 of the 9, naming it where the test misses it on A062055_19001127
(thin, pale sacrum behind a vacuum disc): real lumbar levels 30 -> 35 of 40, no wrong anchor. Retrained when the
analysis began to report more boxes on the real slices (upper thoracic bodies found magnified, S1 below L5): the same
held-out lumbar figure, all levels 92 of 113.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Sequence, Union

import numpy as np

from ..grading.patches import gaussian_channel
from .fracture import body_axes, normalise_patch

#: Network input side in pixels (divisible by 16).
PATCH_SIZE = 64
#: Extent of the patch along the body's axis (body depths above and below its centre) and across it (in front of and
#: behind it). A level is about 0.9 body depths in the lumbar spine, so the patch holds the disc above, the body, and
#: two levels below it.
ABOVE_DEPTHS = 0.7
BELOW_DEPTHS = 2.7
ANTERIOR_DEPTHS = 1.3
POSTERIOR_DEPTHS = 1.3
#: Standard deviation of the marker channel in body depths.
MARKER_SIGMA_DEPTHS = 0.3
#: Least score of the highest-scoring candidate for it to be named L5.
ANCHOR_PROBABILITY = 0.5
#: Shipped weights and the model name stored in them.
WEIGHTS_NAME = "radiograph_lumbosacral.pt"
MODEL_NAME = "radiograph_lumbosacral"


def patch_grid(keypoints: np.ndarray, size: int = PATCH_SIZE, stretch: float = 1.0) -> np.ndarray:
    """``(size, size, 2)`` ``[column, row]`` image positions of the patch's pixels (module doc).

    Args:
        keypoints: (6, 2) ``[column, row]`` keypoints of the body.
        size: patch side in pixels.
        stretch: the content is shown this many times shorter along the body's axis (training augmentation).

    Raises:
        ValueError: keypoints without height or depth.

    """
    centre, down, back, depth = body_axes(keypoints)
    along = np.linspace(-ABOVE_DEPTHS, BELOW_DEPTHS, size) * depth * stretch
    across = np.linspace(-ANTERIOR_DEPTHS, POSTERIOR_DEPTHS, size) * depth
    rows, cols = np.meshgrid(along, across, indexing="ij")
    return centre[None, None] + rows[..., None] * down[None, None] + cols[..., None] * back[None, None]


def cut_patch(image01: np.ndarray, keypoints: np.ndarray, size: int = PATCH_SIZE, stretch: float = 1.0) -> np.ndarray:
    """The normalised ``(size, size)`` patch of one candidate body (outside the image counts as the median).

    Raises:
        ValueError: keypoints without height or depth.

    """
    from scipy.ndimage import map_coordinates

    points = patch_grid(keypoints, size, stretch)
    patch = map_coordinates(np.asarray(image01, dtype=np.float32), [points[..., 1], points[..., 0]], order=1,
                            mode="constant", cval=np.nan)
    return normalise_patch(patch)


def pooled(patch: np.ndarray, size: int) -> np.ndarray:
    """``patch`` averaged down to ``size`` pixels a side (a whole divisor of its side)."""
    factor = patch.shape[0] // size
    if factor <= 1:
        return patch
    return patch.reshape(size, factor, size, factor).mean(axis=(1, 3)).astype(np.float32)


def model_input(patch: np.ndarray) -> np.ndarray:
    """``(2, S, S)``: the patch and a Gaussian marking the body at its place in the patch."""
    size = patch.shape[0]
    span = ABOVE_DEPTHS + BELOW_DEPTHS
    row = (size - 1) * ABOVE_DEPTHS / span
    column = (size - 1) * ANTERIOR_DEPTHS / (ANTERIOR_DEPTHS + POSTERIOR_DEPTHS)
    marker = gaussian_channel(size, (row, column), MARKER_SIGMA_DEPTHS * size / span)
    return np.stack([np.asarray(patch, dtype=np.float32), marker])


def save_model(model, path: Union[str, Path], *, meta: Optional[Dict] = None, manifest: bool = False,
               description: str = "") -> Path:
    """Write a checkpoint of a GradingNet or GradingEnsemble trained on lumbosacral patches."""
    from ..grading.classifier import save_network

    return save_network(model, path, MODEL_NAME,
                        {"above_depths": ABOVE_DEPTHS, "below_depths": BELOW_DEPTHS,
                         "anterior_depths": ANTERIOR_DEPTHS, "posterior_depths": POSTERIOR_DEPTHS},
                        meta=meta, manifest=manifest, description=description)


def load_model(weights: Union[str, Path, None] = None, device: Optional[str] = None):
    """The network with trained weights (cached; ``weights_only`` loading, SHA-256 checked).

    Raises:
        WeightsError: missing or corrupted weights.

    """
    from ..grading.classifier import load_network

    return load_network(str(weights or WEIGHTS_NAME), MODEL_NAME, device)


def l5_probabilities(image01: np.ndarray, keypoints: Sequence[np.ndarray], model=None) -> np.ndarray:
    """Probability that each candidate body is L5 (NaN where its keypoints have no height or depth).

    Args:
        image01: the :func:`~.gate2d.body_window` image.
        keypoints: per candidate, (6, 2) ``[column, row]`` keypoints.
        model: a trained network; default: the shipped weights.

    """
    import torch

    out = np.full(len(keypoints), np.nan)
    if not len(keypoints):
        return out
    model = model if model is not None else load_model()
    size = int(model.config["patch_size"])
    inputs, usable = [], []
    for i, points in enumerate(keypoints):
        try:
            inputs.append(model_input(pooled(cut_patch(image01, points, PATCH_SIZE), size)))
            usable.append(i)
        except ValueError:
            continue
    if not inputs:
        return out
    device = next(model.parameters()).device
    with torch.no_grad():
        values = model.fracture_probability(torch.from_numpy(np.stack(inputs)).to(device)).cpu().numpy()
    out[usable] = values
    return out
