"""Six Genant keypoints, heights, G, grade and type measured from a vertebra (body) mask.

For each body (see :mod:`VertebralFractureLib.shape.body_axes` for its separation and axes) the mask
is resampled, with linear interpolation, on its mid-sagittal plane (``SAMPLE_MM`` steps, averaged
over a slab of +- ``SLAB_MM`` across it). The body occupies the part of that section above 0.5.
Its antero-posterior extent gives the anterior and posterior edges; the keypoint columns lie
``inset`` inside them (the synthetic generator's :data:`~VertebralFractureLib.synth.column.KEYPOINT_INSET_MM`
convention, at least ``INSET_FRACTION`` of the depth so that rounded rims of real bodies are not
taken as height loss) and in the middle. Along each column the superior and inferior endplate
points are where the interpolated mask crosses 0.5 (sub-voxel), so the three heights are measured
along the body's own superior axis as in Pisov et al. 2020 (section 2, eq. 1; Genant et al. 1993). G,
grade, type and the neighbour-relative reduction follow from :mod:`VertebralFractureLib.genant`
through :class:`~VertebralFractureLib.schema.SpineResult`.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np

from ..geometry import ImageGeometry
from ..levels import region_of
from ..quality.stage import withhold_grades, withhold_lordotic_wedges
from ..schema import SpineResult, Vertebra
from .body_axes import Body, find_bodies

#: Sampling step in the mid-sagittal plane (mm).
SAMPLE_MM = 0.25
#: Half thickness of the slab averaged across the mid-sagittal plane (mm).
SLAB_MM = 1.5
#: Keypoint inset from the anterior / posterior edge: the larger of this (mm) ...
INSET_MM = 1.5
#: ... and this fraction of the body depth.
INSET_FRACTION = 0.08
#: Half width (mm) of the band of columns averaged at each keypoint position.
COLUMN_HALF_WIDTH_MM = 0.5
#: Columns shorter than this fraction of the tallest one do not count for the body's edges.
EDGE_HEIGHT_FRACTION = 0.2
#: Gaps along a column shorter than this (mm) are bridged.
MAX_GAP_MM = 2.5
#: Largest turn (degrees) of the body axis away from the column axis by :func:`refine_axes`.
MAX_REFINE_DEG = 30.0
#: An outline steeper than this (degrees from the endplate direction) at a corner column's crossing
#: is a wall, not an endplate (Genant et al. 1993 place the heights on the endplates; 45 degrees
#: is the half-way point between the two).
WALL_SLOPE_DEG = 45.0
#: A corner column is moved off a wall by at most this fraction of the body depth (with the inset of
#: 8 % the column stays in the outer 30 %, well short of the middle column at 50 %).
MAX_WALL_SHIFT = 0.2
#: Smallest volume (mm^3) of a vertebra label that does not touch the image border: a third of the
#: smallest vertebral body (C3, about 15 x 16 x 14 mm = 3.4 cm^3; Panjabi et al. 1991), so that
#: body-only masks pass and specks do not (``measure`` refuses smaller labels).
MIN_VERTEBRA_MM3 = 1000.0
#: Largest volume (mm^3) of one vertebra label: about 3 x the largest whole lumbar vertebra
#: (L5 with its processes, 60-90 cm^3); a liver (1500 cm^3) or a whole-spine label fails.
MAX_VERTEBRA_MM3 = 250_000.0
#: Whole-label volume (mm^3) below which a label is a fragment.
FRAGMENT_MM3 = MIN_VERTEBRA_MM3
#: Largest voxel extent (mm) along a body's superior axis at which a height loss is reported. A binary mask
#: places each endplate anywhere within its voxel; a grade-1 loss is 20 % of a 20-30 mm body (4-6 mm), so at
#: coarser sampling two endplates' quantisation alone can make or hide a grade (VerSe sub-verse004 resampled
#: to 5 mm axial slices gives normal L4 and L5 grade 2). The CT path's limit for resolved endplates is the same
#: (:data:`VertebralFractureLib.keypoints.refine.CT_RESOLVED_MM`).
MAX_AXIS_VOXEL_MM = 2.0
#: Reasons of vertebrae that are shown but not graded (same wording as the CT quality gate).
REASON_CUT = "cut by the edge of the mask (field of view): the body is incomplete"
REASON_FRAGMENT = "fragment: the label is too small for a whole vertebra"


class MaskMeasureError(ValueError):
    """A mask from which no vertebra can be measured; the message says why."""


def _sample(volume: np.ndarray, geometry: ImageGeometry, points: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``volume[k, j, i]`` at LPS points (..., 3); 0 outside."""
    from scipy import ndimage

    index = geometry.lps_to_index(points.reshape(-1, 3))[:, ::-1]
    values = ndimage.map_coordinates(volume, index.T, order=1, mode="constant", cval=0.0)
    return values.reshape(points.shape[:-1])


