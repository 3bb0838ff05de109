"""Training and evaluation crops for the shape model, from the synthetic generator's columns.

The generator's column model (:func:`VertebralFractureLib.synth.column.build_column`) and its body
shape (:func:`VertebralFractureLib.synth.vertebrae.body_depths`) are evaluated directly on the
crop grid, so a crop costs milliseconds and needs no CT: the bodies are exactly those the
generator writes into ``body_msk.nii.gz``. Botros et al. 2022 (section 2) trains on unfractured vertebrae
only; fractured bodies still serve as neighbours. The end of the field of view is simulated by
cutting the column short of two, one or zero neighbours on each side.
"""

from __future__ import annotations

from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np

from ...shape.crops import CROP_SHAPE, BodyPose, context_stack, crop_frame, neighbours

#: Presets the samples are drawn from (all vertebral levels T1-L5 appear).
PRESETS = ("spine", "chest", "abdomen", "scoliosis")


def synthetic_column(seed: int, preset: str, fracture_prevalence: float = 0.2) -> list:
    """The vertebra models (:class:`~VertebralFractureLib.synth.column.VertebraModel`) of one synthetic column."""
    from ...synth.column import build_column
    from ...synth.generator import resolve_params
    from ...synth.morphometry import SYNTH_LEVELS
    from ...synth.params import params_for

    rng = np.random.default_rng(int(seed))
    params = resolve_params(params_for(preset, fracture_prevalence=fracture_prevalence), rng, {"fracture_prevalence"})
    top, bottom = SYNTH_LEVELS.index(params.top_level), SYNTH_LEVELS.index(params.bottom_level)
    return build_column(rng, params, list(SYNTH_LEVELS[top : bottom + 1]))


def body_fraction(model, points: np.ndarray, spacing: float) -> np.ndarray:
    """Partial-volume occupancy (0-1) of a synthetic body at LPS points, for voxels of ``spacing`` mm."""
    from ...synth.vertebrae import body_depths

    local = (np.asarray(points, np.float32) - model.origin.astype(np.float32)) @ model.rotation.astype(np.float32)
    radial, vertical = body_depths(model, local[..., 0], local[..., 1], local[..., 2])
    return np.clip(np.minimum(radial, vertical) / np.float32(spacing) + np.float32(0.5), 0.0, 1.0)


def body_pose(model) -> BodyPose:
    """Centroid (computed on a 1 mm grid in the body's frame) and axes of a synthetic body."""
    from ...synth.vertebrae import body_depths

    top = max(model.ha, model.hm, model.hp) / 2 + 1
    w, u, t = np.meshgrid(np.arange(-model.width / 2, model.width / 2, 1.0, dtype=np.float32),
                          np.arange(-model.depth / 2, model.depth / 2, 1.0, dtype=np.float32),
                          np.arange(-top, top, 1.0, dtype=np.float32), indexing="ij")
    radial, vertical = body_depths(model, w, u, t)
    inside = np.minimum(radial, vertical) >= 0
    local = np.array([w[inside].mean(), u[inside].mean(), t[inside].mean()])
    return BodyPose(model.to_world(local), model.rotation[:, 2].copy(), model.rotation[:, 1].copy())


def column_samples(models: list, rng: np.random.Generator, *, unfractured_only: bool = True,
                   cut_probability: float = 0.35, mirror: bool = True) -> Iterator[Tuple[np.ndarray, np.ndarray, Dict]]:
    """Crops of one column: (context (4, T, U, W), body (T, U, W), facts) per target body.

    Args:
        models: the column (cranio-caudal).
        rng: random generator (field-of-view cuts, mirroring).
        unfractured_only: skip fractured targets (training); keep them for evaluation.
        cut_probability: chance, per side, that the field of view ends just beyond the target.
        mirror: randomly mirror crops left-right (the lateral axis).

    """
    by_name = {m.name: m for m in models}
    poses = {m.name: body_pose(m) for m in models}
    names = [m.name for m in models]
    for position, name in enumerate(names):
        m = by_name[name]
        if unfractured_only and m.grade > 0:
            continue
        low, high = 0, len(names)
        if rng.random() < cut_probability:
            low = max(low, position - int(rng.integers(0, 2)))
        if rng.random() < cut_probability:
            high = min(high, position + 1 + int(rng.integers(0, 2)))
        present = names[low:high]
        context = neighbours(name, present)
        frame = crop_frame(name, poses, context)

        def rasterise(level: str, points: np.ndarray, spacing: float = frame.spacing) -> np.ndarray:
            return body_fraction(by_name[level], points, spacing)

        channels, body = context_stack(name, frame, context, rasterise)
        if mirror and rng.random() < 0.5:
            channels, body = channels[..., ::-1].copy(), body[..., ::-1].copy()
        facts = {"level": name, "grade": int(m.grade), "type": m.kind, "reduction": float(m.reduction),
                 "n_context": sum(c is not None for c in context)}
        yield channels, body, facts


def build_set(seeds: range, *, unfractured_only: bool = True, fracture_prevalence: float = 0.2,
              cut_probability: float = 0.35, limit: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray, List[Dict]]:
    """Stack the crops of many synthetic columns (presets cycled by seed).

    Returns:
        context uint8 ``(N, 4, T, U, W)`` and body uint8 ``(N, T, U, W)`` (occupancy x 255), facts.

    """
    contexts, bodies, facts = [], [], []
    for seed in seeds:
        models = synthetic_column(seed, PRESETS[seed % len(PRESETS)], fracture_prevalence)
        rng = np.random.default_rng(10_000 + seed)
        for channels, body, fact in column_samples(models, rng, unfractured_only=unfractured_only,
                                                   cut_probability=cut_probability):
            contexts.append(np.round(channels * 255).astype(np.uint8))
            bodies.append(np.round(body * 255).astype(np.uint8))
            facts.append({**fact, "seed": seed})
            if limit is not None and len(bodies) >= limit:
                return np.stack(contexts), np.stack(bodies), facts
    if not bodies:
        return np.zeros((0, 4, *CROP_SHAPE), np.uint8), np.zeros((0, *CROP_SHAPE), np.uint8), facts
    return np.stack(contexts), np.stack(bodies), facts
