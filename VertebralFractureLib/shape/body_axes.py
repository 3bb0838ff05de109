"""Vertebral bodies and their own axes from a labelled vertebra mask.

Botros et al. 2022 (Botros et al., section 2) works on vertebral-body masks; VerSe and TPTBox masks label
the whole vertebra (body plus posterior elements). The body is separated here as follows:

1. The column's local superior axis at each level is the chord between the centroids of the
   cranial and caudal neighbours (one side only at the ends); when the mask holds one vertebra, the
   direction along which its foramen is seen end-on (:func:`lone_axis`).
2. The vertebra is projected along that axis onto its axial plane (1 mm grid). The vertebral
   foramen (spinal canal) is a hole of that projection: the largest hole of at least
   :data:`MIN_CANAL_MM2` mm^2. The body is the part of the vertebra anterior to the canal's
   most anterior point (the posterior wall of the body), pedicles and arch fall behind it;
   the largest connected component is kept. The projection is redone once with the refined
   antero-posterior axis (body centre -> canal centre).
3. Without a canal (a body-only mask, e.g. TotalSegmentator-style or TPTBox sub-regions 49 + 50)
   the whole label is the body.
4. The body's first axes: superior = the column axis, posterior = from the body to the canal
   (or to the rest of the vertebra, or the patient's posterior when nothing else is known),
   orthogonalised; lateral = superior x posterior. The mid-sagittal plane goes through the body
   centroid, normal to the lateral axis. :func:`VertebralFractureLib.shape.measure.refine_axes`
   then turns the superior axis onto the bisector of the two endplates (principal axes are not
   used: lumbar bodies are about as high as deep, which makes them ill-defined).

The canal search starts from the image's posterior direction, so an image whose header has the
antero-posterior axis the wrong way round (the real VerSe sub-verse004 L2 crop of Bonelab's spineFE
benchmark: the arch lies at lower y than the body) would take the arch for the body: measured as given, that
normal L2 (radiologists' grade 0) came out with G 0.57, a confident grade 3. :func:`arch_side_ratio` reads the
anatomy instead: the body is the bulk of bone on one side of the canal, the arch (lamina, spinous process) the
lesser on the other. Over the canal's width, the bone in front of the canal over the bone behind its centre is
1.1-3.8 on 29 real vertebrae of three real masks (VerSe sub-verse004 T9-L5, TPTBox L2-L4, sample001 T1-L5;
1.13 on a grade-3 L1) and 0.24-0.79 on the same masks read with the axis reversed. When the median over a
mask's vertebrae is below :data:`REVERSED_RATIO` the mask is read with the antero-posterior axis reversed and
a warning says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence

import numpy as np

from ..geometry import ImageGeometry
from ..levels import level_from_label, level_index

#: Smallest area (mm^2) of a projection hole accepted as the vertebral foramen.
MIN_CANAL_MM2 = 25.0
#: Bone in front of the canal over bone behind it (:func:`arch_side_ratio`), median over the mask's vertebrae, below
#: which the image's posterior direction is taken to point anteriorly (module doc): between the 1.13 of a collapsed
#: real L1 read the right way and the 0.79 of the highest real vertebra read reversed, so that even a mask of one
#: vertebra is read either way round.
REVERSED_RATIO = 0.9
#: Largest tilt (degrees) of a lone vertebra's axis from the patient's superior axis, and the step of the search
#: (:func:`lone_axis`): lumbar lordosis tilts single bodies by up to about 20 degrees.
LONE_TILT_DEG = 24.0
LONE_TILT_STEP_DEG = 4.0
#: Half width (mm) across the canal's centre of the band :func:`arch_side_ratio` counts bone in.
SIDE_BAND_MM = 8.0
#: Note on every body of a mask read with the antero-posterior axis reversed.
REVERSED_NOTE = ("the vertebral arch lies in front of the body in the image's axes (bone in front of the canal over "
                 "bone behind it {ratio:.2f}): the image header's antero-posterior axis looks reversed; read from "
                 "the anatomy instead")
#: VerSe labels that are vertebrae (1-26, 28).
VERTEBRA_LABELS = tuple(list(range(1, 27)) + [28])
#: TPTBox sub-region labels of the vertebral body (49 cortex, 50 core).
SUBREG_BODY_LABELS = (49, 50)
_PATIENT_SUPERIOR = np.array([0.0, 0.0, 1.0])
_PATIENT_POSTERIOR = np.array([0.0, 1.0, 0.0])


@dataclass
class Body:
    """One vertebral body separated from a mask.

    Attributes:
        level: level name.
        label: VerSe label.
        centre: body centroid, LPS mm.
        superior, posterior, lateral: orthonormal body axes (LPS unit vectors).
        index: voxel indices ``(n, 3)`` in array order ``[k, j, i]`` of the body.
        separated: True when posterior elements were cut away (canal found).
        whole_centroid: centroid of the whole label, LPS mm.
        touches_border: the label reaches the image border (possibly cut by the field of view).
        body_cut: the body itself reaches the image border (cut by the field of view).
        notes: what was done, for warnings.
        reversed_header: the mask was read with the image's antero-posterior axis reversed (module doc).
        front_voxels: voxels of the label in front of the canal, before the body (their largest connected part)
            was kept: well above the body's own count when the label holds two bodies.

    """

    level: str
    label: int
    centre: np.ndarray
    superior: np.ndarray
    posterior: np.ndarray
    lateral: np.ndarray
    index: np.ndarray
    separated: bool = False
    whole_centroid: Optional[np.ndarray] = None
    touches_border: bool = False
    notes: list = field(default_factory=list)
    body_cut: bool = False
    reversed_header: bool = False
    front_voxels: int = 0

    @property
    def rotation(self) -> np.ndarray:
        """3 x 3 matrix with columns lateral, posterior, superior (local (w, u, t) -> LPS)."""
        return np.stack([self.lateral, self.posterior, self.superior], axis=1)


def _unit(vector: np.ndarray) -> np.ndarray:
    return np.asarray(vector, float) / max(float(np.linalg.norm(vector)), 1e-12)


def _orthogonal(vector: np.ndarray, axis: np.ndarray) -> np.ndarray:
    vector = np.asarray(vector, float)
    return _unit(vector - vector.dot(axis) * axis)


def column_axes(centroids: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Local superior axis of the column at each level from the neighbours' centroids.

    Args:
        centroids: level -> LPS centroid (any order).

    Returns:
        level -> unit vector pointing cranially (LPS), the chord between the nearest cranial and
        caudal neighbours; the patient's superior axis for a lone vertebra.

    """
    names = sorted(centroids, key=level_index)
    axes = {}
    for position, name in enumerate(names):
        above = names[position - 1] if position > 0 else name
        below = names[position + 1] if position + 1 < len(names) else name
        if above == below:
            axes[name] = _PATIENT_SUPERIOR.copy()
            continue
        chord = np.asarray(centroids[above], float) - np.asarray(centroids[below], float)
        axes[name] = _unit(chord) if np.linalg.norm(chord) > 1e-6 else _PATIENT_SUPERIOR.copy()
    return axes


