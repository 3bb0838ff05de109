"""Context crops for the contextual shape model of Botros et al. 2022 (Botros et al., section 2).

Each vertebral body is predicted from the masks of two neighbours on each side, stacked as four
channels (cranial 2, cranial 1, caudal 1, caudal 2; zeros where a neighbour is missing). The crop
is a box of :data:`CROP_SHAPE` voxels ``(t, u, w)`` (superior, posterior, lateral) laid along the
column, and defined from the neighbours only so that it leaks nothing of the body to predict:

* centre: midpoint of the two first neighbours' body centroids (the body's own centroid when one
  of them is missing);
* superior axis: the chord between those centroids (or from the one neighbour to the body);
  posterior axis: the mean of the neighbours' posterior axes, orthogonalised;
* voxel size: the column pitch (half the distance between the first neighbours) divided by
  :data:`PITCH_VOXELS`, so every level, from T1 to L5, looks the same size to the networks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from ..levels import level_index

#: Crop size in voxels: superior (t), posterior (u), lateral (w).
CROP_SHAPE = (24, 16, 16)
#: One column pitch (centroid-to-centroid distance) in crop voxels.
PITCH_VOXELS = 5.5
#: Neighbour positions of the four context channels.
CONTEXT_OFFSETS = (-2, -1, 1, 2)
#: Pitch (mm) used for a body without any neighbour.
DEFAULT_PITCH_MM = 30.0
#: Largest level gap still counted as adjacent (a missing T13 / L6 slot).
MAX_LEVEL_GAP = 2


@dataclass
class BodyPose:
    """What the crops need of one body: centroid and axes (LPS)."""

    centre: np.ndarray
    superior: np.ndarray
    posterior: np.ndarray


@dataclass
class CropFrame:
    """Placement of one crop: LPS centre, axes (columns lateral, posterior, superior), voxel size."""

    centre: np.ndarray
    rotation: np.ndarray
    spacing: float

    def points(self, shape: Sequence[int] = CROP_SHAPE) -> np.ndarray:
        """LPS positions of the crop's voxel centres, shape ``(T, U, W, 3)``."""
        t, u, w = (np.arange(n, dtype=np.float32) - (n - 1) / 2 for n in shape)
        tt, uu, ww = np.meshgrid(t, u, w, indexing="ij")
        local = np.stack([ww, uu, tt], axis=-1) * np.float32(self.spacing)
        return local @ self.rotation.T.astype(np.float32) + self.centre.astype(np.float32)


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-9)


def neighbours(level: str, present: Sequence[str]) -> List[Optional[str]]:
    """The levels of the four context channels (None where missing), walking the present levels."""
    ordered = sorted(present, key=level_index)
    position = ordered.index(level)
    out: List[Optional[str]] = []
    for offset in CONTEXT_OFFSETS:
        step = -1 if offset < 0 else 1
        current, found = position, None
        for _ in range(abs(offset)):
            following = current + step
            if not 0 <= following < len(ordered):
                found = None
                break
            if abs(level_index(ordered[following]) - level_index(ordered[current])) > MAX_LEVEL_GAP:
                found = None
                break
            current, found = following, ordered[following]
        out.append(found)
    return out


def crop_frame(level: str, poses: Dict[str, BodyPose], context: Sequence[Optional[str]]) -> CropFrame:
    """Crop placement for ``level`` from its first neighbours (module docstring)."""
    own = poses[level]
    above = poses[context[1]] if context[1] else None
    below = poses[context[2]] if context[2] else None
    if above is not None and below is not None:
        centre = 0.5 * (above.centre + below.centre)
        chord = above.centre - below.centre
        pitch = 0.5 * float(np.linalg.norm(chord))
    elif above is not None or below is not None:
        other = above if above is not None else below
        centre = own.centre
        chord = other.centre - own.centre if above is not None else own.centre - other.centre
        pitch = float(np.linalg.norm(chord))
    else:
        centre, chord, pitch = own.centre, own.superior, DEFAULT_PITCH_MM
    superior = _unit(chord)
    firsts = [p for p in (above, below) if p is not None] or [own]
    posterior = np.mean([p.posterior for p in firsts], axis=0)
    posterior = _unit(posterior - posterior.dot(superior) * superior)
    lateral = np.cross(superior, posterior)
    return CropFrame(np.asarray(centre, float), np.stack([lateral, posterior, superior], axis=1),
                     max(pitch, 5.0) / PITCH_VOXELS)


def context_stack(level: str, frame: CropFrame, context: Sequence[Optional[str]],
                  rasterise: Callable[[str, np.ndarray], np.ndarray], shape: Sequence[int] = CROP_SHAPE
                  ) -> tuple:
    """Four context channels and the body itself in one crop.

    Args:
        level: the body to predict.
        frame: its crop.
        context: the four neighbour levels (None = zeros).
        rasterise: ``(level, points (..., 3) LPS) -> occupancy 0-1`` of that level's body.
        shape: crop size.

    Returns:
        (context float32 ``(4, T, U, W)``, body float32 ``(T, U, W)``).

    """
    points = frame.points(shape)
    channels = np.zeros((len(CONTEXT_OFFSETS), *shape), np.float32)
    for index, name in enumerate(context):
        if name is not None:
            channels[index] = rasterise(name, points)
    return channels, rasterise(level, points).astype(np.float32)
