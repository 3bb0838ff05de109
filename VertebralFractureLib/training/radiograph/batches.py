"""Training batches of the Gartland et al. 2025 centroid net: view pairs cut from columns, augmented, with targets."""

from __future__ import annotations

from typing import Any, Dict, Sequence

import numpy as np

from ...radiograph.transform import gaussian_targets, prepare
from .columns import Column
from .views import View, cut_view_pair


def augment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Radiographic variation of a [0, 1] image: exposure (gamma), contrast and noise.

    (Blur is left out: the views are shrunk about fourfold, with anti-aliasing, on the way in.)
    """
    out = np.clip(np.asarray(image, dtype=np.float32), 0, 1) ** np.float32(rng.uniform(0.6, 1.6))
    out = out * rng.uniform(0.8, 1.2) + rng.uniform(-0.1, 0.1)
    return (out + rng.normal(0.0, rng.uniform(0.0, 0.06), out.shape)).astype(np.float32)


def view_sample(view: View, config: Dict[str, Any], rng: np.random.Generator = None) -> Dict[str, np.ndarray]:
    """Network input, heatmap targets and the labelled-channel flags of one view."""
    levels = list(config["levels"])
    image = view.image
    if rng is not None and config.get("appearance") == "clinical":  # a clinical film's look (appearance.py)
        from .appearance import clinical_appearance

        image = clinical_appearance(image, view.pixel_mm, rng)
    image = augment(image, rng) if rng is not None else image
    x, frame = prepare(image, config["mode"], config["size"], view.pixel_mm, config["native_mm"])
    stride = int(config.get("heatmap_stride", 1))
    heat_frame = frame.coarser(stride)
    labels = view.labels(levels)
    points = heat_frame.to_input(np.array(list(labels.values()), dtype=np.float64).reshape(-1, 2))
    shape = (x.shape[0] // stride, x.shape[1] // stride)
    heat = gaussian_targets(points, [levels.index(name) for name in labels], len(levels), shape, config["sigma_px"])
    labelled = np.array([name in labels for name in levels], dtype=bool)
    return {"image": x, "heatmaps": heat, "labelled": labelled}


def _stack_padded(arrays, fill: float = 0.0) -> np.ndarray:
    rows = max(a.shape[-2] for a in arrays)
    cols = max(a.shape[-1] for a in arrays)
    out = np.full((len(arrays), *arrays[0].shape[:-2], rows, cols), fill, dtype=np.float32)
    for k, a in enumerate(arrays):
        out[k, ..., : a.shape[-2], : a.shape[-1]] = a
    return out


def centroid_batch(columns: Sequence[Column], rng: np.random.Generator, pairs: int,
                   config: Dict[str, Any], extra_views: Sequence[View] = (), extra: int = 0) -> Dict[str, np.ndarray]:
    """``2 * pairs`` views (both views of ``pairs`` random columns) plus ``extra`` random ``extra_views``.

    Returns:
        ``image`` (B, 1, H, W), ``heatmaps`` (B, C, h, w) and ``labelled`` (B, C).

    """
    samples = []
    for _ in range(pairs):
        column = columns[int(rng.integers(len(columns)))]
        for view in cut_view_pair(column, rng, config["levels"]):
            samples.append(view_sample(view, config, rng))
    for _ in range(extra if len(extra_views) else 0):
        samples.append(view_sample(extra_views[int(rng.integers(len(extra_views)))], config, rng))
    return {
        "image": _stack_padded([s["image"][None] for s in samples], fill=-1.0),
        "heatmaps": _stack_padded([s["heatmaps"] for s in samples]),
        "labelled": np.stack([s["labelled"] for s in samples]),
    }