def _projection(points: np.ndarray, centre: np.ndarray, posterior: np.ndarray, lateral: np.ndarray,
                step: float = 1.0):
    """Occupancy of the points projected on the (u, w) plane; returns grid, u0, w0."""
    u = (points - centre) @ posterior
    w = (points - centre) @ lateral
    u0, w0 = u.min() - 2 * step, w.min() - 2 * step
    iu = np.round((u - u0) / step).astype(int)
    iw = np.round((w - w0) / step).astype(int)
    grid = np.zeros((iu.max() + 3, iw.max() + 3), bool)
    grid[iu, iw] = True
    return grid, u0, w0


def _find_canal(points: np.ndarray, centre: np.ndarray, superior: np.ndarray, posterior: np.ndarray,
                spacing: float):
    """The vertebral foramen in the axial projection: (front u, centre u, centre w) or None."""
    found = _canal_hole(points, centre, superior, posterior, spacing)
    if found is None:
        return None
    _, u, w = found
    centre_w = float(w.mean())
    central = np.abs(w - centre_w) <= max(2.0, 0.25 * (w.max() - w.min()))
    return float(u[central].min()), float(u.mean()), centre_w


def _canal_hole(points: np.ndarray, centre: np.ndarray, superior: np.ndarray, posterior: np.ndarray,
                spacing: float):
    """The largest hole of the projection along ``superior``: (area mm^2, its u, its w); None under MIN_CANAL_MM2."""
    from scipy import ndimage

    lateral = np.cross(superior, posterior)
    step = 1.0
    grid, u0, w0 = _projection(points, centre, posterior, lateral, step)
    # close the sub-voxel gaps of a coarse grid so that the projection is a solid region
    radius = max(1, int(np.ceil(spacing / step / 2)))
    structure = ndimage.generate_binary_structure(2, 1)
    grid = ndimage.binary_closing(np.pad(grid, radius + 1), structure, iterations=radius)[
        radius + 1 : -radius - 1, radius + 1 : -radius - 1
    ]
    holes = ndimage.binary_fill_holes(grid) & ~grid
    labels, count = ndimage.label(holes)
    if count == 0:
        return None
    areas = ndimage.sum(holes, labels, index=np.arange(1, count + 1)) * step * step
    best = int(np.argmax(areas))
    if areas[best] < MIN_CANAL_MM2:
        return None
    iu, iw = np.nonzero(labels == best + 1)
    return float(areas[best]), iu * step + u0, iw * step + w0