def _crossing(profile: np.ndarray, start: int, step: int) -> Optional[float]:
    """Sub-sample position where ``profile`` falls below 0.5 walking from ``start`` by ``step``."""
    position = start
    while 0 <= position + step < len(profile):
        a, b = profile[position], profile[position + step]
        if a >= 0.5 > b:
            return position + step * (a - 0.5) / (a - b)
        position += step
    return None


def section(body: Body, volume: np.ndarray, geometry: ImageGeometry, radius: float, *, coronal: bool = False,
            step: float = SAMPLE_MM, slab_samples: int = 5) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The body mask on its mid-sagittal (or mid-coronal) plane.

    Returns:
        image ``[t, u]`` (mean over the slab), the u values (posterior, or lateral for
        ``coronal``) and the t values (superior), in mm from the body centre.

    """
    across, along = (body.posterior, body.lateral) if coronal else (body.lateral, body.posterior)
    u = np.arange(-radius, radius + step / 2, step)
    t = np.arange(-radius, radius + step / 2, step)
    offsets = np.linspace(-SLAB_MM, SLAB_MM, slab_samples)
    image = np.zeros((len(t), len(u)))
    tt, uu = np.meshgrid(t, u, indexing="ij")
    for w in offsets:
        points = body.centre + uu[..., None] * along + tt[..., None] * body.superior + w * across
        image += _sample(volume, geometry, points)
    return image / len(offsets), u, t


def _edges(image: np.ndarray, u: np.ndarray) -> Optional[Tuple[float, float]]:
    """Front and back u of the section: outermost columns at least ``EDGE_HEIGHT_FRACTION`` of the tallest."""
    heights = (image >= 0.5).sum(axis=0)
    if heights.max() == 0:
        return None
    columns = np.flatnonzero(heights >= EDGE_HEIGHT_FRACTION * heights.max())
    if len(columns) < 4:
        return None
    return float(u[columns[0]]), float(u[columns[-1]])


def _endplates_at(image: np.ndarray, t: np.ndarray, column: int, half: int) -> Optional[Tuple[float, float]]:
    """Superior and inferior endplate t at one column (mean of +- ``half`` columns), or None."""
    profile = image[:, max(0, column - half) : column + half + 1].mean(axis=1)
    runs = profile >= 0.5
    if not runs.any():
        return None
    edges = np.diff(np.r_[0, runs.astype(int), 0])
    starts, ends = list(np.flatnonzero(edges == 1)), list(np.flatnonzero(edges == -1) - 1)
    # runs separated by less than MAX_GAP_MM (ragged cut surfaces, voids) are one body
    gap = int(round(MAX_GAP_MM / float(t[1] - t[0])))
    index = 1
    while index < len(starts):
        if starts[index] - ends[index - 1] <= gap:
            ends[index - 1] = ends.pop(index)
            starts.pop(index)
        else:
            index += 1
    longest = int(np.argmax(np.asarray(ends) - np.asarray(starts)))
    top = _crossing(profile, int(ends[longest]), +1)
    bottom = _crossing(profile, int(starts[longest]), -1)
    if top is None or bottom is None:
        return None
    step = float(t[1] - t[0])
    return t[0] + top * step, t[0] + bottom * step


def _bisector_angle(image: np.ndarray, u: np.ndarray, t: np.ndarray) -> Optional[float]:
    """Angle (radians) of the bisector of the two endplate lines fitted in a section."""
    edges = _edges(image, u)
    if edges is None:
        return None
    front, back = edges
    margin = 0.15 * (back - front)
    columns = np.flatnonzero((u >= front + margin) & (u <= back - margin))[::2]
    samples = [(u[c], *_endplates_at(image, t, c, 1)) for c in columns if _endplates_at(image, t, c, 1)]
    if len(samples) < 5:
        return None
    us, tops, bottoms = np.asarray(samples).T
    slope_top = np.polyfit(us, tops, 1)[0]
    slope_bottom = np.polyfit(us, bottoms, 1)[0]
    return 0.5 * (np.arctan(slope_top) + np.arctan(slope_bottom))


def refine_axes(body: Body, volume: np.ndarray, geometry: ImageGeometry, radius: float, iterations: int = 2) -> None:
    """Turn the body's superior axis onto the bisector of its endplates (sagittal and coronal).

    Straight lines are fitted to the superior and inferior endplates in the central 70 % of the
    mid-sagittal and mid-coronal sections; the body frame is rotated so that its
    antero-posterior (lateral) axis bisects them, which is how the synthetic generator
    defines a wedged body's frame. The change is limited to :data:`MAX_REFINE_DEG` from the
    column axis.
    """
    initial = body.superior.copy()
    for _ in range(iterations):
        for coronal in (False, True):
            image, u, t = section(body, volume, geometry, radius, coronal=coronal, step=0.5, slab_samples=3)
            angle = _bisector_angle(image, u, t)
            if angle is None:
                continue
            along = body.lateral if coronal else body.posterior
            superior = -np.sin(angle) * along + np.cos(angle) * body.superior
            if np.degrees(np.arccos(np.clip(superior @ initial, -1, 1))) > MAX_REFINE_DEG:
                continue
            body.superior = superior / np.linalg.norm(superior)
            posterior = body.posterior - body.posterior.dot(body.superior) * body.superior
            body.posterior = posterior / np.linalg.norm(posterior)
            body.lateral = np.cross(body.superior, body.posterior)


def keypoints_of_body(body: Body, volume: np.ndarray, geometry: ImageGeometry, *, refine: bool = True
                      ) -> Tuple[np.ndarray, Dict]:
    """Six LPS keypoints of one body (genant.KEYPOINT_NAMES order) and facts about the section.

    Args:
        body: the body and its axes (refined in place when ``refine``).
        volume: float array ``[k, j, i]``, 1 inside this body, 0 elsewhere.
        geometry: the grid.
        refine: turn the axes onto the endplates' bisector first (:func:`refine_axes`).

    Raises:
        MaskMeasureError: when an endplate cannot be found in a keypoint column.

    """
    points = geometry.index_to_lps(body.index[:, ::-1].astype(float))
    radius = float(np.linalg.norm(points - body.centre, axis=1).max()) + 2 * max(geometry.spacing)
    if refine:
        refine_axes(body, volume, geometry, radius)
    image, u, t = section(body, volume, geometry, radius)
    edges = _edges(image, u)
    if edges is None:
        raise MaskMeasureError(f"{body.level}: the body has no extent in its mid-sagittal plane")
    u_front, u_back = edges
    depth = u_back - u_front
    inset = max(INSET_MM, INSET_FRACTION * depth)
    positions = (u_front + inset, 0.5 * (u_front + u_back), u_back - inset)
    half = max(1, int(round(COLUMN_HALF_WIDTH_MM / SAMPLE_MM)))
    grad_t, grad_u = np.gradient(image, t, u)
    keypoints, moved = [], {}
    for name, u_k, inward in zip(("anterior", "middle", "posterior"), positions, (1.0, 0.0, 0.0)):
        column = int(np.argmin(np.abs(u - u_k)))
        found = _endplates_at(image, t, column, half)
        limit = int(round(MAX_WALL_SHIFT * depth / SAMPLE_MM))
        shift = 0
        # an anterior column whose crossing lies on a steep wall (rounded or broken corner, anterior
        # osteophyte lip) is moved inwards until both crossings lie on an endplate; the posterior
        # wall is straight and its corners are the reference height, so that column stays
        while inward and found is not None and shift < limit and _on_wall(found, grad_t, grad_u, t, column):
            column += int(inward)
            shift += 1
            found = _endplates_at(image, t, column, half)
        if found is None:
            raise MaskMeasureError(f"{body.level}: no endplates along the {name} column of the mid-sagittal plane")
        if shift:
            moved[name] = round(shift * SAMPLE_MM, 2)
        base = body.centre + float(u[column]) * body.posterior
        keypoints += [base + found[0] * body.superior, base + found[1] * body.superior]
    facts = {"depth_mm": round(depth, 2), "inset_mm": round(inset, 2)}
    if moved:
        facts["moved_off_wall_mm"] = moved
    return np.asarray(keypoints), facts


def _on_wall(found: Tuple[float, float], grad_t: np.ndarray, grad_u: np.ndarray, t: np.ndarray, column: int) -> bool:
    """Whether either crossing of a column lies where the outline is steeper than :data:`WALL_SLOPE_DEG`."""
    limit = np.tan(np.radians(WALL_SLOPE_DEG))
    for position in found:
        row = int(np.clip(np.round((position - t[0]) / (t[1] - t[0])), 0, len(t) - 1))
        rows = slice(max(0, row - 2), row + 3)
        gt = float(np.abs(grad_t[rows, column]).max())
        gu = float(np.abs(grad_u[rows, column]).max())
        if gu > limit * max(gt, 1e-6):
            return True
    return False


def measure_bodies(bodies: Dict[str, Body], shape: tuple, geometry: ImageGeometry,
                   warnings: Optional[list] = None) -> list:
    """Vertebrae (schema) with mask-derived keypoints for every body that can be measured."""
    warnings = warnings if warnings is not None else []
    vertebrae = []
    volume = np.zeros(shape, np.float32)
    voxel_mm3 = float(np.prod(geometry.spacing))
    for level, body in bodies.items():
        reason = None
        if region_of(level) in ("C", "S"):
            reason = (f"{'cervical' if region_of(level) == 'C' else 'sacral'} level: Genant grading applies to "
                      "thoracic and lumbar vertebrae")
        elif body.body_cut:
            reason = REASON_CUT
        elif len(body.index) * voxel_mm3 < FRAGMENT_MM3:
            reason = REASON_FRAGMENT
        facts: Dict = {}
        keypoints = None
        if len(body.index) >= 10:
            volume[tuple(body.index.T)] = 1.0
            try:
                keypoints, facts = keypoints_of_body(body, volume, geometry)
            except MaskMeasureError as error:
                reason = reason or f"no endplates found on the mask ({str(error).split(': ', 1)[-1]})"
            finally:
                volume[tuple(body.index.T)] = 0.0
        if keypoints is None:
            keypoints = _box_keypoints(body, geometry)
        centroid = 0.5 * (keypoints[2] + keypoints[3])
        extra = {"mask": {**facts, "body_separated": body.separated,
                          "body_volume_mm3": round(float(len(body.index) * voxel_mm3), 1),
                          "voxel_along_axis_mm": round(_voxel_along(geometry, body.superior), 2)}}
        if body.touches_border:
            extra["mask"]["touches_border"] = True
            if not body.body_cut:
                warnings.append(f"mask: {level} touches the image border (its body does not)")
        vertebra = Vertebra(label=level, centroid=centroid, keypoints=keypoints, confidence=None,
                            source="mask", extra=extra)
        if reason is not None:
            vertebra.not_assessed(reason)
        vertebrae.append(vertebra)
    return vertebrae


def _voxel_along(geometry: ImageGeometry, axis: np.ndarray) -> float:
    """Sampling step (mm) of the grid along a unit LPS direction: sqrt(sum (a_i x spacing_i)^2).

    The spacing itself along an index axis, the same for every direction on an isotropic grid, and
    between the spacings for an oblique direction on an anisotropic one.
    """
    in_index_axes = np.linalg.inv(np.asarray(geometry.direction)) @ np.asarray(axis)
    return float(np.linalg.norm(in_index_axes * np.asarray(geometry.spacing)))


def _too_coarse(vertebra: Vertebra) -> Optional[str]:
    """Why a height loss measured on this vertebra's mask cannot be confirmed, or None."""
    extent = vertebra.extra.get("mask", {}).get("voxel_along_axis_mm")
    if extent is None or extent <= MAX_AXIS_VOXEL_MM:
        return None
    return (f"the mask is sampled every {extent:.1f} mm along the body's height (more than {MAX_AXIS_VOXEL_MM:g} mm): "
            f"the measured height loss (grade {vertebra.measure.grade}) cannot be confirmed")


