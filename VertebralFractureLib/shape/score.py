"""The vertebral abnormality score of Botros et al. 2022 (Botros et al., section 2) and its pipeline stage.

For each vertebral body the contextual model (:mod:`VertebralFractureLib.shape.network`)
predicts, from the masks of two neighbours on each side, the body's expected healthy shape and
orientation in a crop laid along the column (:mod:`VertebralFractureLib.shape.crops`). The score
is the surplus volume of that prediction over the actual body,

    surplus = sum_x g(x) * max(0, p(x) - a(x)),    fraction = surplus / sum_x g(x) * p(x),

with p the predicted probability, a the actual body's occupancy (both in the crop) and g a 3D
Gaussian weight centred on the predicted body and aligned with the column axes: narrow along the
antero-posterior axis (sigma :data:`SIGMA_PITCH` [1] column pitches) to suppress anteroposterior
differences, wide along the superior axis so height loss counts fully. Dividing by the weighted
predicted volume normalises by vertebra size; the score is ``100 * min(1, fraction / scale)``
(``scale`` stored with the weights).

Settings chosen on a synthetic calibration set (columns 5100-5139, fractures included; separate
from the training columns 0-199 and the test columns 6000-6039): among the Gaussian widths tried,
sigma = (0.6, 0.2, 0.3) pitches (superior, antero-posterior, lateral) separated grade >= 2 best
(wider, or no, weighting let the prediction's antero-posterior errors dominate, as Botros et al. 2022 argues);
``scale`` = 0.3, i.e. a body missing 30 % of its weighted expected volume (mid grade-2 height
loss) scores 100.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import numpy as np

from ..geometry import ImageGeometry
from .crops import CROP_SHAPE, PITCH_VOXELS, BodyPose, CropFrame, context_stack, crop_frame, neighbours

#: Gaussian sigma along (superior, posterior, lateral), in column pitches.
SIGMA_PITCH = (0.6, 0.2, 0.3)
#: Default weighted surplus fraction that maps to a score of 100.
DEFAULT_SCALE = 0.3
#: Shipped weights of the contextual shape model.
WEIGHTS_NAME = "abnormality_shape.pt"
#: Model name in the checkpoints.
MODEL_NAME = "abnormality"


def gaussian_weight(probability: np.ndarray, sigma_pitch: Tuple[float, float, float] = SIGMA_PITCH,
                    pitch_voxels: float = PITCH_VOXELS) -> np.ndarray:
    """3D Gaussian weight in crop voxels ``(t, u, w)``, centred on the centroid of ``probability``."""
    shape = probability.shape
    total = float(probability.sum())
    axes = [np.arange(n, dtype=np.float32) for n in shape]
    if total > 1e-6:
        centre = [float((probability.sum(axis=tuple(j for j in range(3) if j != i)) * axes[i]).sum() / total)
                  for i in range(3)]
    else:
        centre = [(n - 1) / 2 for n in shape]
    weight = np.ones(shape, np.float32)
    for i in range(3):
        profile = np.exp(-0.5 * ((axes[i] - centre[i]) / (sigma_pitch[i] * pitch_voxels)) ** 2)
        weight = weight * profile.reshape([-1 if j == i else 1 for j in range(3)])
    return weight


def surplus_fraction(predicted: np.ndarray, actual: np.ndarray, **kwargs: Any) -> float:
    """Weighted surplus volume of predicted over actual body / weighted predicted volume (Botros et al. 2022, §2)."""
    weight = gaussian_weight(predicted, **kwargs)
    expected = float((weight * predicted).sum())
    if expected <= 1e-6:
        return 0.0
    return float((weight * np.maximum(predicted - actual, 0.0)).sum() / expected)


def score_from_fraction(fraction: float, scale: float = DEFAULT_SCALE) -> float:
    """Abnormality 0-100 from the weighted surplus fraction."""
    return float(100.0 * min(1.0, max(0.0, fraction / scale)))


class AbnormalityModel:
    """The trained contextual shape model with its crop and score settings.

    Args:
        network: a :class:`~VertebralFractureLib.shape.network.ShapeModel`.
        config: checkpoint config (``scale``, ``sigma_pitch``, ``crop_shape``, ``pitch_voxels``...).
        name: what to record in ``result.models``.

    """

    def __init__(self, network, config: Optional[Dict[str, Any]] = None, name: str = "abnormality") -> None:
        self.network = network.eval()
        self.config = dict(config or {})
        self.name = name

    @property
    def scale(self) -> float:
        """Surplus fraction mapped to 100."""
        return float(self.config.get("scale", DEFAULT_SCALE))

    @property
    def sigma_pitch(self) -> tuple:
        """Gaussian sigmas in pitches."""
        return tuple(self.config.get("sigma_pitch", SIGMA_PITCH))

    @classmethod
    def load(cls, name_or_path: str = WEIGHTS_NAME, device: Optional[str] = None) -> AbnormalityModel:
        """Read weights (SHA-256 checked against the manifest for shipped files).

        Raises:
            WeightsError: missing or corrupted weights.

        """
        from ..nn.device import pick_device
        from ..nn.weights import load_weights, resolve
        from .network import ShapeModel

        checkpoint = load_weights(name_or_path, model=MODEL_NAME)
        network = ShapeModel(checkpoint["config"].get("channels", (6, 12, 24)))
        network.load_state_dict(checkpoint["state_dict"])
        network.to(pick_device(None if device in (None, "auto") else device))
        return cls(network, checkpoint["config"], name=resolve(name_or_path).name)

    def predict(self, contexts: np.ndarray, batch: int = 8) -> np.ndarray:
        """Expected body probability ``(N, T, U, W)`` for contexts ``(N, 4, T, U, W)`` (0-1 floats)."""
        import torch

        device = next(self.network.parameters()).device
        outputs = []
        with torch.no_grad():
            for start in range(0, len(contexts), batch):
                x = torch.as_tensor(np.ascontiguousarray(contexts[start : start + batch]), dtype=torch.float32)
                outputs.append(self.network.predict(x.to(device)).cpu().numpy())
        return np.concatenate(outputs) if outputs else np.zeros((0, *CROP_SHAPE), np.float32)

    def score(self, predicted: np.ndarray, actual: np.ndarray) -> Tuple[float, float]:
        """(score 0-100, weighted surplus fraction) of one body."""
        fraction = surplus_fraction(predicted, actual, sigma_pitch=self.sigma_pitch)
        return score_from_fraction(fraction, self.scale), fraction


class _MaskSampler:
    """Occupancy of each body of a label volume at LPS points (linear interpolation)."""

    def __init__(self, bodies: Dict[str, Any], shape: tuple, geometry: ImageGeometry) -> None:
        self.bodies = bodies
        self.shape = shape
        self.geometry = geometry

    def __call__(self, level: str, points: np.ndarray) -> np.ndarray:
        from scipy import ndimage

        index = self.bodies[level].index
        low = np.maximum(index.min(axis=0) - 2, 0)
        high = np.minimum(index.max(axis=0) + 3, np.asarray(self.shape))
        box = np.zeros(tuple(high - low), np.float32)
        box[tuple((index - low).T)] = 1.0
        continuous = self.geometry.lps_to_index(points.reshape(-1, 3))[:, ::-1] - low
        values = ndimage.map_coordinates(box, continuous.T, order=1, mode="constant", cval=0.0)
        return values.reshape(points.shape[:-1]).astype(np.float32)


def body_poses(mask_array: np.ndarray, geometry: ImageGeometry, body_array: Optional[np.ndarray] = None
               ) -> Tuple[Dict[str, Any], Dict[str, BodyPose]]:
    """Bodies of a mask (those cut by the image border left out) with endplate-refined axes (as in :mod:`.measure`)."""
    from .body_axes import find_bodies
    from .measure import refine_axes

    # bodies cut by the image border are neither scored nor used as context (treated as missing)
    bodies = {level: body for level, body in find_bodies(mask_array, geometry, body_array).items()
              if not body.body_cut}
    volume = np.zeros(mask_array.shape, np.float32)
    poses = {}
    for level, body in bodies.items():
        volume[tuple(body.index.T)] = 1.0
        points = geometry.index_to_lps(body.index[:, ::-1].astype(float))
        radius = float(np.linalg.norm(points - body.centre, axis=1).max()) + 2 * max(geometry.spacing)
        refine_axes(body, volume, geometry, radius)
        volume[tuple(body.index.T)] = 0.0
        poses[level] = BodyPose(body.centre, body.superior, body.posterior)
    return bodies, poses


def mask_crops(mask_array: np.ndarray, geometry: ImageGeometry, body_array: Optional[np.ndarray] = None
               ) -> Tuple[list, np.ndarray, np.ndarray, Dict[str, CropFrame], Dict[str, list]]:
    """Context crops of every body of a mask.

    Returns:
        levels, contexts (N, 4, T, U, W), actual bodies (N, T, U, W), crop frames and context levels per level.

    """
    bodies, poses = body_poses(mask_array, geometry, body_array)
    sampler = _MaskSampler(bodies, mask_array.shape, geometry)
    levels, contexts, actual, frames, context_levels = [], [], [], {}, {}
    present = list(bodies)
    for level in present:
        context = neighbours(level, present)
        frame = crop_frame(level, poses, context)
        channels, body = context_stack(level, frame, context, sampler)
        levels.append(level)
        contexts.append(channels)
        actual.append(body)
        frames[level] = frame
        context_levels[level] = context
    if not levels:
        return [], np.zeros((0, 4, *CROP_SHAPE), np.float32), np.zeros((0, *CROP_SHAPE), np.float32), {}, {}
    return levels, np.stack(contexts), np.stack(actual), frames, context_levels


def abnormality_scores(mask_image, result=None, model: Optional[AbnormalityModel] = None, *, body_mask=None,
                       device: Optional[str] = None) -> Dict[str, float]:
    """Abnormality 0-100 of every vertebral body of a labelled mask (Botros et al. 2022, section 2).

    Args:
        mask_image: SimpleITK label image (VerSe labels; whole vertebrae or bodies) or a path.
        result: optional :class:`~VertebralFractureLib.schema.SpineResult`; its vertebrae with
            a scored level get ``abnormality`` (and ``extra["shape"]``) filled in.
        model: the contextual model (default: the shipped weights).
        body_mask: optional body mask on the same grid (see :func:`.body.find_bodies`).
        device: torch device for the shipped model (``None``/``"auto"``: CUDA when present).

    Returns:
        level -> score 0-100, cranio-caudal (a body without any neighbour in the mask is not scored).

    Raises:
        WeightsError: when the shipped weights are missing or corrupted.

    """
    from .measure import mask_arrays

    array, geometry, body_array = mask_arrays(mask_image, body_mask)
    model = model or AbnormalityModel.load(device=device)
    levels, contexts, actual, _, context_levels = mask_crops(array, geometry, body_array)
    predicted = model.predict(contexts)
    scores: Dict[str, float] = {}
    for index, level in enumerate(levels):
        if not any(context_levels[level]):
            if result is not None:
                result.warnings.append(f"abnormality: {level} has no neighbour in the mask; not scored")
            continue
        score, fraction = model.score(predicted[index], actual[index])
        scores[level] = round(score, 2)
        if result is not None and level in result.labels:
            vertebra = result.vertebra(level)
            vertebra.abnormality = scores[level]
            vertebra.extra["shape"] = {"surplus_fraction": round(fraction, 4),
                                       "context_levels": [c for c in context_levels[level] if c]}
    if result is not None:
        result.models["abnormality"] = model.name
    return scores