def lone_axis(index: np.ndarray, geometry: ImageGeometry) -> np.ndarray:
    """The superior axis of a vertebra that has no neighbour in the mask: the direction the foramen is seen end-on.

    With neighbours the column's chord gives the axis (:func:`column_axes`); alone, the patient's superior axis
    can be :data:`LONE_TILT_DEG` off the vertebra's (lordosis, a tilted crop), and projected along it the laminae
    of a real L3 (TPTBox) closed the foramen, so the body was not separated. The axis is the tilt, within
    :data:`LONE_TILT_DEG` of the patient's superior axis, along which the foramen's hole in the projection is
    largest (a tube is open widest seen along its own axis); the patient's axis when no tilt shows a hole.

    Args:
        index: voxel indices ``[k, j, i]`` of the vertebra.
        geometry: the mask's geometry.
    """
    points = geometry.index_to_lps(index[:, ::-1].astype(float))
    centre = points.mean(axis=0)
    spacing = float(np.mean(geometry.spacing))
    best, axis = 0.0, _PATIENT_SUPERIOR.copy()
    # half a step off the image axes: projected exactly along a voxel axis, a grid coarser than the 1 mm projection
    # leaves a lattice of empty cells that joins the foramen's hole and makes it look larger than it is
    tilts = np.radians(np.arange(-LONE_TILT_DEG + LONE_TILT_STEP_DEG / 2, LONE_TILT_DEG, LONE_TILT_STEP_DEG))
    for forward in tilts:
        for sideways in tilts:
            superior = _unit(np.array([np.sin(sideways), np.sin(forward), 1.0]))
            hole = _canal_hole(points, centre, superior, _orthogonal(_PATIENT_POSTERIOR, superior), spacing)
            if hole is not None and hole[0] > best:
                best, axis = hole[0], superior
    return axis


def _largest_component(index: np.ndarray, shape) -> np.ndarray:
    from scipy import ndimage

    if len(index) == 0:
        return index
    low = index.min(axis=0)
    high = index.max(axis=0) + 1
    box = np.zeros(tuple(high - low), bool)
    box[tuple((index - low).T)] = True
    labels, count = ndimage.label(box)
    if count <= 1:
        return index
    sizes = ndimage.sum(box, labels, index=np.arange(1, count + 1))
    keep = labels[tuple((index - low).T)] == int(np.argmax(sizes)) + 1
    return index[keep]


