"""Level centroids on a radiograph from the Gartland et al. 2025 heatmaps: ``locate_levels``.

Each heatmap layer's centroid is its maximum (Gartland et al. 2025, §2: "the centroid location for each heatmap
layer was extracted"), refined to sub-pixel precision by a parabola through the logarithms of the
maximum and its two neighbours along each axis (exact for a Gaussian), mapped back to the
radiograph's pixels. The peak value is the confidence; layers
whose peak stays below the model's presence threshold are reported absent by :func:`locate_levels`.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np

from .transform import prepare

_CACHE: dict = {}


def heatmap_peaks(heatmaps: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Per layer: sub-pixel maximum ``[column, row]`` (C, 2) and peak value (C,)."""
    heatmaps = np.asarray(heatmaps, dtype=np.float64)
    channels, rows, cols = heatmaps.shape
    points = np.zeros((channels, 2))
    values = np.zeros(channels)
    for c in range(channels):
        r, k = np.unravel_index(int(np.argmax(heatmaps[c])), (rows, cols))
        values[c] = heatmaps[c, r, k]
        points[c] = [k + _offset(heatmaps[c, r, :], k), r + _offset(heatmaps[c, :, k], r)]
    return points, values


def _offset(line: np.ndarray, i: int) -> float:
    """Sub-pixel offset of a maximum at ``i`` of a 1D profile (log-parabola, clipped to half a pixel)."""
    if i == 0 or i == len(line) - 1:
        return 0.0
    a, b, c = line[i - 1], line[i], line[i + 1]
    if min(a, b, c) <= 1e-6:
        return 0.0
    la, lb, lc = np.log(a), np.log(b), np.log(c)
    curvature = la - 2 * lb + lc
    if curvature >= -1e-12:
        return 0.0
    return float(np.clip(0.5 * (la - lc) / curvature, -0.5, 0.5))


def _model(model):
    if model is not None:
        return model
    if "default" not in _CACHE:
        from .model import CentroidModel

        _CACHE["default"] = CentroidModel.load()
    return _CACHE["default"]


def predict_heatmaps(image2d: np.ndarray, model=None, pixel_mm: Optional[float] = None):
    """The level heatmaps (C, H, W) of a radiograph and their :class:`.transform.Frame` (heatmap pixels)."""
    import torch

    model = _model(model)
    config = model.config
    x, frame = prepare(image2d, config["mode"], config["size"], pixel_mm or config["native_mm"], config["native_mm"])
    heat_frame = frame.coarser(int(config.get("heatmap_stride", 1)))
    from ..nn.device import module_device

    with torch.no_grad():
        out = model.net(torch.from_numpy(x)[None, None].to(module_device(model.net)))[0].cpu().numpy()
    return out[:, : heat_frame.shape[0], : heat_frame.shape[1]], heat_frame


def predict_centroids(image2d: np.ndarray, model=None, pixel_mm: Optional[float] = None) -> Dict[str, tuple]:
    """Every layer's peak: level -> (column, row, peak value), in the image's pixels, present or not."""
    model = _model(model)
    heatmaps, frame = predict_heatmaps(image2d, model, pixel_mm)
    points, values = heatmap_peaks(heatmaps)
    points = frame.to_image(points)
    return {level: (float(p[0]), float(p[1]), float(v)) for level, p, v in zip(model.levels, points, values)}


def locate_levels(image2d: np.ndarray, model=None, pixel_mm: Optional[float] = None,
                  threshold: Optional[float] = None) -> Dict[str, Tuple[float, float, float]]:
    """Centroids of the levels T4 ... L4 visible on a lateral radiograph (Gartland et al. 2025).

    Args:
        image2d: 2D array ``[row, column]``, row 0 superior, column 0 anterior.
        model: a :class:`.model.CentroidModel` (default: the shipped UNet-L2 weights).
        pixel_mm: pixel size, used only by a native-resolution model.
        threshold: minimum peak value for a level to count as present (default: the model's).

    Returns:
        level -> (column, row, confidence) for the levels found, cranio-caudal.

    """
    model = _model(model)
    limit = model.config["presence_threshold"] if threshold is None else threshold
    found = predict_centroids(image2d, model, pixel_mm)
    return {level: (x, y, float(np.clip(v, 0.0, 1.0))) for level, (x, y, v) in found.items() if v >= limit}
