"""Image checks of one proposed vertebral body: is there a vertebra where the six keypoints say?

Every check samples the CT itself (never the network's score) in the body's own frame, built
from its six keypoints (:class:`BodyFrame`): ``p`` posterior (anterior column -> posterior
column), ``s`` superior (inferior endplate -> superior endplate, made orthogonal to ``p``) and
``l = p x s`` (the patient's left for a normally oriented spine). Coordinates in that frame are
``u`` (along ``p``), ``t`` (along ``s``) and ``w`` (along ``l``), mm from the keypoints' mean.
Samples are trilinear (:func:`scipy.ndimage.map_coordinates`, order 1) and NaN outside the
image; no copy of the volume is made, so a check costs a few milliseconds on a 512 x 512 CT.

Each check returns a :class:`CheckResult`: a score in [0, 1] (0.5 is the pass mark), a one-line
reason a radiologist understands when it fails, and the measured values. The scores are linear
ramps between two documented values (:func:`ramp`); the thresholds, and where they come from,
are listed in :mod:`VertebralFractureLib.quality.gate`.

Anatomy: a vertebral body is trabecular bone (about 150-250 HU in young adults, below 100 HU in
osteoporosis; Link et al. 2002, Pickhardt et al. 2013) inside a thin cortical shell and the
cortical endplates, which a CT shows as a rim brighter than the core (partial-volumed cortex,
300-1000 HU). The spinal canal (CSF, cord, epidural fat: -100 to 60 HU) lies behind the body,
closed by the pedicles on both sides and the lamina behind it, and the posterior elements
(lamina, spinous process) lie behind the canal (Panjabi et al. 1991, 1992). A contrast-filled
heart or aorta (150-400 HU, Bae 2010), or the liver (50-130 HU), is homogeneous: no rim, no canal.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage

from ..genant import heights as genant_heights
from ..geometry import ImageGeometry
from ..implants import CEMENT_HU, CEMENT_MIN_MM3, cement_core
from ..levels import UnknownLevelError, level_index, normalise_level

# ----------------------------------------------------------------------------------------------
# Thresholds (their sources are documented in gate.py's module docstring).

#: Half-width (mm) of the lateral slab averaged into the mid-sagittal section (planes 2 mm apart).
SLAB_HALF_MM = 4.0
#: Rim window: profiles across each side of the keypoint box, from this far inside (mm) ...
RIM_INSIDE_MM = 4.0
#: ... to this far outside (mm).
RIM_OUTSIDE_MM = 2.0
#: Bone check ramps: rim-minus-core contrast (HU) scoring 0 and 1 ...
RIM_CONTRAST_HU = (10.0, 50.0)
#: ... and the rim's own HU (cortical bone, partial-volumed) scoring 0 and 1.
RIM_HU = (110.0, 170.0)
#: A core darker than this (HU) is fat or air, not marrow (even fatty osteoporotic marrow is > -50).
CORE_MIN_HU = -100.0

#: HU above which a sample counts as bone for the canal walls and the posterior elements.
BONE_HU = 200.0
#: HU below which a sample counts as canal content (CSF, cord, epidural fat; partial volume allowed).
CANAL_HU = 120.0
#: The canal is looked for this far (mm) behind the posterior wall ...
CANAL_SEARCH_MM = 30.0
#: ... as a run of low HU at least this long (mm) antero-posteriorly (canal depth 12-20 mm).
CANAL_MIN_MM = 5.0
#: Pedicles must close the canal within this half-width (mm) from the mid-line (canal width <= 27 mm).
CANAL_HALF_WIDTH_MM = 16.0
#: Posterior elements: bone area (mm^2) behind the canal scoring 0 and 1.
POSTERIOR_AREA_MM2 = (10.0, 40.0)
#: Posterior elements are looked for from this far behind the posterior wall (mm) ...
POSTERIOR_FROM_MM = 8.0
#: ... to this far (mm; canal 12-20 mm plus lamina and spinous process base).
POSTERIOR_TO_MM = 55.0
#: ... and within this half-width (mm) of the mid-line.
POSTERIOR_HALF_WIDTH_MM = 25.0

#: Size: ratio measured / published normal scoring 0 and 1 below, then 1 and 0 above.
SIZE_RATIO = (0.25, 0.5, 1.45, 1.8)

#: Endplate profile half-length (mm) along the body's superior axis.
ENDPLATE_SEARCH_MM = 12.0
#: Width (mm) of the Gaussian preference for edges near the keypoint (the strongest weighted edge wins).
ENDPLATE_PRIOR_MM = 6.0
#: Distance (mm) from the keypoint to the bone/disc edge scoring 1 and 0.
ENDPLATE_OFFSET_MM = (2.0, 4.0)
#: Thickest voxel extent (mm) along the body's superior axis at which the endplate check is decisive
#: (a hard check); beyond it a thoracic disc (4-6 mm) can fall within one slice and the edge vanish.
ENDPLATE_DECISIVE_MM = 3.0
#: Weakest edge (HU/mm) that counts as a bone/disc edge.
ENDPLATE_MIN_GRADIENT = 12.0

#: Field of view: the body box grown by this margin (mm) must lie inside the image.
FOV_MARGIN_MM = 2.0
#: Half-width of the body (mm) tested for the field of view: this fraction of the keypoint depth.
FOV_HALF_WIDTH_FRACTION = 0.6
#: Metal (and dense bone cement): HU at or above which a sample is not bone (cortical bone is 1000-2000 HU at full
#: resolution; titanium and steel reach the top of the CT's range), ...
METAL_HU = 2500.0
#: ... the volume (mm^3) of such samples in the body box and its pedicles that scores 1 and 0 (pass below 60) ...
METAL_MM3 = (20.0, 100.0)
#: ... and the region: body depths behind the posterior column (the pedicles, where screws enter) and half-width.
METAL_BEHIND_DEPTHS = 0.6
METAL_HALF_WIDTH_DEPTHS = 0.7

#: Neighbours: ratio of max heights (self / neighbour) scoring 0, 1, 1, 0.
NEIGHBOUR_HEIGHT_RATIO = (0.3, 0.5, 2.0, 3.3)
#: Neighbours: centre distance / mean max height per level step scoring 0, 1, 1, 0.
NEIGHBOUR_SPACING_RATIO = (0.85, 1.05, 1.75, 2.2)

#: Levels Genant's semi-quantitative method grades (Genant et al. 1993): T4-L4 in the original,
#: the project grades T1-L5 (as VerSe, Löffler et al. 2020); T13 and L6 are transitional.
GRADED_REGIONS = ("T", "L")

_SIDES = (("right", "left"), ("anterior", "posterior"), ("inferior", "superior"))


@dataclass
class CheckResult:
    """Outcome of one image check.

    Attributes:
        score: 0 (fails clearly) to 1 (passes clearly); 0.5 is the pass mark.
        reason: one sentence for a radiologist when the score is below 0.5, else None.
        values: what was measured (HU, mm), for reports and tests.

    """

    score: float
    reason: Optional[str] = None
    values: Dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Score at or above the pass mark 0.5."""
        return self.score >= 0.5