def arch_side_ratio(index: np.ndarray, geometry: ImageGeometry, superior: np.ndarray,
                    posterior: np.ndarray = _PATIENT_POSTERIOR) -> Optional[float]:
    """Bone in front of the canal over bone behind its centre, ``posterior`` taken as the back (module doc).

    Counted over :data:`SIDE_BAND_MM` either side of the canal's centre: the body against the arch. Above 1 the
    body lies in front (``posterior`` is right), below 1 behind. None when no canal is found.

    Args:
        index: voxel indices ``[k, j, i]`` of one whole vertebra.
        geometry: the mask's geometry.
        superior: the column axis there.
        posterior: the direction taken as posterior (the image's, by default).
    """
    points = geometry.index_to_lps(index[:, ::-1].astype(float))
    centre = points.mean(axis=0)
    superior = _unit(superior)
    posterior = _orthogonal(posterior, superior)
    canal = _find_canal(points, centre, superior, posterior, float(np.mean(geometry.spacing)))
    if canal is None:
        return None
    front, canal_u, canal_w = canal
    u = (points - centre) @ posterior
    band = np.abs((points - centre) @ np.cross(superior, posterior) - canal_w) <= SIDE_BAND_MM
    return float(np.sum(band & (u < front))) / max(float(np.sum(band & (u > canal_u))), 1.0)


def separate_body(index: np.ndarray, geometry: ImageGeometry, superior_guess: np.ndarray,
                  level: str, label: int, shape: tuple, *, is_body: bool = False,
                  whole_centroid: Optional[np.ndarray] = None,
                  posterior_guess: np.ndarray = _PATIENT_POSTERIOR) -> Body:
    """Separate the vertebral body of one label and find its axes (module docstring, steps 2-4).

    Args:
        index: voxel indices ``[k, j, i]`` of the whole label.
        geometry: the mask's geometry.
        superior_guess: column axis at this level (LPS unit vector).
        level: level name.
        label: VerSe label.
        shape: array shape (for the border test and connectivity).
        is_body: the voxels are already the body (skip the canal search).
        whole_centroid: centroid of the whole vertebra when ``index`` is its body only (gives
            the posterior direction).
        posterior_guess: the direction the canal search starts from (the image's posterior unless
            :func:`find_bodies` found the header reversed).

    """
    points = geometry.index_to_lps(index[:, ::-1].astype(float))
    if whole_centroid is None:
        whole_centroid = points.mean(axis=0)
    spacing = float(np.mean(geometry.spacing))
    superior = _unit(superior_guess)
    posterior = _orthogonal(posterior_guess, superior)
    notes = []
    body_index = index
    front_voxels = len(index)
    separated = False
    canal = None if is_body else _find_canal(points, whole_centroid, superior, posterior, spacing)
    if canal is not None:
        for _ in range(2):
            front, canal_u, canal_w = canal
            lateral = np.cross(superior, posterior)
            canal_point = whole_centroid + canal_u * posterior + canal_w * lateral
            u = (points - whole_centroid) @ posterior
            keep = u < front
            if keep.sum() < 10:
                canal = None
                break
            body_centre = points[keep].mean(axis=0)
            new_posterior = _orthogonal(canal_point - body_centre, superior)
            refined = _find_canal(points, whole_centroid, superior, new_posterior, spacing)
            posterior = new_posterior
            if refined is None:
                break
            canal = refined
        if canal is not None:
            front = canal[0]
            keep = (points - whole_centroid) @ posterior < front
            front_voxels = int(keep.sum())
            body_index = _largest_component(index[keep], shape)
            separated = True
            notes.append("posterior elements removed at the canal")
    if not separated and not is_body:
        notes.append("no spinal canal found: the whole label is taken as the vertebral body")
    body_points = geometry.index_to_lps(body_index[:, ::-1].astype(float))
    centre = body_points.mean(axis=0)
    if separated:
        posterior = _orthogonal(canal_point - centre, superior)
    else:
        towards_arch = whole_centroid - centre
        towards_arch = towards_arch - towards_arch.dot(superior) * superior
        use_arch = np.linalg.norm(towards_arch) > 3.0
        posterior = _orthogonal(towards_arch if use_arch else posterior_guess, superior)
    lateral = np.cross(superior, posterior)
    border = bool(np.any(index == 0) or np.any(index == np.asarray(shape) - 1))
    cut = bool(np.any(body_index == 0) or np.any(body_index == np.asarray(shape) - 1))
    return Body(level, label, centre, superior, posterior, lateral, body_index, separated,
                whole_centroid, border, notes, cut, front_voxels=front_voxels)


