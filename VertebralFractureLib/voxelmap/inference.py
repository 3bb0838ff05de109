"""Voxel fracture map of a CT (Nicolaes et al. 2019 §3.2 "grid-sampling scheme during inference").

:func:`fracture_map` resamples the CT onto the band grid around the spine centre-line
(:mod:`.grid`), runs the dual-pathway network over it in slabs along the k (S-I) axis, skipping
slabs without band voxels, and returns the fracture probability p(fracture | x) as a SimpleITK
image (zero outside the band). Torch is imported only when a map is computed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from .band_grid import DEFAULT_BAND_MM, DEFAULT_SPACING, BandGrid, band_grid, image_bounds, sample_context
from .network_constants import FACTOR, FRACTURE, MARGIN

#: Shipped weights file.
WEIGHTS_NAME = "voxelmap.pt"
MODEL_NAME = "voxelmap"
_CACHE: dict = {}


def load_model(weights: Union[str, Path, None] = None, device: Optional[str] = None):
    """The trained network (cached per weights file and device), in eval mode.

    Args:
        weights: a ``.pt`` file; default the shipped ``voxelmap.pt`` (SHA-256 checked).
        device: ``"cpu"``, ``"cuda"``... (default: :func:`~VertebralFractureLib.nn.device.pick_device`).

    Returns:
        ``(model, checkpoint_meta)``; the model carries ``spacing`` and ``band_mm`` of its training.

    Raises:
        WeightsError: missing or corrupted weights.

    """
    from ..nn.device import pick_device
    from ..nn.weights import load_weights
    from .network import DualPathwayCNN

    dev = pick_device(None if device in (None, "auto") else device)
    key = (str(weights or WEIGHTS_NAME), str(dev))
    if key not in _CACHE:
        checkpoint = load_weights(weights or WEIGHTS_NAME, model=MODEL_NAME)
        config = checkpoint["config"]
        model = DualPathwayCNN(config.get("variant", "3d"), config.get("width"), config.get("fc", 64))
        model.load_state_dict(checkpoint["state_dict"])
        model.eval().to(dev)
        meta = dict(checkpoint.get("meta", {}))
        if weights is None:
            from ..nn.weights import read_manifest

            meta.setdefault("sha256", read_manifest().get(WEIGHTS_NAME, {}).get("sha256"))
        model.spacing = float(meta.get("spacing", DEFAULT_SPACING))
        model.band_mm = float(meta.get("band_mm", DEFAULT_BAND_MM))
        _CACHE[key] = (model, meta)
    return _CACHE[key]


def predict_probabilities(model, context: np.ndarray, mask: Optional[np.ndarray] = None, slab: int = 120,
                          progress=None) -> np.ndarray:
    """Class probabilities ``(3, k, j, i)`` for the output grid of a context array.

    Args:
        model: a :class:`~.network.DualPathwayCNN` in eval mode.
        context: normalised input ``[k + 2m, j + 2m, i + 2m]`` (m = :data:`MARGIN`); output sizes
            multiples of 3.
        mask: optional ``[k, j, i]`` band; slabs without band voxels are skipped (background).
        slab: output slab thickness along k (multiple of 3); each slab recomputes a 48-voxel margin,
            so thicker slabs are faster (120 voxels: about 0.2 GB of activations per slab).
        progress: optional callable ``(fraction, message)``.

    """
    import torch

    slab = max(FACTOR, FACTOR * (slab // FACTOR))
    shape = tuple(s - 2 * MARGIN for s in context.shape)
    out = np.zeros((3,) + shape, dtype=np.float32)
    out[0] = 1.0
    device = next(model.parameters()).device
    starts = list(range(0, shape[0], slab))
    with torch.inference_mode():
        for n, start in enumerate(starts):
            stop = min(start + slab, shape[0])
            if mask is not None and not mask[start:stop].any():
                continue
            piece = context[start:stop + 2 * MARGIN]
            pad = (-(stop - start)) % FACTOR
            if pad:
                piece = np.pad(piece, ((0, pad), (0, 0), (0, 0)), mode="edge")
            x = torch.from_numpy(np.ascontiguousarray(piece, dtype=np.float32))[None, None].to(device)
            probs = torch.softmax(model(x), dim=1)[0].float().cpu().numpy()
            out[:, start:stop] = probs[:, : stop - start]
            if progress is not None:
                progress((n + 1) / len(starts), "classifying voxels")
    if mask is not None:
        out[:, ~mask] = 0.0
        out[0, ~mask] = 1.0
    return out


def fracture_map(
    image,
    centreline_points: np.ndarray,
    model: Any = None,
    *,
    spacing: Optional[float] = None,
    band_mm: Optional[float] = None,
    on_ct_grid: bool = False,
    device: Optional[str] = None,
    progress=None,
    return_grid: bool = False,
):
    """Nicolaes et al. 2019, §3.2 voxel fracture probability map, limited to a band around the spine centre-line.

    Args:
        image: SimpleITK CT in HU (any orientation).
        centreline_points: (N, 3) LPS mm along the spine.
        model: a network, a weights path, or None for the shipped weights.
        spacing: grid spacing in mm (default: the model's training spacing).
        band_mm: band half-width in mm (default: the model's training band).
        on_ct_grid: resample the map onto the CT's own grid (linear) instead of the band grid.
        device: torch device for the shipped / path model.
        progress: optional callable ``(fraction, message)``.
        return_grid: also return the :class:`~.grid.BandGrid` and the class probabilities.

    Returns:
        Float32 SimpleITK image of p(fracture) in 0-1; with ``return_grid``,
        ``(image, grid, probabilities (3, k, j, i))``.

    """
    import SimpleITK as sitk

    if model is None or isinstance(model, (str, Path)):
        model = load_model(model, device)[0]
    spacing = float(spacing or getattr(model, "spacing", DEFAULT_SPACING))
    band_mm = float(band_mm or getattr(model, "band_mm", DEFAULT_BAND_MM))
    grid: BandGrid = band_grid(centreline_points, spacing, band_mm, bounds=image_bounds(image))
    context = sample_context(image, grid)
    if progress is not None:
        progress(0.05, "CT resampled to the band grid")
    probabilities = predict_probabilities(model, context, grid.mask, progress=progress)
    out = sitk.GetImageFromArray(probabilities[FRACTURE])
    g = grid.geometry
    out.SetOrigin(tuple(float(v) for v in g.origin))
    out.SetSpacing(tuple(float(v) for v in g.spacing))
    out.SetDirection(tuple(np.eye(3).flatten()))
    if on_ct_grid:
        from ..io.images import resample_like

        out = resample_like(out, image, default=0.0)
    if return_grid:
        return out, grid, probabilities
    return out