def ramp(x: float, low: float, high: float) -> float:
    """0 at ``low``, 1 at ``high``, linear between (decreasing when ``high < low``); 0 for NaN."""
    if not np.isfinite(x):
        return 0.0
    return float(np.clip((x - low) / (high - low), 0.0, 1.0))


def band(x: float, limits: Sequence[float]) -> float:
    """Trapezoid score: 0 at ``limits[0]``, 1 on ``[limits[1], limits[2]]``, 0 at ``limits[3]``."""
    return min(ramp(x, limits[0], limits[1]), ramp(x, limits[3], limits[2]))


@dataclass
class BodyFrame:
    """The body's own frame from its six keypoints (genant.KEYPOINT_NAMES order).

    Attributes:
        keypoints: (6, 3) LPS mm.
        centre: mean of the six points.
        p, s, l: unit posterior, superior and lateral axes (``l = p x s``).
        u, t: (6,) keypoint coordinates along ``p`` and ``s`` (mm from ``centre``).
        heights: h_a, h_m, h_p (mm).

    """

    keypoints: np.ndarray
    centre: np.ndarray
    p: np.ndarray
    s: np.ndarray
    l: np.ndarray  # noqa: E741
    u: np.ndarray
    t: np.ndarray
    heights: np.ndarray

    @classmethod
    def from_keypoints(cls, keypoints: np.ndarray) -> "BodyFrame":
        """Frame of six LPS keypoints.

        Raises:
            ValueError: for degenerate keypoints (no depth or no height).

        """
        kp = np.asarray(keypoints, dtype=float).reshape(6, 3)
        h = genant_heights(kp)
        p = kp[4:6].mean(0) - kp[0:2].mean(0)
        if np.linalg.norm(p) < 1.0 or h.max() < 1.0:
            raise ValueError("degenerate keypoints: the body has no depth or no height")
        p /= np.linalg.norm(p)
        s = kp[0::2].mean(0) - kp[1::2].mean(0)
        s -= s.dot(p) * p
        s /= np.linalg.norm(s)
        lateral = np.cross(p, s)
        centre = kp.mean(0)
        rel = kp - centre
        return cls(kp, centre, p, s, lateral, rel @ p, rel @ s, h)

    @property
    def depth(self) -> float:
        """Distance (mm) between the anterior and posterior keypoint columns."""
        return float(self.u[4:6].mean() - self.u[0:2].mean())

    @property
    def u_front(self) -> float:
        """Anterior column position (mm)."""
        return float(self.u[0:2].mean())

    @property
    def u_back(self) -> float:
        """Posterior column position (mm)."""
        return float(self.u[4:6].mean())

    def t_superior(self, u: np.ndarray) -> np.ndarray:
        """Superior endplate line through keypoints 0, 2, 4 (piecewise linear in u)."""
        return np.interp(u, self.u[0::2], self.t[0::2])

    def t_inferior(self, u: np.ndarray) -> np.ndarray:
        """Inferior endplate line through keypoints 1, 3, 5."""
        return np.interp(u, self.u[1::2], self.t[1::2])

    @property
    def inset(self) -> float:
        """How far (mm) the keypoint columns lie inside the walls: 1.5 mm or 8 % of the wall-to-wall depth."""
        return max(1.5, 0.08 * self.depth / 0.84)

    def grown_endplates(self, u: np.ndarray, margin: float) -> Tuple[np.ndarray, np.ndarray]:
        """Inferior and superior endplate lines at ``u``, each ``margin`` mm outwards.

        Beyond the body's anterior and posterior columns the lines keep their end values.
        """
        inside = np.clip(u, self.u_front, self.u_back)
        return self.t_inferior(inside) - margin, self.t_superior(inside) + margin

    def points(self, u, t, w) -> np.ndarray:
        """LPS points of frame coordinates (broadcast arrays) -> (..., 3)."""
        u, t, w = np.broadcast_arrays(np.asarray(u, float), np.asarray(t, float), np.asarray(w, float))
        return self.centre + u[..., None] * self.p + t[..., None] * self.s + w[..., None] * self.l


