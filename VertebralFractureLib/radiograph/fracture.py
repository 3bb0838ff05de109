"""Per-vertebra fracture probability on a lateral view: a 2D patch classifier (after Husseini et al. 2020, §3).

Why: on a lateral view the quality gate withholds a height loss whose keypoints are not clearly on the endplates
(:func:`VertebralFractureLib.quality.stage.withhold_unsupported_grades`), and a crushed endplate is exactly what the
gate cannot confirm: on 24 held-out generated views 17 of 21 moderate fractures were withheld, so the report said
"not assessed" where it should have asked for a look. The CT analysis answers this with a learned second opinion
(:mod:`VertebralFractureLib.verdict`: a withheld height loss + a validated learned score = "review"); this module
gives the radiograph path its own.

Patch (Husseini et al. 2020, §3 "Data Preparation": a 2D vertebral patch with the neighbours as context and a
Gaussian channel marking the vertebra of interest): cut from the :func:`~.gate2d.body_window` image (the 0-1 window
the detector and the gate read, so a CT slice in HU and an 8-bit film look alike) on the body's own axes from its
six keypoints: rows run from superior to inferior along the body's axis, columns from anterior to posterior (a view
facing right gives the same patch). The side is :data:`PATCH_DEPTHS` body depths, so no pixel size is needed. The
depth, not the height, sets the scale: a compression fracture lowers the height and keeps the depth, so scaling by
the height would enlarge the collapsed body back to a normal shape. Intensities are centred on the patch's median
and divided by its 10-90 % spread: the window differs between films, exposures and processing, the anatomy does not.

Network: :class:`VertebralFractureLib.grading.network.GradingNet` (Husseini et al. 2020, §2.3) at
:data:`PATCH_SIZE` pixels, a mean of three; trained on generated lateral views and sagittal CT slices, with the
normal bodies of the real reference CTs as real negatives
(:mod:`VertebralFractureLib.training.radiograph.train_fracture`, the command and figures in README.md), binary
cross-entropy on grade 0 against moderate and severe fractures (true G <= 0.75); the grading loss's metric stages are
not used here.
Like the CT classifier it never grades: :mod:`VertebralFractureLib.verdict` lets it raise a vertebra to "review"
only while its false-positive rate on real normal vertebral bodies (the real sagittal CT slices, ``benchmarks/
bench_sagittal.py``) is at most 10 %.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np

from ..grading.patches import gaussian_channel

#: Network input side in pixels (divisible by 16 for the four poolings of GradingNet).
PATCH_SIZE = 64
#: Patch side in body depths: the body (depth 1, height 0.6-0.9 of it) with its discs and parts of both neighbours.
PATCH_DEPTHS = 2.4
#: Standard deviation of the marker channel in body depths (about a third of the body).
MARKER_SIGMA_DEPTHS = 0.3
#: Least 10-90 % spread (window units) a patch is divided by (:func:`normalise_patch`).
MIN_SPREAD = 0.05
#: Shipped weights and the model name stored in them.
WEIGHTS_NAME = "radiograph_fracture.pt"
MODEL_NAME = "radiograph_fracture"


def body_axes(keypoints: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """``(centre, inferior unit axis, posterior unit axis, depth px)`` of a body from its six 2D keypoints.

    Args:
        keypoints: (6, 2) ``[column, row]`` in :data:`VertebralFractureLib.genant.KEYPOINT_NAMES` order.

    Raises:
        ValueError: keypoints without height or depth.

    """
    points = np.asarray(keypoints, dtype=np.float64).reshape(6, 2)
    down = points[1::2].mean(axis=0) - points[0::2].mean(axis=0)
    back = points[4:6].mean(axis=0) - points[0:2].mean(axis=0)
    depth = float(np.linalg.norm(back))
    if np.linalg.norm(down) < 1e-6 or depth < 1e-6:
        raise ValueError("the keypoints have no height or no depth")
    down = down / np.linalg.norm(down)
    back = back - back.dot(down) * down  # orthogonal to the axis, same side as the posterior wall
    if np.linalg.norm(back) < 1e-6:
        raise ValueError("the keypoints have no depth across the body's axis")
    return points.mean(axis=0), down, back / np.linalg.norm(back), depth


def cut_patch(image01: np.ndarray, keypoints: np.ndarray, size: int = PATCH_SIZE,
              side_depths: float = PATCH_DEPTHS, stretch: float = 1.0) -> np.ndarray:
    """The normalised ``(size, size)`` patch of one body (module doc); outside the image counts as the median.

    Args:
        image01: the body-windowed view (rows, columns).
        keypoints: (6, 2) ``[column, row]`` keypoints of the body.
        size: patch side in pixels.
        side_depths: patch side in body depths.
        stretch: the patch's content is shown this many times shorter along the body's axis (training: the
            height-to-depth proportion of normal bodies differs between people, levels and the generator, and the
            network must judge a body against its neighbours, which the stretch changes alike).

    """
    from scipy.ndimage import map_coordinates

    centre, down, back, depth = body_axes(keypoints)
    offsets = (np.arange(size) - (size - 1) / 2.0) * side_depths * depth / size
    rows, cols = np.meshgrid(offsets * stretch, offsets, indexing="ij")
    points = centre[None, None] + rows[..., None] * down[None, None] + cols[..., None] * back[None, None]
    patch = map_coordinates(np.asarray(image01, dtype=np.float32), [points[..., 1], points[..., 0]], order=1,
                            mode="constant", cval=np.nan)
    return normalise_patch(patch)


def normalise_patch(patch: np.ndarray) -> np.ndarray:
    """Centre on the median and divide by the 10-90 % spread; samples outside the image (NaN) become 0.

    The spread counts as at least :data:`MIN_SPREAD` (window units): a patch the window clipped flat (bone as dark
    as the lungs that set the window) must not have its noise blown up into structure.
    """
    patch = np.asarray(patch, dtype=np.float32)
    inside = patch[np.isfinite(patch)]
    if inside.size == 0:
        return np.zeros_like(patch)
    low, middle, high = np.percentile(inside, (10, 50, 90))
    out = (patch - middle) / max(float(high - low), MIN_SPREAD)
    return np.nan_to_num(out, nan=0.0).astype(np.float32)


def model_input(patch: np.ndarray) -> np.ndarray:
    """``(2, S, S)``: the patch and the Gaussian marking the vertebra of interest at its centre."""
    size = patch.shape[0]
    sigma = MARKER_SIGMA_DEPTHS * size / PATCH_DEPTHS
    marker = gaussian_channel(size, ((size - 1) / 2.0, (size - 1) / 2.0), sigma)
    return np.stack([np.asarray(patch, dtype=np.float32), marker])


def save_model(model, path: Union[str, Path], *, meta: Optional[Dict] = None, manifest: bool = False,
               description: str = "") -> Path:
    """Write a checkpoint of a GradingNet or GradingEnsemble trained on lateral-view patches."""
    from ..grading.classifier import save_network

    return save_network(model, path, MODEL_NAME, {"patch_depths": PATCH_DEPTHS,
                                                  "marker_sigma_depths": MARKER_SIGMA_DEPTHS},
                        meta=meta, manifest=manifest, description=description)


def load_model(weights: Union[str, Path, None] = None, device: Optional[str] = None):
    """The network with trained weights (cached per file and device; ``weights_only`` loading, SHA-256 checked).

    Raises:
        WeightsError: missing or corrupted weights.

    """
    from ..grading.classifier import load_network

    return load_network(str(weights or WEIGHTS_NAME), MODEL_NAME, device)


def fracture_probabilities(image01: np.ndarray, keypoints: Sequence[np.ndarray], model=None, *,
                           device: Optional[str] = None, batch: int = 64) -> np.ndarray:
    """Probability of a moderate or severe fracture (true G <= 0.75) of each body of a lateral view.

    Args:
        image01: the :func:`~.gate2d.body_window` image.
        keypoints: per body, (6, 2) ``[column, row]`` keypoints.
        model: a trained network; default: the shipped weights.
        device: torch device for the default model.
        batch: patches per forward pass.

    Returns:
        (n,) probabilities in 0-1 (NaN for a body whose keypoints have no height or depth).

    """
    import torch

    if len(keypoints) == 0:
        return np.zeros(0)
    model = model if model is not None else load_model(device=device)
    model.eval()
    size = int(model.config["patch_size"])
    inputs, usable = [], []
    for points in keypoints:
        try:
            inputs.append(model_input(cut_patch(image01, points, size)))
            usable.append(True)
        except ValueError:
            usable.append(False)
    out = np.full(len(keypoints), np.nan)
    if not inputs:
        return out
    stacked = np.stack(inputs)
    model_device = next(model.parameters()).device
    values = []
    with torch.no_grad():
        for start in range(0, len(stacked), batch):
            x = torch.from_numpy(stacked[start:start + batch]).to(model_device)
            values.append(model.fracture_probability(x).cpu().numpy())
    out[np.asarray(usable)] = np.concatenate(values)
    return out


def score_vertebrae(result, image01: np.ndarray, keypoints: Sequence[np.ndarray], model=None) -> None:
    """Set ``fracture_probability`` of every thoracic or lumbar vertebra of a lateral-view result.

    The network was trained on T1-L5 bodies, the ones Genant's method grades; a sacral or cervical level keeps None
    (the sacrum's wedge-shaped S1 scored as high as a fracture on the real slices), and so does a body placed above
    the column (:mod:`.column_template`: its box is the body below moved, not drawn on this body, so its patch is
    not this body's). ``result.models`` records the weights' SHA-256.

    Args:
        result: the :class:`~VertebralFractureLib.schema.SpineResult` (frame ``pixel``).
        image01: the :func:`~.gate2d.body_window` image.
        keypoints: the keypoints the heights are measured on, one (6, 2) array per vertebra of ``result``.
        model: a trained network; default: the shipped weights.

    """
    from ..grading.regions import region_index
    from .column_template import PLACED_CHECK

    scored = [i for i, v in enumerate(result.vertebrae)
              if region_index(v.label) is not None and PLACED_CHECK not in (v.checks or {})]
    if not scored:
        return
    model = model if model is not None else load_model()
    values = fracture_probabilities(image01, [keypoints[i] for i in scored], model)
    for i, value in zip(scored, values):
        result.vertebrae[i].fracture_probability = None if not np.isfinite(value) else round(float(value), 4)
    result.models["radiograph_fracture"] = getattr(model, "sha256", None) or "untracked"