def _label_indices(array: np.ndarray, labels: Sequence[int], slices: list) -> Dict[int, np.ndarray]:
    """Voxel indices (``k, j, i``) of each of ``labels`` in ``array``, found inside its box of ``slices``."""
    out = {}
    for value in labels:
        if value - 1 >= len(slices) or slices[value - 1] is None:
            continue
        box = slices[value - 1]
        local = np.argwhere(array[box] == value)
        out[value] = local + np.array([s.start for s in box])
    return out


def _label_boxes(array: np.ndarray) -> list:
    """Bounding boxes of the vertebra labels (``scipy.ndimage.find_objects``; one pass, no copy of integer arrays).

    Labels above the largest vertebra label (organs of a multi-structure label map) are not boxed.
    """
    from scipy import ndimage

    if not np.issubdtype(array.dtype, np.integer):
        array = np.rint(array).astype(np.int32)
    return ndimage.find_objects(array, max_label=max(VERTEBRA_LABELS))


def find_bodies(mask_array: np.ndarray, geometry: ImageGeometry, body_array: Optional[np.ndarray] = None
                ) -> Dict[str, Body]:
    """Every vertebral body of a VerSe-labelled mask, with its axes.

    Args:
        mask_array: ``array[k, j, i]`` with VerSe labels (whole vertebrae or bodies).
        geometry: its geometry.
        body_array: optional body mask on the same grid: VerSe labels per body, TPTBox sub-region
            labels (49, 50 = body) or any non-zero value (intersected with each vertebra label).

    Returns:
        level -> :class:`Body`, cranio-caudal; labels that are not vertebrae (e.g. 27) are ignored.

    """
    mask_array = np.asarray(mask_array)
    boxes = _label_boxes(mask_array)
    present = sorted(v for v in VERTEBRA_LABELS if v - 1 < len(boxes) and boxes[v - 1] is not None)
    indices = _label_indices(mask_array, present, boxes)
    centroids = {level_from_label(v): geometry.index_to_lps(idx[:, ::-1].mean(axis=0)) for v, idx in indices.items()}
    axes = column_axes(centroids)
    if len(indices) == 1:
        value, idx = next(iter(indices.items()))
        axes[level_from_label(value)] = lone_axis(idx, geometry)
    body_sets: Dict[int, np.ndarray] = {}
    if body_array is not None:
        body_array = np.asarray(body_array)
        values = set(int(v) for v in np.unique(body_array)) - {0}
        if values & set(SUBREG_BODY_LABELS):
            is_body = np.isin(body_array, SUBREG_BODY_LABELS)
        elif values <= set(VERTEBRA_LABELS) and len(values) > 1:
            is_body = None
        else:
            is_body = body_array > 0
        for value, idx in indices.items():
            if is_body is None:
                body_sets[value] = np.argwhere(body_array == value)
            else:
                body_sets[value] = idx[is_body[tuple(idx.T)]]
    ratios = [arch_side_ratio(idx, geometry, axes[level_from_label(value)]) for value, idx in indices.items()]
    ratios = [r for r in ratios if r is not None]
    reversed_header = bool(ratios) and float(np.median(ratios)) < REVERSED_RATIO
    posterior_guess = -_PATIENT_POSTERIOR if reversed_header else _PATIENT_POSTERIOR
    bodies = {}
    for value, idx in indices.items():
        level = level_from_label(value)
        given = body_sets.get(value)
        if given is not None and len(given) >= 10:
            body = separate_body(given, geometry, axes[level], level, value, mask_array.shape, is_body=True,
                                 whole_centroid=centroids[level], posterior_guess=posterior_guess)
            body.notes.append("body from the given body mask")
        else:
            body = separate_body(idx, geometry, axes[level], level, value, mask_array.shape,
                                 posterior_guess=posterior_guess)
        if reversed_header:
            body.reversed_header = True
            body.notes.append(REVERSED_NOTE.format(ratio=float(np.median(ratios))))
        bodies[level] = body
    return dict(sorted(bodies.items(), key=lambda item: level_index(item[0])))