def sample(volume: np.ndarray, geometry: ImageGeometry, points: np.ndarray) -> np.ndarray:
    """Trilinear HU at LPS points (..., 3) of ``volume[k, j, i]``; NaN outside the image."""
    index = geometry.lps_to_index(points.reshape(-1, 3))[:, ::-1]
    values = ndimage.map_coordinates(volume, index.T, order=1, mode="constant", cval=np.nan, output=np.float32)
    return values.reshape(points.shape[:-1])


@contextmanager
def _quiet():
    """Silence NumPy's warnings for all-NaN slices (samples outside the image are NaN by design)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _nanmedian(x: np.ndarray) -> float:
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else float("nan")


# ----------------------------------------------------------------------------------------------
# Bone where the body should be


def check_bone(volume: np.ndarray, geometry: ImageGeometry, frame: BodyFrame) -> CheckResult:
    """A cortical rim of higher HU around a trabecular core, in the body's mid-sagittal slab.

    The slab (planes at ``w`` = -4, -2, 0, 2, 4 mm, averaged: the noise of a sharp kernel drops
    by about sqrt(5)) is cut by profiles across the four sides of the keypoint box (superior and
    inferior endplate lines, anterior and posterior columns), each from ``RIM_INSIDE_MM`` inside
    to ``RIM_OUTSIDE_MM`` outside. The rim value is the median over profiles of each profile's
    maximum; the core value the median over profiles of the same length and direction inside the
    central half of the box of their maxima (so the upward bias of a maximum over noise cancels).
    Score: the smaller of the contrast ramp (rim - core) and the rim-HU ramp; 0 when the core is
    fat or air. Osteoporotic bodies (core < 100 HU) keep their rim and pass on it.
    """
    step = 0.5
    offsets = np.arange(-RIM_INSIDE_MM, RIM_OUTSIDE_MM + step / 2, step)
    w = np.arange(-SLAB_HALF_MM, SLAB_HALF_MM + 1e-6, 2.0)
    uf, ub, depth = frame.u_front, frame.u_back, frame.depth
    columns = np.linspace(uf, ub, 7)
    h_min = float(min(frame.t_superior(columns).min() - frame.t_inferior(columns).max(), frame.heights.min()))
    rows = np.linspace(frame.t_inferior(uf) + 0.2 * h_min, frame.t_superior(uf) - 0.2 * h_min, 5)
    rows_back = np.linspace(frame.t_inferior(ub) + 0.2 * h_min, frame.t_superior(ub) - 0.2 * h_min, 5)
    # (profile, offset) coordinates of the four sides; the outward direction is +offset.
    u_sides = [np.repeat(columns[:, None], len(offsets), 1)] * 2 + [uf - offsets[None, :] + 0 * rows[:, None],
                                                                    ub + offsets[None, :] + 0 * rows_back[:, None]]
    t_sides = [frame.t_superior(columns)[:, None] + offsets[None, :],
               frame.t_inferior(columns)[:, None] - offsets[None, :],
               np.repeat(rows[:, None], len(offsets), 1), np.repeat(rows_back[:, None], len(offsets), 1)]
    u_rim = np.concatenate([a.reshape(-1, len(offsets)) for a in u_sides])
    t_rim = np.concatenate([a.reshape(-1, len(offsets)) for a in t_sides])
    # Core: the same profiles moved into the central half of the box.
    cu = np.linspace(uf + 0.25 * depth, ub - 0.25 * depth, 5)
    t_mid = 0.5 * (frame.t_superior(cu) + frame.t_inferior(cu))
    cu_vertical = np.repeat(cu[:, None], len(offsets), 1)
    ct_vertical = t_mid[:, None] + (offsets - offsets.mean())[None, :] * 0.5 * min(1.0, h_min / 12.0)
    ct_rows = np.linspace(-0.2 * h_min, 0.2 * h_min, 5)
    cu_horizontal = 0.5 * (uf + ub) + (offsets - offsets.mean())[None, :] + 0 * ct_rows[:, None]
    ct_horizontal = np.repeat(ct_rows[:, None], len(offsets), 1)
    u_core = np.concatenate([cu_vertical, cu_horizontal])
    t_core = np.concatenate([ct_vertical, ct_horizontal])
    u_all = np.concatenate([u_rim, u_core])[..., None]
    t_all = np.concatenate([t_rim, t_core])[..., None]
    values = sample(volume, geometry, frame.points(u_all, t_all, w[None, None, :]))
    with _quiet():
        slab = np.nanmean(values, axis=-1)
    n_rim = len(u_rim)
    with _quiet():
        rim_max = np.nanmax(np.where(np.isfinite(slab[:n_rim]), slab[:n_rim], -np.inf), axis=1)
        core_max = np.nanmax(np.where(np.isfinite(slab[n_rim:]), slab[n_rim:], -np.inf), axis=1)
    rim_max[~np.isfinite(rim_max)] = np.nan
    core_max[~np.isfinite(core_max)] = np.nan
    rim = _nanmedian(rim_max)
    core_peak = _nanmedian(core_max)
    core = _nanmedian(slab[n_rim:])
    contrast = rim - core_peak
    score = min(ramp(contrast, *RIM_CONTRAST_HU), ramp(rim, *RIM_HU))
    if np.isfinite(core) and core < CORE_MIN_HU:
        score = 0.0
    values_out = {"rim_hu": round(rim, 1), "core_hu": round(core, 1), "core_peak_hu": round(core_peak, 1),
                  "rim_contrast_hu": round(contrast, 1)}
    reason = None
    if score < 0.5:
        inside = slab[n_rim:]
        inside = inside[np.isfinite(inside)]
        if inside.size:
            lo, hi = np.percentile(inside, [10, 90])
            span = f"HU {lo:.0f}-{hi:.0f}"
        else:
            span = "outside the image"
        if np.isfinite(core) and core < CORE_MIN_HU:
            what = "fat or air"
        elif np.isfinite(core) and core > 100:  # unenhanced soft tissue and blood: 20-70 HU
            what = "soft tissue or contrast"
        else:
            what = "soft tissue"
        reason = f"no cortical bone where the body should be ({what}, {span})"
    return CheckResult(score, reason, values_out)


# ----------------------------------------------------------------------------------------------
# Spinal canal and posterior elements


def _axial_planes(volume: np.ndarray, geometry: ImageGeometry, frame: BodyFrame) -> Tuple[np.ndarray, ...]:
    """Three axial planes (t = -0.3 h, 0, +0.3 h around the posterior mid-height).

    Returns:
        ``(planes[3, u, w], u, w)`` with ``u`` from 5 mm in front of the posterior column to
        ``POSTERIOR_TO_MM`` behind it, 1 mm steps.

    """
    u = np.arange(frame.u_back - 5.0, frame.u_back + POSTERIOR_TO_MM + 0.5, 1.0)
    w = np.arange(-POSTERIOR_HALF_WIDTH_MM - 5.0, POSTERIOR_HALF_WIDTH_MM + 5.5, 1.0)
    mid = 0.5 * (frame.t_superior(frame.u_back) + frame.t_inferior(frame.u_back))
    h = float(frame.heights[2])
    t = mid + np.array([-0.3, 0.0, 0.3])[:, None] * h + np.array([0.0])[None, :]
    values = sample(volume, geometry, frame.points(u[None, None, :, None], t[:, :, None, None], w[None, None, None, :]))
    with _quiet():
        planes = np.nanmean(values, axis=1)
    return planes, u, w


def _runs(mask: np.ndarray) -> List[Tuple[int, int]]:
    """(start, stop) of the True runs of a 1D mask."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(edges[0::2], edges[1::2]))