def _box_keypoints(body: Body, geometry: ImageGeometry) -> np.ndarray:
    """Six points on the body's extent along its own axes: shown, never graded (no endplates found)."""
    points = geometry.index_to_lps(body.index[:, ::-1].astype(float)) - body.centre
    u, t = points @ body.posterior, points @ body.superior
    low_u, high_u = (float(u.min()), float(u.max())) if len(u) else (-1.0, 1.0)
    low_t, high_t = (float(t.min()), float(t.max())) if len(t) else (-1.0, 1.0)
    high_t, low_t = max(high_t, low_t + 1.0), min(low_t, high_t - 1.0)
    out = []
    for u_k in (low_u, 0.5 * (low_u + high_u), high_u):
        base = body.centre + u_k * body.posterior
        out += [base + high_t * body.superior, base + low_t * body.superior]
    return np.asarray(out)


def mask_arrays(mask_image, body_mask=None):
    """A vertebra label mask (image or path) and an optional body mask as arrays on one grid.

    Returns:
        ``(array[k, j, i], ImageGeometry, body array or None)``; the body mask is resampled
        (nearest neighbour) onto the vertebra mask's grid when they differ.
    """
    import SimpleITK as sitk

    from ..io.images import geometry_of, read_image, resample_like

    if not hasattr(mask_image, "GetSize"):
        mask_image = read_image(mask_image)
    geometry = geometry_of(mask_image)
    array = sitk.GetArrayFromImage(mask_image)
    body_array = None
    if body_mask is not None:
        if not hasattr(body_mask, "GetSize"):
            body_mask = read_image(body_mask)
        if not geometry_of(body_mask).same_grid(geometry):
            body_mask = resample_like(body_mask, mask_image, nearest=True)
        body_array = sitk.GetArrayFromImage(body_mask)
    return array, geometry, body_array


