"""Per-vertebra fracture probabilities for an analysis (Husseini et al. 2020) and the pipeline stage.

:func:`fracture_probabilities` cuts the Husseini et al. 2020, §3 patch of every vertebra T1-L6 of a result from the
CT straightened along the analysis' centre-line (the pipeline's own straightening re-sampled on the
patch grid), runs the trained network and returns level -> probability of a grade 2-3 fracture.

Grade 1: the network was trained on healthy vs grade 2-3 only (Husseini et al. 2020, §1); it still scores every
vertebra, grade-1 ones included, and their probabilities tend to fall between the two classes. The
product does not threshold the probability: the Genant grade from the keypoints remains the
measurement, the probability is a second opinion (shown next to it), and the patient-level value
is the maximum over the vertebrae ("at least one fractured vertebra"; a noisy-or would treat the
vertebrae of one spine as independent, which they are not).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np

from .patches import extract_patch, model_input, normalise_hu, straighten_for_patches
from .regions import region_index

#: Shipped weights of the full regime (label pre-train -> grading -> fracture).
WEIGHTS_NAME = "grading_full.pt"
#: Model name stored in the checkpoints.
MODEL_NAME = "grading"
_LOADED: Dict[Tuple[str, str, str], Any] = {}


def save_model(model, path: Union[str, Path], *, regime: Optional[Dict] = None, meta: Optional[Dict] = None,
               manifest: bool = False, description: str = "") -> Path:
    """Write a checkpoint of a :class:`~VertebralFractureLib.grading.network.GradingNet` or ``GradingEnsemble``."""
    return save_network(model, path, MODEL_NAME, {"regime": regime or {}}, meta=meta, manifest=manifest,
                        description=description)


def save_network(model, path: Union[str, Path], model_name: str, config: Dict, *, meta: Optional[Dict] = None,
                 manifest: bool = False, description: str = "") -> Path:
    """Write a GradingNet / GradingEnsemble checkpoint named ``model_name`` (its network, members and ``config``)."""
    from ..nn.weights import save_weights

    config = {"network": dict(model.config), **config}
    if hasattr(model, "members"):
        config["members"] = len(model.members)
    return save_weights(model, path, name=model_name, config=config, meta=meta, manifest=manifest,
                        description=description)


def load_model(weights: Union[str, Path, None] = None, device: Optional[str] = None):
    """The network with trained weights (cached per file and device).

    Args:
        weights: a checkpoint path or shipped file name (default :data:`WEIGHTS_NAME`).
        device: torch device name; None picks CUDA when available.

    Raises:
        WeightsError: missing or corrupted weights.

    """
    return load_network(str(weights or WEIGHTS_NAME), MODEL_NAME, device)


def load_network(name: str, model_name: str, device: Optional[str] = None):
    """A GradingNet / GradingEnsemble checkpoint of ``model_name``, in eval mode on ``device``.

    Loaded ``weights_only`` after its SHA-256 is checked, cached per file and device; the file's SHA-256 is the
    model's ``sha256`` attribute.
    """
    from ..nn.device import pick_device
    from ..nn.weights import load_weights, resolve, sha256_of
    from .network import network_from_checkpoint

    torch_device = pick_device(device)
    key = (name, model_name, str(torch_device))
    if key not in _LOADED:
        model = network_from_checkpoint(load_weights(name, model=model_name)).to(torch_device)
        model.sha256 = sha256_of(resolve(name))
        _LOADED[key] = model
    return _LOADED[key]


def _patch_source(source) -> Tuple[Any, Any]:
    """(straightened spine on the patch grid, result) from an Analysis or a (straightened, result) pair."""
    if isinstance(source, tuple):
        straightened, result = source
        return straightened, result
    result = source.result
    image = getattr(source, "image", None)
    curve = None
    if getattr(source, "straightened", None) is not None:
        curve = source.straightened.curve.points
    elif getattr(source, "centreline", None) is not None and len(source.centreline.points) >= 2:
        curve = source.centreline.points
    elif len(result.vertebrae) >= 2:
        curve = np.array([v.centroid for v in result.vertebrae])  # spline through the centroids (§3)
    if image is None or curve is None:
        return getattr(source, "straightened", None), result
    return straighten_for_patches(image, curve), result


def fracture_probabilities(source, model=None, *, device: Optional[str] = None,
                           weights: Union[str, Path, None] = None, batch: int = 32) -> Dict[str, float]:
    """Probability of a grade 2-3 fracture for every vertebra T1-L6 of a result (Husseini et al. 2020).

    Args:
        source: a pipeline ``Analysis`` (its CT is re-straightened along its centre-line on the patch
            grid) or a pair ``(straightened, result)`` (patches cut from that straightened volume).
        model: a :class:`~VertebralFractureLib.grading.network.GradingNet`; default: the shipped weights.
        device: torch device for the default model.
        weights: checkpoint instead of the shipped one.
        batch: patches per forward pass.

    Returns:
        Level name -> probability (0-1). Cervical, sacral and 2D (radiograph) vertebrae are left out.

    """
    import torch

    straightened, result = _patch_source(source)
    if result is None or result.frame != "LPS" or straightened is None:
        return {}
    vertebrae = [v for v in result.vertebrae if region_index(v.label) is not None]
    if not vertebrae:
        return {}
    model = model if model is not None else load_model(weights, device)
    model.eval()
    model_device = next(model.parameters()).device
    inputs = np.stack([model_input(normalise_hu(extract_patch(straightened, v.centroid))) for v in vertebrae])
    probabilities = []
    with torch.no_grad():
        for start in range(0, len(inputs), batch):
            x = torch.from_numpy(inputs[start:start + batch]).to(model_device)
            probabilities.append(model.fracture_probability(x).cpu().numpy())
    values = np.concatenate(probabilities)
    return {v.label: float(p) for v, p in zip(vertebrae, values)}