def _canal_in_plane(plane: np.ndarray, u: np.ndarray, w: np.ndarray, u_back: float) -> Dict[str, float]:
    """Look for the canal behind the posterior wall in one axial plane [u, w]."""
    mid = np.abs(w) <= 3.0
    with _quiet():
        profile = np.nanmean(plane[:, mid], axis=1)
    near = (u >= u_back - 4.0) & (u <= u_back + 6.0)
    if not np.any(np.isfinite(profile[near])):
        return {"found": 0.0, "walls": 0.0}
    wall_index = int(np.flatnonzero(near)[np.nanargmax(profile[near])])
    u_wall = float(u[wall_index])
    search = (u > u_wall + 1.0) & (u <= u_wall + CANAL_SEARCH_MM)
    low = search & (profile < CANAL_HU)
    best = None
    for start, stop in _runs(low):
        if (stop - start) * 1.0 >= CANAL_MIN_MM:
            best = (start, stop)
            break
    if best is None:
        return {"found": 0.0, "walls": 0.0, "wall_hu": float(profile[wall_index])}
    start, stop = best
    centre = (start + stop) // 2
    rows = slice(max(0, centre - 2), centre + 3)
    with _quiet():
        lateral = np.nanmean(plane[rows], axis=0)
    right = (w < -2.0) & (w >= -CANAL_HALF_WIDTH_MM)
    left = (w > 2.0) & (w <= CANAL_HALF_WIDTH_MM)
    closed_right = bool(np.nanmax(np.where(right, lateral, -np.inf)) > BONE_HU)
    closed_left = bool(np.nanmax(np.where(left, lateral, -np.inf)) > BONE_HU)
    behind = (u >= u[stop - 1]) & (u <= u[stop - 1] + 8.0)
    closed_back = bool(stop < len(u) and np.nanmax(np.where(behind, profile, -np.inf)) > BONE_HU)
    walls = closed_left + closed_right + closed_back
    return {"found": 1.0, "walls": float(walls), "depth_mm": float(stop - start),
            "content_hu": float(np.nanmedian(profile[start:stop])), "wall_hu": float(profile[wall_index]),
            "u_canal_end": float(u[stop - 1])}


def check_canal_and_posterior(volume: np.ndarray, geometry: ImageGeometry, frame: BodyFrame
                              ) -> Tuple[CheckResult, CheckResult]:
    """A spinal canal behind the body, and posterior elements behind the canal.

    Canal (per axial plane at 0.3 h above, at and 0.3 h below mid-height): along the mid-line
    (|w| <= 3 mm) behind the brightest point of the posterior wall, a run of at least
    ``CANAL_MIN_MM`` below ``CANAL_HU`` within ``CANAL_SEARCH_MM``, closed by bone (> ``BONE_HU``)
    on the right, on the left (pedicles, within ``CANAL_HALF_WIDTH_MM``) or behind (lamina,
    within 8 mm). Score: walls / 3 of the best plane (2 of 3 walls pass), 0 without a low run.

    Posterior elements: the area of bone (> ``BONE_HU``) from ``POSTERIOR_FROM_MM`` to
    ``POSTERIOR_TO_MM`` behind the posterior column, within ``POSTERIOR_HALF_WIDTH_MM`` of the
    mid-line, best plane, ramped over ``POSTERIOR_AREA_MM2``.
    """
    planes, u, w = _axial_planes(volume, geometry, frame)
    found = [_canal_in_plane(plane, u, w, frame.u_back) for plane in planes]
    best = max(found, key=lambda f: (f["walls"], f["found"]))
    canal_score = best["walls"] / 3.0 if best["found"] else 0.0
    canal_values = {k: round(v, 1) for k, v in best.items()}
    canal_reason = None
    if canal_score < 0.5:
        if not best["found"]:
            canal_reason = "no spinal canal behind the body"
        else:
            canal_reason = "no bony spinal canal behind the body (low-HU region not enclosed by pedicles or lamina)"
    region = (u >= frame.u_back + POSTERIOR_FROM_MM)[:, None] & (np.abs(w) <= POSTERIOR_HALF_WIDTH_MM)[None, :]
    areas = [float(np.sum((plane > BONE_HU) & region)) for plane in planes]  # 1 mm x 1 mm samples
    inside = [float(np.mean(np.isfinite(plane[region]))) for plane in planes]
    area = max(areas)
    posterior_score = ramp(area, *POSTERIOR_AREA_MM2)
    posterior_reason = None
    if posterior_score < 0.5:
        posterior_reason = "no posterior elements (lamina, spinous process) behind the canal"
    posterior = CheckResult(posterior_score, posterior_reason,
                            {"bone_area_mm2": round(area, 1), "in_image_fraction": round(max(inside), 2)})
    return CheckResult(canal_score, canal_reason, canal_values), posterior