def measure_from_mask(mask_image, body_mask=None) -> SpineResult:
    """Genant measures of every vertebra of a labelled mask (no CT needed).

    Args:
        mask_image: SimpleITK label image with VerSe labels (whole vertebrae or bodies), or a path.
        body_mask: optional body mask on the same grid (VerSe labels, TPTBox sub-regions with
            49/50 = body, or binary), SimpleITK image or path.

    Returns:
        :class:`SpineResult` in LPS mm, ``source`` "mask", ``confidence`` None, measures computed.

    Raises:
        MaskMeasureError: when the mask holds no vertebra label.

    """
    array, geometry, body_array = mask_arrays(mask_image, body_mask)
    bodies = find_bodies(array, geometry, body_array)
    if not bodies:
        raise MaskMeasureError("the mask holds no vertebra label (VerSe labels 1-26, 28 expected)")
    warnings: list = []
    vertebrae = measure_bodies(bodies, array.shape, geometry, warnings)
    reversed_notes = {body.notes[-1] for body in bodies.values() if body.reversed_header}
    warnings += [f"mask: {note}" for note in sorted(reversed_notes)]
    unseparated = [level for level, body in bodies.items()
                   if not body.separated and not body.body_cut and body_array is None]
    if unseparated and len(unseparated) < len(bodies):
        warnings.append(f"mask: no spinal canal found for {', '.join(unseparated)}; whole label used as the body")
    result = SpineResult(vertebrae=vertebrae, frame="LPS",
                         input={**geometry.to_dict(), "orientation": geometry.orientation_code, "kind": "mask"},
                         warnings=warnings)
    result.models["keypoints"] = "mask"
    withhold_grades(result, _too_coarse, record=True)
    withhold_lordotic_wedges(result)
    return result
