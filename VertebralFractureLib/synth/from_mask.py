"""Real-shape mode: a CT-like volume drawn from a real vertebra mask with the generator's tissue model.

``generate_from_mask(mask_image, seed)`` takes a VerSe-labelled vertebra mask (for example
``sub-verse004_seg-vert_msk.nii.gz``, T9-L5), resamples it with nearest-neighbour onto an
identity-direction grid at the requested spacing, separates the vertebral bodies with
:func:`VertebralFractureLib.shape.body_axes.find_bodies`, and draws: body cortex and trabecular core,
posterior elements, discs between consecutive bodies, and the soft tissues of
:mod:`VertebralFractureLib.synth.body` around the column; then the scanner model and the DRR.
Surfaces come from signed Euclidean distances to the mask, so partial volume follows the
voxelised real shape. The keypoints of the truth are measured on the rendered masks with
:func:`VertebralFractureLib.shape.measure.measure_from_mask` (``source = "mask"``); optional
radiologists' grades are stored as ``commanded_grade``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

import numpy as np

from ..geometry import ImageGeometry
from ..io.images import geometry_of, image_from_array
from ..levels import level_from_label
from ..schema import SpineResult
from .body import Outline, draw_soft_tissue
from .column import centreline_through
from .drr import lateral_drr
from .generator import CENTRELINE_STEP_MM, SyntheticCase
from .grid import Grid, composite, fraction
from .params import SynthParams, SynthParamsError
from .tissue import draw_tissue, scanner

#: Largest gap (mm) between two bodies that is filled with disc.
MAX_DISC_MM = 16.0


@dataclass
class _Level:
    """The few facts about a level that the soft-tissue drawing needs."""

    name: str
    centre: np.ndarray
    depth: float
    width: float

    def centroid(self) -> np.ndarray:
        return self.centre


def _canonical_mask(mask_image, spacing: tuple, fov_xy_mm: tuple):
    """The mask resampled (nearest) onto an identity-direction grid around the column."""
    import SimpleITK as sitk

    geometry = geometry_of(mask_image)
    array = sitk.GetArrayViewFromImage(mask_image)
    index = np.argwhere(array > 0)
    if index.size == 0:
        raise SynthParamsError("the mask holds no labelled voxel")
    corners = np.array(np.meshgrid(*[[index[:, d].min(), index[:, d].max()] for d in (2, 1, 0)], indexing="ij"))
    points = geometry.index_to_lps(corners.reshape(3, -1).T)
    low, high = points.min(axis=0), points.max(axis=0)
    centre = (low + high) / 2
    spacing = np.asarray(spacing, float)
    # the whole mask stays inside, with 40 mm of tissue in front and 90 mm behind
    span = high - low
    extent = np.array([max(fov_xy_mm[0], span[0] + 60.0), max(fov_xy_mm[1], span[1] + 130.0), span[2] + 2 * spacing[2]])
    size = np.ceil(extent / spacing).astype(int) + 1
    # the column sits in the posterior part of the field of view, like in a real CT
    origin = centre - (size - 1) * spacing / 2
    origin[1] = high[1] + 90.0 - (size[1] - 1) * spacing[1]
    reference = sitk.Image([int(s) for s in size], sitk.sitkUInt8)
    reference.SetSpacing(spacing.tolist())
    reference.SetOrigin(origin.tolist())
    reference.SetDirection(np.eye(3).flatten().tolist())
    labels = sitk.Cast(mask_image, sitk.sitkUInt8) if mask_image.GetPixelID() != sitk.sitkUInt8 else mask_image
    resampled = sitk.Resample(labels, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    return resampled, Grid(tuple(origin), tuple(spacing), (int(size[2]), int(size[1]), int(size[0])))


def _signed_depth(mask: np.ndarray, spacing_zyx: tuple) -> np.ndarray:
    """Signed distance (mm, positive inside) to the boundary of a voxelised mask."""
    from scipy.ndimage import distance_transform_edt, gaussian_filter

    inside = distance_transform_edt(mask, sampling=spacing_zyx)
    outside = distance_transform_edt(~mask, sampling=spacing_zyx)
    half = 0.5 * min(spacing_zyx)
    depth = np.where(mask, inside - half, half - outside).astype(np.float32)
    return gaussian_filter(depth, 0.6, mode="nearest")  # soften the voxel staircase


def _draw_discs(hu: np.ndarray, body: np.ndarray, labels: list, spacing_z: float, value: float) -> np.ndarray:
    """Fill the gap between consecutive bodies (column by column) with disc; returns the disc mask."""
    disc = np.zeros(body.shape, bool)
    k_index = np.arange(body.shape[0]).reshape(-1, 1, 1)
    big = body.shape[0] + 1
    for upper, lower in zip(labels[:-1], labels[1:]):
        if lower - upper != 1 and not (upper == 19 and lower in (20, 28)):
            continue
        is_upper, is_lower = body == upper, body == lower
        bottom_of_upper = np.where(is_upper, k_index, big).min(axis=0)
        top_of_lower = np.where(is_lower, k_index, -1).max(axis=0)
        both = (bottom_of_upper < big) & (top_of_lower >= 0)
        gap = bottom_of_upper - top_of_lower
        ok = both & (gap > 1) & (gap * spacing_z <= MAX_DISC_MM)
        disc |= ok & (k_index > top_of_lower) & (k_index < bottom_of_upper)
    hu[disc] = value
    return disc


def generate_from_mask(
    mask_image,
    seed: int,
    *,
    spacing: tuple = (1.0, 1.0, 1.0),
    grades: Optional[Dict[str, int]] = None,
    **overrides: Any,
) -> SyntheticCase:
    """Render a real vertebra mask into a synthetic CT with the generator's tissue model.

    Args:
        mask_image: SimpleITK image with VerSe labels (whole vertebrae), any orientation.
        seed: random seed of the tissue values, soft tissues and noise.
        spacing: voxel size (x, y, z) of the output in mm.
        grades: optional known Genant grades per level (e.g. from ``verse19_genant_grades.csv``),
            stored as ``commanded_grade`` in the truth.
        **overrides: :class:`SynthParams` fields used here: ``osteoporosis``, ``noise_hu``,
            ``blur_mm``, ``fov_xy_mm``, ``radiograph``, ``radiograph_pixel_mm``, ``lungs``.

    Raises:
        SynthParamsError: for an empty mask or bad parameters.

    """
    import SimpleITK as sitk

    from ..shape.body_axes import find_bodies
    from ..shape.measure import measure_from_mask

    rng = np.random.default_rng(int(seed))
    params = SynthParams(preset="mask", spacing=tuple(float(s) for s in spacing), **overrides)
    if params.osteoporosis is None:
        params.osteoporosis = float(rng.uniform(0.0, 1.0))
    if params.noise_hu is None:
        params.noise_hu = float(rng.uniform(8.0, 30.0))
    if params.blur_mm is None:
        params.blur_mm = float(rng.uniform(0.5, 1.0))
    params.size_scale = 1.0
    params.validate()
    mask_image, grid = _canonical_mask(mask_image, params.spacing, params.fov_xy_mm)
    vert = sitk.GetArrayFromImage(mask_image)
    geometry = ImageGeometry(tuple(reversed(grid.shape)), grid.spacing, grid.origin, np.eye(3))
    bodies = find_bodies(vert, geometry)
    if not bodies:
        raise SynthParamsError("the mask holds no vertebra label (VerSe labels 1-26, 28)")
    body = np.zeros_like(vert)
    levels = []
    for level, found in bodies.items():
        body[tuple(found.index.T)] = found.label
        points = geometry.index_to_lps(found.index[:, ::-1].astype(float))
        extent = points.max(axis=0) - points.min(axis=0)
        levels.append(_Level(level, np.asarray(found.centre, float), float(extent[1]), float(extent[0])))
    tissue = draw_tissue(rng, float(params.osteoporosis))
    outline = Outline.from_column(levels, rng)
    hu = np.full(grid.shape, tissue.air, np.float32)
    draw_soft_tissue(grid, hu, outline, levels, tissue, rng, lungs=params.lungs)
    spacing_zyx = tuple(reversed(grid.spacing))
    labels = sorted(int(v) for v in np.unique(body) if v)
    _draw_discs(hu, body, labels, grid.spacing[2], tissue.disc)
    s = grid.s_mean
    for label in sorted(int(v) for v in np.unique(vert) if v):
        from scipy.ndimage import find_objects

        box = find_objects((vert == label).astype(np.uint8))[0]
        box = tuple(slice(max(b.start - 3, 0), min(b.stop + 3, n)) for b, n in zip(box, vert.shape))
        whole = _signed_depth(vert[box] == label, spacing_zyx)
        composite(
            hu,
            box,
            fraction(whole / s),
            fraction((whole - 1.6 * tissue.cortex_mm) / s),
            tissue.cortical * 0.9,
            tissue.marrow,
        )
        if label in labels:
            inner = _signed_depth(body[box] == label, spacing_zyx)
            core = fraction((inner - tissue.cortex_mm) / s)
            inside = fraction(inner / s)
            composite(hu, box, inside, core, tissue.cortical, tissue.trabecular)
    hu = scanner(hu, grid.spacing, params.blur_mm, params.noise_hu, rng)
    np.clip(hu, -1024, 3071, out=hu)
    ct = image_from_array(np.rint(hu).astype(np.int16), geometry)
    vert_image = image_from_array(vert.astype(np.uint8), geometry)
    body_image = image_from_array(body.astype(np.uint8), geometry)
    truth = measure_from_mask(vert_image, body_image)
    for v in truth.vertebrae:
        v.extra["verse_label"] = int(bodies[v.label].label)
        if grades and v.label in grades:
            v.extra["commanded_grade"] = int(grades[v.label])
    z_top = grid.origin[2] + (grid.shape[0] - 1) * grid.spacing[2]
    ordered = sorted(levels, key=lambda item: -item.centre[2])
    centreline = np.zeros((0, 3))
    if len(ordered) > 1:
        centreline = centreline_through(ordered, (grid.origin[2], z_top), CENTRELINE_STEP_MM)
    truth.input = {
        **geometry.to_dict(),
        "synthetic": {
            "seed": int(seed),
            "mode": "mask",
            "levels": [level_from_label(v) for v in labels],
            "params": params.to_dict(),
            "tissue_hu": tissue.to_dict(),
            "centreline_step_mm": CENTRELINE_STEP_MM,
            "centreline_lps": np.round(centreline, 3).tolist(),
        },
    }
    radiograph = radiograph_truth = None
    if params.radiograph:
        isocentre = np.mean([level.centre for level in levels], axis=0)
        radiograph, drr = lateral_drr(
            hu, grid, params.radiograph_pixel_mm, sid_mm=params.radiograph_sid_mm, centre=tuple(isocentre)
        )
        projected = SpineResult.from_dict(truth.to_dict())
        for v in projected.vertebrae:
            v.keypoints, v.centroid = drr.project(v.keypoints), drr.project(v.centroid)
        radiograph_truth = SpineResult(
            vertebrae=projected.vertebrae,
            frame="pixel",
            pixel_spacing=(drr.pixel_mm, drr.pixel_mm),
            input={"size": [drr.shape[1], drr.shape[0]], "pixel_spacing": [drr.pixel_mm, drr.pixel_mm]},
        )
    return SyntheticCase(
        ct,
        vert_image,
        body_image,
        truth,
        centreline,
        radiograph,
        radiograph_truth,
        params,
        seed=int(seed),
        tissue=tissue,
    )