# ----------------------------------------------------------------------------------------------
# Size for the level


def normal_size(label: str) -> Optional[Tuple[float, float]]:
    """Published normal (posterior height, mid-sagittal depth) in mm of a level, or None.

    Panjabi et al. 1991 (thoracic) and 1992 (lumbar), as tabulated in
    :mod:`VertebralFractureLib.synth.morphometry`; T13 as T12, L6 as L5, C1-C6 as C7.
    """
    from ..synth.morphometry import SYNTH_LEVELS, level_size

    try:
        name = normalise_level(label)
    except UnknownLevelError:
        return None
    name = {"T13": "T12", "L6": "L5"}.get(name, name)
    if name not in SYNTH_LEVELS:
        name = "C7" if name.startswith("C") else None
    if name is None:
        return None
    size = level_size(name)
    return size.height_posterior, size.depth


def check_size(frame: BodyFrame, label: str) -> CheckResult:
    """Body height (largest of h_a, h_m, h_p) and keypoint depth against the level's normal size.

    Ratios to the published normal (:func:`normal_size`) score 1 on ``[0.5, 1.45]`` and 0 below
    0.25 or above 1.8 (:data:`SIZE_RATIO`): generous for stature and sex (about +-20 %), for the
    keypoint inset (the columns lie 1.5 mm or 8 % inside the walls) and for grade-3 crush
    fractures (vertebra plana: every height can fall to 40 % of normal).
    """
    normal = normal_size(label)
    height = float(frame.heights.max())
    depth = frame.depth
    if normal is None:
        return CheckResult(0.0, f"no normal size known for level {label}", {"height_mm": height, "depth_mm": depth})
    h_ratio, d_ratio = height / normal[0], depth / normal[1]
    score = min(band(h_ratio, SIZE_RATIO), band(d_ratio, SIZE_RATIO))
    values = {"height_mm": round(height, 1), "depth_mm": round(depth, 1), "height_ratio": round(h_ratio, 2),
              "depth_ratio": round(d_ratio, 2)}
    reason = None
    if score < 0.5:
        worst = "height" if band(h_ratio, SIZE_RATIO) <= band(d_ratio, SIZE_RATIO) else "depth"
        value, ratio, ref = (height, h_ratio, normal[0]) if worst == "height" else (depth, d_ratio, normal[1])
        size_word = "too small" if ratio < 1 else "too large"
        reason = f"body {worst} {value:.0f} mm is {size_word} for {label} (normal about {ref:.0f} mm)"
    return CheckResult(score, reason, values)


# ----------------------------------------------------------------------------------------------
# Keypoints on the endplates


