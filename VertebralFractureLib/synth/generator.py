"""Synthetic spine cases with complete ground truth: CT, masks, keypoints, centre-line, radiograph.

``generate_case(seed, preset)`` builds a column (:mod:`.column`), draws it with the soft tissues
(:mod:`.vertebrae`, :mod:`.body`) on an identity-direction grid at the requested spacing,
applies the scanner model (:mod:`.tissue`), renders a lateral DRR (:mod:`.drr`) and returns a
:class:`SyntheticCase`. The same seed and parameters always give the same case.

Files written by :func:`write_case` (one folder per case):

* ``ct.nii.gz`` (int16 HU), ``vert_msk.nii.gz`` and ``body_msk.nii.gz`` (uint8, VerSe labels;
  ``vert_msk`` also holds the partial vertebrae at the edges of the view, label 26 includes the
  whole sacrum);
* ``truth.json``: :class:`~VertebralFractureLib.schema.SpineResult`, frame ``LPS``, the
  vertebrae entirely in view with ``source = "synthetic"`` and per vertebra ``commanded_grade``,
  ``commanded_type``, ``commanded_reduction`` and ``verse_label``; ``input`` holds the CT
  geometry and ``input["synthetic"]`` the parameters, the seed, the tissue HU values, the partial
  levels and the centre-line (``centreline_lps``, N x 3 mm);
* ``centreline.json``: the same centre-line alone, ``{"frame": "LPS", "step_mm", "points"}``;
* ``radiograph.png`` (8-bit lateral DRR) and ``radiograph.json`` (SpineResult, frame ``pixel``,
  ``[column, row]`` points, ``pixel_spacing``; see :mod:`.drr` for the pixel frame).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import numpy as np

from ..geometry import ImageGeometry
from ..io.atomic import atomic_write
from ..io.images import geometry_of, image_from_array, write_image
from ..schema import SpineResult, Vertebra
from .body import Outline, draw_metal, draw_pelvic_contents, draw_pelvis, draw_ribs, draw_soft_tissue
from .column import VertebraModel, build_column, centreline_through
from .drr import lateral_drr
from .grid import Grid
from .morphometry import SYNTH_LEVELS
from .params import PRESETS, SynthParams, params_for
from .tissue import Tissue, draw_tissue, scanner
from .vertebrae import (
    draw_body,
    draw_canal,
    draw_curved_sacrum,
    draw_disc,
    draw_posterior,
    draw_sacrum,
    sacral_path,
    tilt_s1,
)

CENTRELINE_STEP_MM = 1.0
#: Second seed word of the hospital profile's extra random stream.
HOSPITAL_STREAM = 0x484F5350
#: Seeds the curved sacrum's own random stream (with the case seed).
SACRUM_STREAM = 0x53414352


@dataclass
class SyntheticCase:
    """One generated case.

    Attributes:
        ct: SimpleITK int16 HU image (orientation from ``params.direction``).
        vert_mask: SimpleITK uint8 image, VerSe labels of whole vertebrae (partial ones included).
        body_mask: SimpleITK uint8 image, VerSe labels of the vertebral bodies only.
        truth: SpineResult, frame LPS, vertebrae entirely in view.
        centreline: (N, 3) LPS mm through the body centres, 1 mm steps, whole column in view.
        radiograph: lateral DRR, float32 in [0, 1] (bone bright), or None.
        radiograph_truth: SpineResult, frame pixel ([column, row]), or None.
        params: the parameters used, random fields resolved.
        seed: the seed.
        tissue: HU values used.
        timings_s: seconds per stage.

    """

    ct: Any
    vert_mask: Any
    body_mask: Any
    truth: SpineResult
    centreline: np.ndarray
    radiograph: Optional[np.ndarray]
    radiograph_truth: Optional[SpineResult]
    params: SynthParams
    seed: int = 0
    tissue: Optional[Tissue] = None
    timings_s: Dict[str, float] = field(default_factory=dict)

    def body_centres(self) -> Dict[str, np.ndarray]:
        """LPS centre (mm) of every vertebral body of ``body_mask``, by level, cranio-caudal (partial ones included)."""
        import SimpleITK as sitk

        from ..levels import level_from_label

        body = sitk.GetArrayViewFromImage(self.body_mask)
        centres = {}
        for label in sorted(int(v) for v in np.unique(body) if v):
            index = np.argwhere(body == label).mean(axis=0)[::-1]  # (z, y, x) -> (x, y, z)
            centres[level_from_label(label)] = np.asarray(
                self.body_mask.TransformContinuousIndexToPhysicalPoint(index.tolist()), dtype=float)
        return centres


def resolve_params(params: SynthParams, rng: np.random.Generator, explicit: set) -> SynthParams:
    """Fill every random field of ``params`` from ``rng`` (fields in ``explicit`` are kept)."""
    preset = PRESETS[params.preset]
    tops, bottoms = preset["levels"]
    if "top_level" not in explicit:
        params.top_level = str(rng.choice(tops))
    else:
        rng.random()
    if "bottom_level" not in explicit:
        params.bottom_level = str(rng.choice(bottoms))
    else:
        rng.random()
    draws = {
        "edge_fraction": rng.uniform(0.2, 0.7),
        "osteoporosis": rng.uniform(0.0, 1.0),
        "kyphosis_deg": rng.uniform(25.0, 50.0),
        "lordosis_deg": rng.uniform(35.0, 60.0),
        "size_scale": float(np.clip(rng.normal(1.0, 0.05), 0.88, 1.12)),
    }
    draws["radiograph_sid_mm"] = rng.uniform(1000.0, 1150.0)
    draws["noise_hu"] = rng.uniform(8.0, 70.0 if params.realism == "hospital" else 30.0)
    draws["blur_mm"] = rng.uniform(0.5, 1.0)
    direction = str(rng.choice(["LPS", "RAS", "LAS", "PIR", "oblique"]))
    if str(params.direction).upper() == "RANDOM":
        params.direction = direction
    low, high = params.extra.get("scoliosis_range", (0.0, 0.0))
    draws["scoliosis_deg"] = rng.uniform(low, high) if high > 0 else 0.0
    for name, value in draws.items():
        if getattr(params, name) is None:
            setattr(params, name, float(value))
    params.extra.setdefault("scoliosis_apex", float(rng.uniform(SYNTH_LEVELS.index("T8"), SYNTH_LEVELS.index("L1"))))
    params.extra.setdefault("scoliosis_side", float(rng.choice([-1.0, 1.0])))
    params.validate()
    return params


def _grid_for(models: List[VertebraModel], params: SynthParams, outline: Outline,
              floor_z: Optional[float] = None) -> Grid:
    """Field of view: the ground-truth set plus part of each neighbour; in-plane around the body.

    ``floor_z`` (LPS mm) lowers the bottom of the field of view to there (the whole curved sacrum in view).
    """
    truth = [m for m in models if m.in_truth]
    first, last = models.index(truth[0]), models.index(truth[-1])
    above, below = models[first - 1], models[last + 1]
    top_kp, bottom_kp = truth[0].keypoints(), truth[-1].keypoints()
    f = float(params.edge_fraction)
    z_high = top_kp[[0, 2, 4], 2].max() + above.disc + f * max(above.ha, above.hp)
    z_low = bottom_kp[[1, 3, 5], 2].min() - truth[-1].disc - f * max(below.ha, below.hp)
    if floor_z is not None:
        z_low = min(z_low, float(floor_z))
    sx, sy, sz = params.spacing
    fov_x, fov_y = params.fov_xy_mm
    nz = int(np.ceil((z_high - z_low) / sz)) + 1
    voxels = (fov_x / sx) * (fov_y / sy) * nz
    if voxels > params.max_voxels:
        shrink = np.sqrt(params.max_voxels / voxels)
        fov_x, fov_y = max(fov_x * shrink, 160.0), max(fov_y * shrink, 150.0)
    # anchored at the back: the skin behind the spine is in view, the front is cut if the body is deeper
    along = outline.at(np.linspace(z_low, z_high, 16))
    back_skin = float(np.max(along["cy"] + along["b"])) + 8.0
    centre_y = min(float(np.mean(along["cy"])), back_skin - fov_y / 2)
    centre_x = float(np.mean([m.centroid()[0] for m in truth]))
    nx, ny = int(round(fov_x / sx)), int(round(fov_y / sy))
    origin = (centre_x - (nx - 1) * sx / 2, centre_y - (ny - 1) * sy / 2, float(z_low))
    return Grid(origin, (sx, sy, sz), (nz, ny, nx))


def _reorient(image, direction: str):
    """The image in the requested orientation (exact for axis codes, resampled for ``oblique``)."""
    import SimpleITK as sitk

    code = direction.upper()
    if code == "LPS":
        return image
    if code == "OBLIQUE":
        angle = np.radians(12.0)
        rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
        size = np.asarray(image.GetSize())
        spacing = np.asarray(image.GetSpacing())
        centre = np.asarray(image.TransformContinuousIndexToPhysicalPoint(((size - 1) / 2).tolist()))
        origin = centre - rotation @ ((size - 1) / 2 * spacing)
        reference = sitk.Image([int(s) for s in size], image.GetPixelID())
        reference.SetSpacing(spacing.tolist())
        reference.SetOrigin(origin.tolist())
        reference.SetDirection(rotation.flatten().tolist())
        is_label = image.GetPixelID() == sitk.sitkUInt8
        interpolator = sitk.sitkNearestNeighbor if is_label else sitk.sitkLinear
        default = 0 if is_label else -1024
        return sitk.Resample(image, reference, sitk.Transform(), interpolator, default, image.GetPixelID())
    return sitk.DICOMOrient(image, code)


def _vertebra_entries(models: List[VertebraModel], project=None) -> List[Vertebra]:
    entries = []
    for m in models:
        if not m.in_truth:
            continue
        keypoints, centroid = m.keypoints(), m.centroid()
        if project is not None:
            keypoints, centroid = project(keypoints), project(centroid)
        entries.append(
            Vertebra(
                label=m.name,
                centroid=centroid,
                keypoints=keypoints,
                source="synthetic",
                extra={
                    "commanded_grade": int(m.grade),
                    "commanded_type": m.kind,
                    "commanded_reduction": round(float(m.reduction), 6),
                    "verse_label": int(m.label),
                },
            )
        )
    return entries


def generate_case(seed: int, preset: str = "spine", **overrides: Any) -> SyntheticCase:
    """Generate one synthetic case.

    Args:
        seed: random seed; the same seed, preset and overrides give the same case.
        preset: one of :data:`~VertebralFractureLib.synth.params.PRESETS`
            (``spine``, ``chest``, ``abdomen``, ``scoliosis``, ``radiograph``).
        **overrides: :class:`SynthParams` fields, e.g. ``spacing=(0.8, 0.8, 3.0)``,
            ``fracture_prevalence=0.5``, ``direction="RAS"``.

    Raises:
        SynthParamsError: for an unknown preset, field or an out-of-range value.

    """
    import SimpleITK as sitk

    started = time.perf_counter()
    timings: Dict[str, float] = {}
    rng = np.random.default_rng(int(seed))
    params = resolve_params(params_for(preset, **overrides), rng, set(overrides))
    top, bottom = SYNTH_LEVELS.index(params.top_level), SYNTH_LEVELS.index(params.bottom_level)
    truth_names = list(SYNTH_LEVELS[top : bottom + 1])
    models = build_column(rng, params, truth_names)
    # the hospital profile's extra draws come from a second generator, so the main sequence is unchanged
    hospital = np.random.default_rng([int(seed), HOSPITAL_STREAM]) if params.realism == "hospital" else None
    tissue = draw_tissue(rng, float(params.osteoporosis), hospital)
    sharp_fraction = 0.0
    if hospital is not None:
        sharp_fraction = float(hospital.uniform(0.3, 0.7))
        params.extra["sharp_noise_fraction"] = round(sharp_fraction, 4)
        params.extra["blood_hu"] = round(tissue.blood, 2)
    outline = Outline.from_column(models, rng)
    scale = float(params.size_scale)
    s1 = next((m for m in models if m.name == "S1"), None)
    sacral, floor_z = None, None
    if s1 is not None and params.sacrum == "curved":
        sacral_rng = np.random.default_rng([int(seed), SACRUM_STREAM])
        tilt_s1(s1, sacral_rng)
        sacral = sacral_path(s1, sacral_rng, scale)
        floor_z = float(s1.to_world(sacral[-1][0])[2]) - 30.0
    grid = _grid_for(models, params, outline, floor_z)
    timings["layout"] = time.perf_counter() - started

    t0 = time.perf_counter()
    hu = np.full(grid.shape, tissue.air, np.float32)
    vert = np.zeros(grid.shape, np.uint8)
    body = np.zeros(grid.shape, np.uint8)
    draw_soft_tissue(grid, hu, outline, models, tissue, rng, lungs=params.lungs)
    if sacral is not None and params.pelvis:
        draw_pelvic_contents(grid, hu, s1, sacral, tissue, scale, sacral_rng)
    timings["soft_tissue"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    draw_canal(grid, hu, models, tissue, scale)
    for upper, lower in zip(models[:-1], models[1:]):
        draw_disc(grid, hu, upper, lower, tissue)
    for m in models:
        if m.name != "S1":
            draw_posterior(grid, hu, vert, m, tissue, scale)
    if sacral is not None:
        # before the bodies: S1's own body then covers the rounded top of the sacral bodies' line
        draw_curved_sacrum(grid, hu, vert, s1, tissue, scale, sacral, sacral_rng)
    for m in models:
        draw_body(grid, hu, body, vert, m, tissue, rng)
    if sacral is not None:
        if params.pelvis:
            draw_pelvis(grid, hu, s1, tissue, scale)
    elif s1 is not None:
        draw_sacrum(grid, hu, vert, s1, tissue, scale)
        if params.pelvis:
            draw_pelvis(grid, hu, s1, tissue, scale)
    if params.ribs:
        draw_ribs(grid, hu, models, outline, tissue, scale)
    instrumented = draw_metal(grid, hu, models, rng, tissue, scale) if params.metal else []
    timings["bones"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    hu = scanner(hu, grid.spacing, params.blur_mm, params.noise_hu, rng, sharp_fraction, hospital)
    np.clip(hu, -1024, 3071, out=hu)
    timings["scanner"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    radiograph = radiograph_truth = None
    if params.radiograph:
        isocentre = np.mean([m.centroid() for m in models if m.in_truth], axis=0)
        radiograph, drr = lateral_drr(
            hu, grid, params.radiograph_pixel_mm, sid_mm=params.radiograph_sid_mm, centre=tuple(isocentre)
        )
        radiograph_truth = SpineResult(
            vertebrae=_vertebra_entries(models, drr.project),
            frame="pixel",
            pixel_spacing=(drr.pixel_mm, drr.pixel_mm),
            input={
                "size": [drr.shape[1], drr.shape[0]],
                "pixel_spacing": [drr.pixel_mm, drr.pixel_mm],
                "projection": (
                    f"lateral {'point-source' if drr.source else 'parallel-beam'} DRR; "
                    "column = anterior->posterior, row = superior->inferior; pixel spacing in the isocentre plane"
                ),
                "origin_lps": {"y0": drr.y0, "z_top": drr.z_top},
                "source": None
                if drr.source is None
                else dict(zip(("x_source", "y_centre", "z_centre", "sod_mm"), map(float, drr.source))),
                "sid_mm": float(params.radiograph_sid_mm or 0.0),
                **({"s1_keypoints_px": np.round(drr.project(s1.keypoints()), 3).tolist()} if sacral is not None
                   else {}),
            },
        )
    timings["radiograph"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    geometry = ImageGeometry(tuple(reversed(grid.shape)), grid.spacing, grid.origin, np.eye(3))
    ct = image_from_array(np.rint(hu).astype(np.int16), geometry)
    vert_image = image_from_array(vert, geometry)
    body_image = image_from_array(body, geometry)
    if params.direction.upper() != "LPS":
        ct, vert_image, body_image = (_reorient(image, params.direction) for image in (ct, vert_image, body_image))
        if ct.GetPixelID() != sitk.sitkInt16:
            ct = sitk.Cast(ct, sitk.sitkInt16)
    z_top = grid.origin[2] + (grid.shape[0] - 1) * grid.spacing[2]
    centreline = centreline_through(models, (grid.origin[2], z_top), CENTRELINE_STEP_MM)
    partial = [m.name for m in models if not m.in_truth and _in_view(m, grid)]
    truth = SpineResult(
        vertebrae=_vertebra_entries(models),
        frame="LPS",
        input={
            **geometry_of(ct).to_dict(),
            "synthetic": {
                "seed": int(seed),
                "params": params.to_dict(),
                "tissue_hu": tissue.to_dict(),
                "partial_levels": partial,
                **({"s1_keypoints_lps": np.round(s1.keypoints(), 3).tolist()} if sacral is not None else {}),
                "instrumented_levels": instrumented,
                "centreline_step_mm": CENTRELINE_STEP_MM,
                "centreline_lps": np.round(centreline, 3).tolist(),
            },
        },
    )
    timings["assemble"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - started
    truth.timings_s = {k: round(v, 4) for k, v in timings.items()}
    return SyntheticCase(
        ct=ct,
        vert_mask=vert_image,
        body_mask=body_image,
        truth=truth,
        centreline=centreline,
        radiograph=radiograph,
        radiograph_truth=radiograph_truth,
        params=params,
        seed=int(seed),
        tissue=tissue,
        timings_s=timings,
    )


def _in_view(m: VertebraModel, grid: Grid) -> bool:
    z = m.keypoints()[:, 2]
    z_top = grid.origin[2] + (grid.shape[0] - 1) * grid.spacing[2]
    return bool(z.max() >= grid.origin[2] and z.min() <= z_top)


def radiograph_uint8(image: np.ndarray) -> np.ndarray:
    """The DRR as 8-bit grey values."""
    return np.clip(np.rint(np.asarray(image, float) * 255.0), 0, 255).astype(np.uint8)


def write_case(case: SyntheticCase, folder: Union[str, Path], *, overwrite: bool = False) -> Path:
    """Write a case's files into ``folder`` (see the module docstring for the layout).

    Raises:
        ExistingFileError: if a file exists and ``overwrite`` is False.

    """
    import SimpleITK as sitk

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_image(case.ct, folder / "ct.nii.gz", overwrite=overwrite)
    write_image(case.vert_mask, folder / "vert_msk.nii.gz", overwrite=overwrite)
    write_image(case.body_mask, folder / "body_msk.nii.gz", overwrite=overwrite)
    atomic_write(folder / "truth.json", case.truth.to_json() + "\n", overwrite=overwrite)
    centreline = {"frame": "LPS", "step_mm": CENTRELINE_STEP_MM, "points": np.round(case.centreline, 3).tolist()}
    atomic_write(folder / "centreline.json", json.dumps(centreline) + "\n", overwrite=overwrite)
    if case.radiograph is not None and case.radiograph_truth is not None:
        picture = sitk.GetImageFromArray(radiograph_uint8(case.radiograph))
        picture.SetSpacing(tuple(float(s) for s in case.radiograph_truth.pixel_spacing))
        write_image(picture, folder / "radiograph.png", overwrite=overwrite, compress=False)
        atomic_write(folder / "radiograph.json", case.radiograph_truth.to_json() + "\n", overwrite=overwrite)
    return folder


def read_truth(folder: Union[str, Path]) -> tuple:
    """Read ``truth.json`` and ``centreline.json`` of a written case: (SpineResult, (N, 3) array)."""
    folder = Path(folder)
    truth = SpineResult.from_json((folder / "truth.json").read_text(encoding="utf-8"))
    data = json.loads((folder / "centreline.json").read_text(encoding="utf-8"))
    return truth, np.asarray(data["points"], float).reshape(-1, 3)