def check_endplates(volume: np.ndarray, geometry: ImageGeometry, frame: BodyFrame) -> CheckResult:
    """Each keypoint lies on a bone/disc border of its endplate that the image shows consistently.

    The border is found exactly as the keypoint refinement finds it
    (:func:`VertebralFractureLib.keypoints.refine.combine_edges`): along the body's superior axis
    through each keypoint (+-``ENDPLATE_SEARCH_MM``, 0.5 mm steps), on five parallel profiles
    (``refine.CT_PROFILE_OFFSETS_MM`` antero-posteriorly, each the mean of
    ``refine.CT_PROFILE_LATERAL_MM`` laterally), each profile's border is the steepest outward HU
    fall of the body's own endplate when the voxel resolves it, or the centre of the bright band
    that a disc thinner than a slice merges with both endplates (``refine.endplate_edge``); the
    profiles that disagree with their median are rejected, and a border counts only when at least
    three of the five agree with a fall of at least ``ENDPLATE_MIN_GRADIENT`` HU/mm. (The former
    definition, the strongest fall weighted by distance, measured the neighbour's inner face on the
    merged bands of 3 mm slices: hand-placed real chest keypoints scored 0.17-0.5.)

    The border's distance to the keypoint scores 1 up to 2 mm and 0 from 4 mm
    (:data:`ENDPLATE_OFFSET_MM`; for voxels thicker along the axis, ``v`` mm: up to ``v / 2`` and
    from ``v``); a keypoint without a consistent border scores 0. The score is the mean of the six
    points. On refined keypoints the distance is near 0 wherever a border was found, so the score
    then says how many of the six endplate points the image supports. ``values`` holds
    ``voxel_mm`` (the voxel extent along the axis) and ``decisive`` (1 when it is at most
    ``ENDPLATE_DECISIVE_MM``: the image resolves the endplates).
    """
    from ..keypoints import refine

    voxel = geometry.voxel_extent_along(frame.s)
    ok_mm, zero_mm = max(ENDPLATE_OFFSET_MM[0], voxel / 2), max(ENDPLATE_OFFSET_MM[1], voxel)
    step = 2 * refine.CT_STEP_MM  # 0.5 mm: the score's distances are read to a quarter of that
    t = np.arange(-ENDPLATE_SEARCH_MM, ENDPLATE_SEARCH_MM + step / 2, step)
    du = np.asarray(refine.CT_PROFILE_OFFSETS_MM, float)
    dw = np.asarray(refine.CT_PROFILE_LATERAL_MM, float)
    u = frame.u[:, None, None, None] + du[None, :, None, None] + 0 * dw[None, None, :, None]
    tt = frame.t[:, None, None, None] + t[None, None, None, :]
    w = dw[None, None, :, None] + 0 * t[None, None, None, :]
    values = sample(volume, geometry, frame.points(u, np.broadcast_to(tt, u.shape[:3] + t.shape), w))
    profiles = values.mean(axis=2)  # (6, offsets, t): NaN where a lateral sample left the image
    scores, offsets, gradients, agreeing = [], [], [], []
    for index in range(6):
        outward = 1.0 if index % 2 == 0 else -1.0  # superior points: outward = +s
        edge = refine.combine_edges(t, profiles[index], outward, 0.0, ENDPLATE_SEARCH_MM, voxel,
                                    prior_mm=ENDPLATE_PRIOR_MM, min_gradient=ENDPLATE_MIN_GRADIENT)
        if edge is None:
            scores.append(0.0)
            offsets.append(float("nan"))
            gradients.append(float("nan"))
            agreeing.append(0)
            continue
        offset = abs(edge.position)
        offsets.append(offset)
        gradients.append(edge.strength)
        agreeing.append(edge.agreeing)
        scores.append(ramp(offset, zero_mm, ok_mm))
    score = float(np.mean(scores))
    values_out = {"offsets_mm": [round(o, 1) for o in offsets], "edge_hu_per_mm": [round(g, 1) for g in gradients],
                  "profiles_agreeing": agreeing, "points_on_edge": int(sum(s >= 0.5 for s in scores)),
                  "voxel_mm": round(voxel, 2), "decisive": float(voxel <= ENDPLATE_DECISIVE_MM + 1e-6)}
    reason = None
    if score < 0.5:
        reason = (f"keypoints are not on the endplates ({values_out['points_on_edge']} of 6 within "
                  f"{ok_mm:.0f} mm of a consistent bone edge)")
    return CheckResult(score, reason, values_out)


# ----------------------------------------------------------------------------------------------
# Field of view


#: :func:`body_runs_out_sideways`: how far (body depths) each side of the keypoint plane the image is read, beyond the
#: body's half width (bodies are 1.3-1.45 times as wide as deep: half width 0.65-0.73 depth; Panjabi 1991, 1992).
LATERAL_REACH_DEPTHS = 1.0
#: ... and the least HU the median across the body's rays keeps from the plane to the image's edge for the body to
#: run out of the image: trabecular bone and cortex (osteoporotic cores 100-150 HU at 3 mm), not the psoas or the
#: fat beside the body (-100 ... 60 HU).
LATERAL_BODY_HU = 100.0


def body_runs_out_sideways(volume: np.ndarray, geometry: ImageGeometry, frame: BodyFrame) -> List[str]:
    """The sides ("left", "right") on which the body's bone runs into the edge of the image.

    Rays along the body's lateral axis from its keypoint plane, through the central 60 % of its depth and height (5 x
    5), each read to :data:`LATERAL_REACH_DEPTHS` depths. On a side where the rays leave the image within that reach,
    the median across the rays, from the plane to the last sample in the image, never falls under
    :data:`LATERAL_BODY_HU`: the body goes on beyond the edge. Found on the real sample CT cut 15 mm left of its spine
    (``benchmarks/bench_real_variants.py --variants side_left15``): three bodies cut through on their left side were
    assessed on a mid-sagittal plane found 7-9 mm to the right of theirs, keypoints 9-10 mm off; the keypoint box
    grown sideways around that plane (:func:`check_field_of_view`) lay inside the image.
    """
    step = 1.0
    reach = LATERAL_REACH_DEPTHS * frame.depth
    u = frame.u_front + np.linspace(0.2, 0.8, 5) * frame.depth
    middle = 0.5 * (frame.t_superior(u) + frame.t_inferior(u))
    height = frame.t_superior(u) - frame.t_inferior(u)
    t = middle[:, None] + np.linspace(-0.3, 0.3, 5)[None, :] * height[:, None]
    sides = []
    for sign in (1.0, -1.0):
        w = sign * np.arange(0.0, reach + step / 2, step)
        points = frame.points(u[:, None, None], t[:, :, None], w[None, None, :]).reshape(-1, 3)
        index = geometry.lps_to_index(points)
        # where the samples can be interpolated (between the outermost voxel centres)
        inside = np.all((index >= 0.0) & (index <= np.asarray(geometry.size, float) - 1.0), axis=1)
        inside = inside.reshape(len(u) * t.shape[1], len(w)).all(axis=0)
        if inside.all() or not inside[0]:
            continue  # the image reaches beyond the body on this side (or the plane itself is outside)
        last = int(np.argmin(inside))  # first position outside the image along the ray
        values = sample(volume, geometry, points.reshape(len(u), t.shape[1], len(w), 3)[:, :, :last])
        with _quiet():
            profile = np.nanmedian(values.reshape(-1, last), axis=0)
        if np.all(np.isfinite(profile)) and profile.min() >= LATERAL_BODY_HU:
            direction = frame.l * sign
            sides.append("left" if direction[0] > 0 else "right")  # LPS: +x is the patient's left
    return sides


def check_field_of_view(geometry: ImageGeometry, frame: BodyFrame, margin_mm: float = FOV_MARGIN_MM,
                        volume: Optional[np.ndarray] = None) -> CheckResult:
    """The whole body (keypoint box grown by the keypoint inset and ``margin_mm``) is in the image.

    With ``volume``, also the body's own bone: a body that runs into the image's side edge
    (:func:`body_runs_out_sideways`) is cut by the field of view, wherever its keypoint plane lies.

    The box spans the keypoint columns +-(inset + margin) antero-posteriorly, the endplate lines
    +-margin, and +-``FOV_HALF_WIDTH_FRACTION`` x depth laterally (vertebral bodies are about
    1.3-1.45 times as wide as deep; Panjabi 1991, 1992). Score: fraction of a 7 x 7 x 7 grid of the
    box inside the image (1 when whole); it fails below 1 when a sample of the mid-sagittal
    slab (|w| <= 4 mm) is outside, and the reason names the image edge(s) that cut it.
    """
    inset = frame.inset
    a = np.linspace(0.0, 1.0, 7)
    u = frame.u_front - inset - margin_mm + a * (frame.depth + 2 * (inset + margin_mm))
    inf, sup = frame.grown_endplates(u, margin_mm)
    tt = inf[:, None] + a[None, :] * (sup - inf)[:, None]
    half = FOV_HALF_WIDTH_FRACTION * frame.depth
    w = np.concatenate([np.linspace(-half, half, 7), [-SLAB_HALF_MM, SLAB_HALF_MM]])
    points = frame.points(u[:, None, None], tt[:, :, None], w[None, None, :])
    index = geometry.lps_to_index(points.reshape(-1, 3))
    size = np.asarray(geometry.size, float)
    low = index < -0.5
    high = index > size - 0.5
    outside = np.any(low | high, axis=1).reshape(points.shape[:-1])
    core_out = outside[:, :, -2:].any() or outside[:, :, 3].any()
    fraction = 1.0 - float(np.mean(outside[:, :, :7]))
    cut = []
    for axis in range(3):
        column = geometry.direction[:, axis]
        patient = int(np.argmax(np.abs(column)))
        positive = column[patient] > 0
        for flags, toward_high in ((low[:, axis], False), (high[:, axis], True)):
            if flags.any():
                cut.append(_SIDES[patient][int(toward_high == positive)])
    # the body's own bone is read only where the keypoint box left the core in view (no second reason to find)
    runs_out = body_runs_out_sideways(volume, geometry, frame) if volume is not None and not core_out else []
    if runs_out:
        core_out, cut = True, runs_out
    score = min(fraction, 0.49) if core_out else fraction
    reason = None
    if core_out:
        reason = f"cut by the {' and '.join(dict.fromkeys(cut))} edge of the field of view"
    return CheckResult(float(score), reason, {"inside_fraction": round(fraction, 3), "cut_sides": ", ".join(cut),
                                              "body_runs_out": ", ".join(runs_out)})


# ----------------------------------------------------------------------------------------------
# Metal


def check_metal(volume: np.ndarray, geometry: ImageGeometry, frame: BodyFrame) -> CheckResult:
    """No metal (or dense bone cement) in the body or its pedicles.

    Pedicle screws pass through the pedicles into the body, and vertebroplasty cement fills it; both are far
    denser than bone (titanium and steel are clipped at the top of a CT's range, 3071 HU in 12-bit data; PMMA cement
    with barium 1500-3000 HU), and metal throws streaks and blooming across the body. The endplates and walls then
    show edges that are not the bone's, and the heights measured on them are not the body's (on generated spines
    with pedicle screws, ``vertebral-fracture synth --metal``, an instrumented normal T12 measured grade 2). Cortical
    bone stays below :data:`METAL_HU` (1000-2000 HU at full resolution, far less partial-volumed into a CT voxel).

    The region: the body box (keypoint columns +- the inset, endplate lines +- 2 mm, +-0.7 depths laterally) and
    the pedicles behind it (to :data:`METAL_BEHIND_DEPTHS` depths behind the posterior column), sampled every
    1 mm. Score: ramp of the volume at or above :data:`METAL_HU` from :data:`METAL_MM3`'s lower value (1: a few
    samples of noise or a bright speck) to its upper value (0); it fails above 60 mm^3. A 6 mm screw crossing the
    box gives hundreds.

    Cement (:mod:`VertebralFractureLib.implants`) need not reach :data:`METAL_HU` (an 1800 HU bolus drawn into the
    real abdominal CT's L3 passed this check, and its body was then refused as "no cortical bone"): a solid mass of
    at least ``CEMENT_MIN_MM3`` over ``CEMENT_HU`` in the body box (the pedicles left out), thicker than a screw and
    below a metal's saturation (:func:`VertebralFractureLib.implants.cement_core`), fails the check with its own
    reason, whether or not the metal count also fails it.
    """
    u = np.arange(frame.u_front - frame.inset, frame.u_back + METAL_BEHIND_DEPTHS * frame.depth + 1e-6, 1.0)
    inf, sup = frame.grown_endplates(u, FOV_MARGIN_MM)
    half = METAL_HALF_WIDTH_DEPTHS * frame.depth
    w = np.arange(-half, half + 1e-6, 1.0)
    volume_mm3 = 0.0
    for ui, lo, hi in zip(u, inf, sup):
        t = np.arange(lo, hi + 1e-6, 1.0)
        values = sample(volume, geometry, frame.points(ui, t[:, None], w[None, :]))
        with _quiet():
            volume_mm3 += float(np.count_nonzero(values >= METAL_HU))
    score = ramp(volume_mm3, METAL_MM3[1], METAL_MM3[0])
    cement_mm3 = _solid_core_mm3(volume, geometry, frame)
    reason = None
    if cement_mm3 >= CEMENT_MIN_MM3:  # a bolus, whether or not it reaches the metal's density (screws are thinner)
        score = 0.0
        reason = (f"bone cement in the body ({cement_mm3:.0f} mm^3 of a solid mass over {CEMENT_HU:.0f} HU: a "
                  "vertebroplasty or kyphoplasty, or a dense bone island): a treated vertebra, its heights are not "
                  "the ones Genant's grades describe")
    elif score < 0.5:
        reason = (f"metal or bone cement in the vertebra ({volume_mm3:.0f} mm^3 over {METAL_HU:.0f} HU: an implant); "
                  "its streaks make the endplates and heights unreliable")
    return CheckResult(float(score), reason, {"metal_mm3": round(volume_mm3, 1), "cement_mm3": round(cement_mm3, 1)})


def _solid_core_mm3(volume: np.ndarray, geometry: ImageGeometry, frame: BodyFrame) -> float:
    """Volume (mm^3) of a solid mass as dense as cement in the body box.

    The box of :func:`check_metal` without the pedicles, sampled on one 1 mm grid (outside the image: none); the
    mass is :func:`VertebralFractureLib.implants.cement_core` there (not metal, not a screw's rod).
    """
    u = np.arange(frame.u_front - frame.inset, frame.u_back + frame.inset + 1e-6, 1.0)
    inf, sup = frame.grown_endplates(u, FOV_MARGIN_MM)
    t = np.arange(float(inf.min()), float(sup.max()) + 1e-6, 1.0)
    half = METAL_HALF_WIDTH_DEPTHS * frame.depth
    w = np.arange(-half, half + 1e-6, 1.0)
    values = sample(volume, geometry, frame.points(u[:, None, None], t[None, :, None], w[None, None, :]))
    inside = (t[None, :] >= inf[:, None]) & (t[None, :] <= sup[:, None])
    values = np.where(inside[:, :, None], np.nan_to_num(values, nan=-1024.0), -1024.0)
    return float(cement_core(values, (1.0, 1.0, 1.0)).sum())


# ----------------------------------------------------------------------------------------------
# Level


def check_level(label: str) -> CheckResult:
    """Genant's criteria apply to thoracic and lumbar vertebrae only (Genant et al. 1993)."""
    try:
        name = normalise_level(label)
    except UnknownLevelError:
        return CheckResult(0.0, f"unknown level label {label!r}", {})
    region = name[0]
    if region in GRADED_REGIONS:
        return CheckResult(1.0, None, {"level_index": float(level_index(name))})
    which = {"C": "cervical", "S": "sacral"}[region]
    return CheckResult(0.0, f"{which} level: Genant grading applies to thoracic and lumbar vertebrae",
                       {"level_index": float(level_index(name))})


# ----------------------------------------------------------------------------------------------
# Neighbours


def check_neighbours(frame: BodyFrame, label: str, neighbours: Sequence[Tuple[str, np.ndarray]]
                     ) -> Optional[CheckResult]:
    """Heights and spacing consistent with the nearest labelled vertebra above and below.

    For the nearest neighbour on each side (at most 2 level positions away): the ratio of the
    largest heights (self / neighbour, :data:`NEIGHBOUR_HEIGHT_RATIO`), the centre distance per
    level step over the mean of the two largest heights (body plus disc: about 1.2-1.45;
    :data:`NEIGHBOUR_SPACING_RATIO`), and the side (the level above must lie superior along the
    body axis). Score: the mean over the neighbours of the smallest of the three; None without
    neighbours.
    """
    try:
        own = level_index(label)
    except UnknownLevelError:
        return None
    above, below = None, None
    for name, keypoints in neighbours:
        try:
            other = level_index(name)
        except UnknownLevelError:
            continue
        gap = other - own
        if gap == 0 or abs(gap) > 2:
            continue
        if gap < 0 and (above is None or gap > above[0]):
            above = (gap, name, np.asarray(keypoints, float).reshape(6, 3))
        if gap > 0 and (below is None or gap < below[0]):
            below = (gap, name, np.asarray(keypoints, float).reshape(6, 3))
    found = [n for n in (above, below) if n is not None]
    if not found:
        return None
    scores, values, problems = [], {}, []
    h_self = float(frame.heights.max())
    for gap, name, keypoints in found:
        h_other = float(genant_heights(keypoints).max())
        offset = keypoints.mean(0) - frame.centre
        along = float(offset @ frame.s)
        distance = float(np.linalg.norm(offset)) / abs(gap)
        height_ratio = h_self / max(h_other, 1e-3)
        spacing_ratio = distance / max(0.5 * (h_self + h_other), 1e-3)
        side_ok = (along > 0) == (gap < 0)
        s_height, s_spacing = band(height_ratio, NEIGHBOUR_HEIGHT_RATIO), band(spacing_ratio, NEIGHBOUR_SPACING_RATIO)
        scores.append(min(s_height, s_spacing, 1.0 if side_ok else 0.0))
        values[f"{name}_height_ratio"] = round(height_ratio, 2)
        values[f"{name}_spacing_ratio"] = round(spacing_ratio, 2)
        if not side_ok:
            problems.append(f"{name} is on the wrong side")
        elif s_height < 0.5:
            problems.append(f"height differs from {name} (ratio {height_ratio:.2f})")
        elif s_spacing < 0.5:
            problems.append(f"spacing to {name} is implausible (ratio {spacing_ratio:.2f})")
    score = float(np.mean(scores))
    reason = None if score >= 0.5 else "inconsistent with its neighbours: " + "; ".join(problems)
    return CheckResult(score, reason, values)
