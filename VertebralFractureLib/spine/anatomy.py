"""Where the spine is, from anatomy alone: the spinal canal and the vertebral body in front of it.

Only the spine has a *canal*: a low-density hole (cerebrospinal fluid, cord, epidural fat: about
-150 to 150 HU, 12-25 mm wide) ringed by bone (vertebral body in front, pedicles at the sides, lamina
behind), with the vertebral body -- a 15-55 mm deep bone blob -- directly anterior to it. A heart
chamber, the aorta or a contrast-filled kidney or bowel is a homogeneous bright blob with no
low-density hole ringed by bone, so nothing in it can become a canal candidate.

Method (per axial slice of the canonical image, box-averaged to about 2 mm in-plane and 3 mm slices):

1. ``bone`` = 200-2500 HU (metal above 2500 HU is neither bone nor fluid); ``fluid`` = -150-150 HU.
2. Canal candidates: fluid pixels with bone nearby on at least three of the four axis sides (a cheap
   pre-filter), then a radial ray test in 16 directions (rays of 20 mm, as the enclosure test of
   Pisov et al. 2020's anatomical prior is not available without labels): the fraction of rays that
   hit bone (*enclosure*; a ray leaving the field of view counts one half, so a canal at the posterior
   edge of the image keeps an open ring) and the distance to the nearest bone (the inscribed radius).
   Local maxima of ``enclosure x radius`` are the candidates (centres of the holes).
3. Each candidate is scored by enclosure, inscribed radius (2-13 mm), a vertebral body anterior to it
   (rays within +-30 degrees of the patient's anterior: the first bone must be the posterior wall of a
   15-55 mm deep blob followed by soft tissue) and bone behind it (lamina; out-of-view counts one half).
4. A dynamic programme links candidates across slices (a jump of more than 5 mm per 3 mm slice costs,
   gaps of up to 4 slices are bridged) and keeps the path with the largest summed score: the *canal
   track*. No position prior is used, so scoliosis and kyphosis are followed.
5. Where the path runs sideways faster than :data:`MAX_LATERAL_SLOPE` it has left the canal (at the
   sacrum it can follow the ala into the ilium); it is cut there and the part with the largest summed
   score is kept (:func:`_drop_lateral_drift`).
6. The body centre per slice is straight anterior (-y) of the canal by the posterior-wall distance
   plus half the measured body depth (both median-smoothed along the track, so disc levels inherit
   their neighbours').

Ray tests were preferred over hole filling of the bone mask because the axial ring around the canal is
open at every intervertebral foramen and at disc levels, and at the posterior edge of a cropped field
of view; a fraction of rays tolerates those gaps, hole filling does not.

Pure numpy/scipy/SimpleITK.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np

#: HU windows (see module docstring).
BONE_HU = 200.0
#: The body's posterior wall (lower than bone: thin cortex partial-volumed at 2-3 mm pixels).
WALL_HU = 100.0
#: The body (bone, osteoporotic trabecular bone, disc) vs the fat and muscle around it.
BODY_HU = 50.0
METAL_HU = 2500.0
FLUID_HU = (-150.0, 150.0)
#: Length of the enclosure rays (mm) and the range of canal radii (mm).
RAY_MM = 20.0
RADIUS_MM = (2.0, 13.0)
#: Number of ray directions.
N_DIRECTIONS = 16
#: Vertebral-body depth range (mm).
BODY_DEPTH_MM = (15.0, 55.0)
#: Candidates with a lower score are not linked into the track.
MIN_SCORE = 0.15
#: Steepest lateral course of the canal (mm left-right per mm along z, over :data:`DRIFT_WINDOW_MM`): a
#: scoliotic spine tilts at most about half its Cobb angle (45 degrees for a 90 degree curve), so a track
#: that runs sideways faster has left the canal (on the real sample CT it leaves the sacrum for the right
#: ilium at 2 mm/mm and follows it 130 mm down).
MAX_LATERAL_SLOPE = 1.0
#: Length along z (mm) over which the lateral slope of the track is measured.
DRIFT_WINDOW_MM = 12.0
#: Left-right distance (mm) of the canal from the middle of the body outline up to which a path part counts
#: fully when a drift splits the path (the apex of a 40 degree scoliosis lies about 30 mm off the middle; the
#: iliac "canals" of the sample CT 75-80 mm).
MIDLINE_MM = 40.0


@dataclass
class CanalTrack:
    """The spinal canal followed through the axial slices of a CT.

    Attributes:
        z: (K,) LPS z (mm) of the analysis slices (ascending).
        canal: (K, 3) LPS canal centre per slice (NaN where the track does not reach).
        body: (K, 3) LPS vertebral-body centre per slice (NaN where the track does not reach).
        score: (K,) 0-1 anatomy score of the chosen candidate (0 on bridged slices and off the track).
        body_depth_mm: (K,) anterior-posterior depth of the body (smoothed along the track).
        body_width_mm: (K,) left-right width of the body at its centre (NaN where not measured).
        candidates: per slice, (n, 4) array of candidate x, y, z (LPS) and score.
        timings_s: seconds per step.

    """

    z: np.ndarray
    canal: np.ndarray
    body: np.ndarray
    score: np.ndarray
    body_depth_mm: np.ndarray
    body_width_mm: np.ndarray
    candidates: List[np.ndarray] = field(default_factory=list)
    timings_s: dict = field(default_factory=dict)
    #: The analysis volume's geometry and its scored candidates (:func:`canal_support_at`).
    scored: Optional[tuple] = field(default=None, repr=False)

    @property
    def on_track(self) -> np.ndarray:
        """(K,) slices the track reaches."""
        return np.isfinite(self.canal[:, 0])

    @property
    def found(self) -> bool:
        """A canal was followed over at least 5 slices."""
        return int(self.on_track.sum()) >= 5

    def confidence(self, window: int = 3) -> np.ndarray:
        """(K,) track confidence: the best slice score within +-``window`` slices, 0 off the track."""
        from scipy.ndimage import maximum_filter1d

        conf = maximum_filter1d(self.score, size=2 * window + 1, mode="constant")
        return np.where(self.on_track, conf, 0.0)


# ---------------------------------------------------------------------- image
def _analysis_volume(image, in_plane_mm: float, slice_mm: float):
    """Box-averaged canonical HU array (k, j, i) float32 with its geometry."""
    import SimpleITK as sitk

    from ..io.images import geometry_of, to_canonical

    spacing = np.asarray(image.GetSpacing(), float)
    direction = np.abs(np.asarray(image.GetDirection(), float).reshape(3, 3))
    vertical = int(np.argmax(direction[2]))  # image axis closest to superior
    factors = []
    for axis, s in enumerate(spacing):
        target = slice_mm if axis == vertical else in_plane_mm
        factors.append(max(1, int(np.floor(target / s + 0.25))))
    if max(factors) > 1:
        image = sitk.BinShrink(image, factors)
    canonical = to_canonical(image)
    return sitk.GetArrayFromImage(canonical).astype(np.float32), geometry_of(canonical)


def _side_counts(mask: np.ndarray, axis: int, n: int) -> Tuple[np.ndarray, np.ndarray]:
    """Number of True within n pixels before / after each pixel along ``axis`` (excluding it)."""
    cs = np.cumsum(mask, axis=axis, dtype=np.int32)
    pad = [(0, 0)] * 3
    pad[axis] = (n + 1, n)
    c = np.pad(cs, pad, mode="edge")
    c = np.moveaxis(c, axis, 0)
    c[: n + 1] = 0
    size = mask.shape[axis]
    # c[m] = cs[m - n - 1]; index of pixel p is p + n + 1
    before = c[n : n + size] - c[0:size]  # cs[p-1] - cs[p-n-1]
    after = c[2 * n + 1 : 2 * n + 1 + size] - c[n + 1 : n + 1 + size]  # cs[p+n] - cs[p]
    return np.moveaxis(before, 0, axis), np.moveaxis(after, 0, axis)


def _ray_offsets(angle: np.ndarray, length_mm: float, spacing_xy: Tuple[float, float]):
    """Pixel offsets (di, dj) and distances (mm) along rays at ``angle`` (radians; 0 = +x)."""
    step = 0.7 * min(spacing_xy)
    t = np.arange(1, int(np.ceil(length_mm / step)) + 1) * step
    di = np.rint(np.cos(angle)[:, None] * t[None] / spacing_xy[0]).astype(int)
    dj = np.rint(np.sin(angle)[:, None] * t[None] / spacing_xy[1]).astype(int)
    return di, dj, t


def _gather(volume: np.ndarray, k, j, i, dj, di, fill):
    """volume[k, j + dj, i + di] for arrays of points (N,) and offsets (M,): (N, M) plus inside mask."""
    jj = j[:, None] + dj[None]
    ii = i[:, None] + di[None]
    inside = (jj >= 0) & (jj < volume.shape[1]) & (ii >= 0) & (ii < volume.shape[2])
    values = volume[k[:, None], np.clip(jj, 0, volume.shape[1] - 1), np.clip(ii, 0, volume.shape[2] - 1)]
    return np.where(inside, values, fill), inside


def _first_hit(hit: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Distance of the first True along axis 1 (inf if none)."""
    any_hit = hit.any(axis=1)
    return np.where(any_hit, t[np.argmax(hit, axis=1)], np.inf)


# ---------------------------------------------------------------------- candidates
def _enclosure(code, k, j, i, spacing_xy):
    """Ray test on a code volume (1 bone, 2 unknown: metal / out of view, 0 other).

    Returns:
        enclosure (0-1), inscribed radius (mm), first-hit distance per direction (N, D; inf: open,
        NaN: unknown first).

    """
    angles = 2 * np.pi * np.arange(N_DIRECTIONS) / N_DIRECTIONS
    di, dj, t = _ray_offsets(angles, RAY_MM, spacing_xy)
    hits = np.empty((len(k), N_DIRECTIONS))
    leaves = np.zeros((len(k), N_DIRECTIONS), bool)
    for d in range(N_DIRECTIONS):
        values, _ = _gather(code, k, j, i, dj[d], di[d], 2)
        hits[:, d] = _first_hit(values == 1, t)
        leaves[:, d] = _first_hit(values == 2, t) < hits[:, d]
    closed = np.isfinite(hits) & ~leaves
    enclosure = closed.mean(axis=1) + 0.5 * leaves.mean(axis=1)
    radius = np.min(np.where(closed, hits, RAY_MM), axis=1)
    return enclosure, radius, np.where(leaves, np.nan, hits)


def _ramp(x, lo0, lo1, hi1, hi0):
    """Trapezoid membership: 0 below lo0, 1 on [lo1, hi1], 0 above hi0."""
    x = np.asarray(x, float)
    up = np.clip((x - lo0) / max(lo1 - lo0, 1e-9), 0, 1)
    down = np.clip((hi0 - x) / max(hi0 - hi1, 1e-9), 0, 1)
    return np.minimum(up, down)


def _body_measure(hu, k, j, i, spacing_xy):
    """Vertebral body anterior to each candidate: (score, wall distance, depth, angle) per candidate.

    Rays at -30..30 degrees around the anterior direction (-y in LPS). Along a ray: the body's
    posterior wall is the first sample above :data:`WALL_HU` within the enclosure radius; the body
    extends anteriorly while the 6 mm running mean stays above :data:`BODY_HU` (bone, osteoporotic
    trabecular bone and disc are denser than the fat and muscle around the spine). Its depth must be
    15-55 mm; the fraction of bone-dense samples inside weights the score (0.5-1).
    """
    from scipy.ndimage import uniform_filter1d

    angles = -np.pi / 2 + np.deg2rad(np.array([-30.0, -15.0, 0.0, 15.0, 30.0]))
    length = RAY_MM + BODY_DEPTH_MM[1] + 10.0
    di, dj, t = _ray_offsets(angles, length, spacing_xy)
    step = t[1] - t[0]
    window = max(1, int(round(6.0 / step)))
    best = np.zeros(len(k))
    wall = np.full(len(k), np.nan)
    depth = np.full(len(k), np.nan)
    best_angle = np.full(len(k), -np.pi / 2)
    for a in range(len(angles)):
        values, _ = _gather(hu, k, j, i, dj[a], di[a], -1000.0)
        values = np.minimum(values, METAL_HU)
        first = (values > WALL_HU) & (t[None] <= RAY_MM)
        has_wall = first.any(axis=1)
        d0_idx = np.argmax(first, axis=1)
        mean = uniform_filter1d(values, size=window, axis=1, mode="nearest", origin=-(window // 2))
        rel = t[None] - t[d0_idx][:, None]
        low = (mean < BODY_HU) & (rel > 0)
        end_idx = np.where(low.any(axis=1), np.argmax(low, axis=1), len(t) - 1)
        d = t[end_idx] - t[d0_idx]
        seg = (rel >= 0) & (t[None] < t[end_idx][:, None])
        fill = ((values > BONE_HU) & seg).sum(axis=1) / np.maximum(seg.sum(axis=1), 1)
        size_ok = _ramp(d, 8.0, BODY_DEPTH_MM[0], 45.0, BODY_DEPTH_MM[1] + 10)
        s = has_wall * size_ok * (0.5 + 0.5 * np.minimum(1, 2 * fill))
        s = s * (1.0 - 0.15 * abs(a - 2) / 2)  # prefer the straight anterior ray a little
        better = s > best
        best = np.where(better, s, best)
        wall = np.where(better, t[d0_idx], wall)
        depth = np.where(better, d, depth)
        best_angle = np.where(better, angles[a], best_angle)
    return best, wall, depth, best_angle


def _body_width(hu, k, jc, ic, spacing_xy):
    """Left-right width (mm) of the bone around (jc, ic): extent of the bone run (gaps < 6 mm)."""
    widths = np.full(len(k), np.nan)
    for n, (kk, j, i) in enumerate(zip(k, np.rint(jc).astype(int), np.rint(ic).astype(int))):
        if not (0 <= j < hu.shape[1] and 0 <= i < hu.shape[2]):
            continue
        row = hu[kk, j] > 100.0
        ext = 0
        for direction in (-1, 1):
            gap, p, last = 0, i, i
            while 0 <= p < len(row) and abs(p - i) * spacing_xy[0] < 40.0:
                if row[p]:
                    last, gap = p, 0
                else:
                    gap += 1
                    if gap * spacing_xy[0] > 6.0:
                        break
                p += direction
            ext += abs(last - i)
        widths[n] = (ext + 1) * spacing_xy[0]
    return widths


def _candidates(hu: np.ndarray, spacing_xy: Tuple[float, float]):
    """Canal candidates of every slice: arrays k, j, i (float, sub-pixel centre) and their features."""
    from scipy.ndimage import binary_dilation, maximum_filter

    metal = hu >= METAL_HU
    if metal.any():  # blooming and streaks around metal: neither bone nor fluid
        r = max(1, int(round(6.0 / min(spacing_xy))))
        yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
        metal = binary_dilation(metal, structure=(np.hypot(yy, xx) <= r)[None])
    bone = (hu > BONE_HU) & ~metal
    fluid = (hu > FLUID_HU[0]) & (hu < FLUID_HU[1]) & ~metal
    code = bone.astype(np.int8) + 2 * metal.astype(np.int8)
    n_i = max(1, int(round(RAY_MM / spacing_xy[0])))
    n_j = max(1, int(round(RAY_MM / spacing_xy[1])))
    left, right = _side_counts(bone, 2, n_i)
    front, back = _side_counts(bone, 1, n_j)
    sides = (left > 0).astype(np.int8) + (right > 0) + (front > 0) + (back > 0)
    # the posterior side may be out of view at the image edge
    j_index = np.arange(hu.shape[1])[None, :, None]
    at_edge = (hu.shape[1] - 1 - j_index) < n_j
    pre = fluid & ((sides >= 3) | ((sides >= 2) & at_edge & (front > 0)))
    k, j, i = np.nonzero(pre)
    empty = np.zeros(0)
    if len(k) == 0:
        return (empty,) * 9
    enclosure, radius, hits = _enclosure(code, k, j, i, spacing_xy)
    keep = (enclosure >= 0.5) & (radius >= RADIUS_MM[0])
    k, j, i, enclosure, radius, hits = k[keep], j[keep], i[keep], enclosure[keep], radius[keep], hits[keep]
    # centres of the holes: local maxima of enclosure x radius within ~5 mm
    value = np.zeros(hu.shape, np.float32)
    value[k, j, i] = enclosure * np.minimum(radius, RADIUS_MM[1])
    size = (1, 2 * max(1, int(round(5.0 / spacing_xy[1]))) + 1, 2 * max(1, int(round(5.0 / spacing_xy[0]))) + 1)
    peak = value[k, j, i] >= maximum_filter(value, size=size, mode="constant")[k, j, i]
    k, j, i, enclosure, radius, hits = k[peak], j[peak], i[peak], enclosure[peak], radius[peak], hits[peak]
    # sub-pixel centre: midpoint of opposite hits (where both closed)
    angles = 2 * np.pi * np.arange(N_DIRECTIONS) / N_DIRECTIONS
    half = N_DIRECTIONS // 2
    h1, h2 = hits[:, :half], hits[:, half:]
    both = np.isfinite(h1) & np.isfinite(h2)
    shift = np.where(both, (np.where(both, h1, 0) - np.where(both, h2, 0)) / 2, np.nan)
    n_pairs = np.maximum(np.isfinite(shift).sum(axis=1), 1)
    dx = np.nansum(shift * np.cos(angles[:half]), axis=1) * 2 / n_pairs
    dy = np.nansum(shift * np.sin(angles[:half]), axis=1) * 2 / n_pairs
    dx = np.clip(np.nan_to_num(dx), -3.0, 3.0)
    dy = np.clip(np.nan_to_num(dy), -3.0, 3.0)
    ic = i + dx / spacing_xy[0]
    jc = j + dy / spacing_xy[1]
    # posterior elements: bone behind (posterior = +y = direction index N/4), or out of view
    post = hits[:, N_DIRECTIONS // 4]
    behind = np.where(np.isnan(post), 0.5, np.isfinite(post).astype(float))
    return k, jc, ic, i, j, enclosure, radius, behind, hits


def _score_candidates(hu, spacing_xy):
    """Candidates with their anatomy score and body measurements."""
    k, jc, ic, i, j, enclosure, radius, behind, _ = _candidates(hu, spacing_xy)
    if len(k) == 0:
        z = np.zeros(0)
        return {name: z for name in ("k", "j", "i", "score", "wall", "depth", "angle")}
    body, wall, depth, angle = _body_measure(hu, k, j.astype(int), i.astype(int), spacing_xy)
    score = (
        _ramp(enclosure, 0.5, 0.8, 1.0, 1.1)
        * _ramp(radius, RADIUS_MM[0], 4.5, 11.0, RADIUS_MM[1] + 2)
        * body
        * (0.5 + 0.5 * behind)
    )
    return {"k": k, "j": jc, "i": ic, "score": score, "wall": wall, "depth": depth, "angle": angle}


# ---------------------------------------------------------------------- tracking
def _link(cands, n_slices: int, spacing: np.ndarray, max_gap: int = 4, gain: Optional[np.ndarray] = None):
    """Best path through the candidates (one per slice at most): list of candidate indices.

    ``gain``: what each candidate adds to a path (default its score; the track passes :func:`_path_score`); candidates
    whose gain is under :data:`MIN_SCORE` are not linked.
    """
    gain = np.asarray(cands["score"] if gain is None else gain, dtype=float)
    keep = np.flatnonzero(gain >= MIN_SCORE)
    if len(keep) == 0:
        return []
    order = keep[np.argsort(cands["k"][keep], kind="stable")]
    k = cands["k"][order].astype(int)
    xy = np.column_stack([cands["i"][order] * spacing[0], cands["j"][order] * spacing[1]])
    s = gain[order]
    value = s.copy()
    prev = np.full(len(order), -1)
    by_slice = {kk: np.flatnonzero(k == kk) for kk in np.unique(k)}
    per_slice_mm = 4.0 * spacing[2] / 3.0
    for n in range(len(order)):
        best, arg = 0.0, -1
        for g in range(1, max_gap + 2):
            idx = by_slice.get(k[n] - g)
            if idx is None:
                continue
            dist = np.hypot(*(xy[idx] - xy[n]).T)
            allowed = per_slice_mm * g + 2.0
            cost = np.where(dist <= allowed, 0.0, 0.3 * (dist - allowed) / per_slice_mm)
            cost = cost + 0.1 * (g - 1)
            cand = value[idx] - cost
            cand[dist > allowed + per_slice_mm] = -np.inf
            m = int(np.argmax(cand))
            if cand[m] > best:
                best, arg = float(cand[m]), int(idx[m])
        value[n] = s[n] + best
        prev[n] = arg
    path = [int(np.argmax(value))]
    while prev[path[-1]] >= 0:
        path.append(int(prev[path[-1]]))
    return [int(order[p]) for p in path[::-1]]


def body_midline_x(hu: np.ndarray, geometry) -> np.ndarray:
    """(K,) LPS x (mm) of the middle of the patient's body outline (> -300 HU) per axial slice (NaN if none)."""
    body = hu > -300.0
    counts = body.sum(axis=(1, 2)).astype(float)
    columns = body.sum(axis=1) @ np.arange(hu.shape[2], dtype=float)
    i = np.where(counts > 0, columns / np.maximum(counts, 1.0), np.nan)
    index = np.column_stack([np.nan_to_num(i), np.zeros(len(i)), np.arange(len(i), dtype=float)])
    x = geometry.index_to_lps(index)[:, 0]
    return np.where(np.isfinite(i), x, np.nan)


def midline_weight(offset_mm: np.ndarray) -> np.ndarray:
    """1 for a canal within :data:`MIDLINE_MM` of the body's middle, falling linearly to 0.1 at twice that."""
    offset = np.nan_to_num(np.abs(np.asarray(offset_mm, float)), nan=0.0)
    return np.clip(1.0 - 0.9 * (offset - MIDLINE_MM) / MIDLINE_MM, 0.1, 1.0)


def _drop_lateral_drift(x: np.ndarray, z: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Keep-mask of a canal path (lateral position ``x`` and height ``z`` in mm) without its lateral drifts.

    The lateral slope at each node is measured between the nodes about :data:`DRIFT_WINDOW_MM` / 2 above and
    below it; nodes steeper than :data:`MAX_LATERAL_SLOPE` split the path, and the part with the largest
    summed ``score`` is kept (pass the score times :func:`midline_weight`: the canal lies near the body's
    left-right middle, the ilium beside it). A canal follows the column, which tilts sideways by at most
    half the Cobb angle of a scoliosis; a path that runs sideways faster has left the canal (sacral ala,
    ilium).
    """
    n = len(z)
    keep = np.ones(n, dtype=bool)
    if n < 3:
        return keep
    if np.any(np.diff(z) < 0):
        order = np.argsort(z, kind="stable")
        keep[order] = _drop_lateral_drift(np.asarray(x)[order], np.asarray(z)[order], np.asarray(score)[order])
        return keep
    half = 0.5 * DRIFT_WINDOW_MM
    steep = np.zeros(n, dtype=bool)
    for m in range(n):
        lo = int(np.searchsorted(z, z[m] - half, side="left"))
        hi = int(np.searchsorted(z, z[m] + half, side="right")) - 1
        lo, hi = min(lo, m), max(hi, m)
        if hi > lo and z[hi] > z[lo]:
            steep[m] = abs(x[hi] - x[lo]) / (z[hi] - z[lo]) > MAX_LATERAL_SLOPE
    if not steep.any():
        return keep
    labels = np.cumsum(steep) * (~steep)  # segment id per node between steep nodes (0: steep)
    segments = [np.flatnonzero((labels == value) & ~steep) for value in np.unique(labels[~steep])]
    if not segments:
        return ~keep
    best = max(segments, key=lambda idx: float(score[idx].sum()))
    keep[:] = False
    keep[best] = True
    return keep


#: How far (mm, along z) the x of the network's nearest confident column point stands for the middle of the column
#: (:func:`column_middle_x`): about three lumbar levels; farther, the middle of the body outline does.
COLUMN_REACH_MM = 100.0


def column_middle_x(hu: np.ndarray, geometry, column: Optional[np.ndarray] = None) -> np.ndarray:
    """(K,) LPS x (mm) of the middle of the column per analysis slice.

    Where ``column`` ((M, 3) LPS points of the centre-line network, Pisov et al. 2020, §3.1, on the slices where it
    is confident) has a point within :data:`COLUMN_REACH_MM` in z, the x of the nearest one; elsewhere the middle of
    the body outline (:func:`body_midline_x`), which is the column's only where the field of view is centred on the
    patient left to right.
    """
    middle = body_midline_x(hu, geometry)
    if column is None or not len(column):
        return middle
    column = np.asarray(column, dtype=float).reshape(-1, 3)
    n = hu.shape[0]
    z = geometry.index_to_lps(np.column_stack([np.zeros(n), np.zeros(n), np.arange(n)]))[:, 2]
    nearest = np.argmin(np.abs(z[:, None] - column[None, :, 2]), axis=1)
    reach = np.abs(z - column[nearest, 2]) <= COLUMN_REACH_MM
    return np.where(reach, column[nearest, 0], middle)


def _path_score(cands, hu: np.ndarray, geometry, column: Optional[np.ndarray] = None) -> np.ndarray:
    """Each candidate's score times :func:`midline_weight` of its left-right distance from the column's middle.

    The canal path (:func:`_link`) and its cut at a lateral drift (:func:`_drop_lateral_drift`) both use it; the middle
    is the centre-line network's column where it is confident, else the body outline's (:func:`column_middle_x`).
    Only the spine's canal is unpaired and in the column; the marrow of the ilium between its cortices also passes
    the canal tests (a low-density hole ringed by bone, bone in front of it), 55-80 mm beside it. Weighted only in the
    drift rule, such a path still won wherever the column above the pelvis was out of view: a real abdominal CT cut
    to L3 and the sacrum (a pelvic CT's field of view) was tracked down the right ilium from the sacrum to L5 (z 94-262
    mm, 56-82 mm off the middle) and the network's points on L5 were moved there, which lost L5 and named L3-L4
    "T10-T11" (docs/findings.md, "A pelvic field of view"). The outline's middle alone misleads on a field of view cut
    beside the spine (the same CT cut 26 mm left of its canal: the right ilium lies nearer that middle than the
    canal), hence the network's column where it has one.
    """
    if len(cands["k"]) == 0:
        return np.asarray(cands["score"], dtype=float)
    index = np.column_stack([cands["i"], cands["j"], cands["k"]]).astype(float)
    offset = geometry.index_to_lps(index)[:, 0] - column_middle_x(hu, geometry, column)[cands["k"].astype(int)]
    return np.asarray(cands["score"], dtype=float) * midline_weight(offset)


def track_spinal_canal(image, *, in_plane_mm: float = 2.0, slice_mm: float = 3.0,
                       column: Optional[np.ndarray] = None) -> CanalTrack:
    """Follow the spinal canal through a CT and place the vertebral-body centre in front of it.

    Args:
        image: SimpleITK CT in HU, any orientation (reoriented with ``to_canonical`` after
            box averaging).
        in_plane_mm: in-plane pixel size of the analysis (box averaging by an integer factor).
        slice_mm: slice spacing of the analysis (box averaging by an integer factor).
        column: (M, 3) LPS points where the centre-line network is confident: the left-right middle the canal
            is expected near (:func:`_path_score`), from those of them with a canal candidate behind them
            (:func:`canal_support_at`); None, or none of them supported: the body outline's middle.

    Returns:
        The :class:`CanalTrack` (empty, ``found`` False, where no canal is found).

    """
    import time

    timings = {}
    t0 = time.perf_counter()
    hu, geometry = _analysis_volume(image, in_plane_mm, slice_mm)
    timings["volume"] = time.perf_counter() - t0
    spacing = np.asarray(geometry.spacing, float)
    spacing_xy = (float(spacing[0]), float(spacing[1]))
    t0 = time.perf_counter()
    cands = _score_candidates(hu, spacing_xy)
    timings["candidates"] = time.perf_counter() - t0
    if column is not None and len(column):
        # only the network's points with a canal behind them say where the column's middle is: on the real abdominal
        # CT with a colon filled with oral contrast drawn beside L2-L4, the network put the spine into the colon on
        # 11 of its confident slices, 55-75 mm beside it (benchmarks/bench_real_variants.py, colon_left), and that
        # middle led the path down the ilium, off the canal
        column = np.asarray(column, dtype=float).reshape(-1, 3)
        column = column[_supported(column, geometry, cands)]
        if len(column):
            return _extended(_follow(hu, geometry, cands, column, timings), _follow(hu, geometry, cands, None, {}))
    return _follow(hu, geometry, cands, None, timings)


#: Where the path guided by the network's column ends and the path guided by the body outline's middle goes on, the
#: two join when their canal centres lie this close (mm, in-plane) on the last slice of the first (:func:`_extended`).
JOIN_MM = 6.0


def _extended(track: CanalTrack, outline: CanalTrack) -> CanalTrack:
    """``track`` (guided by the network's column) continued beyond its ends by ``outline`` (the outline's middle).

    The network's column is only as good as the slices where it lies on a vertebra: a contrast-filled colon against the
    psoas (the real abdominal CT with a colon 44 mm across drawn beside L3-L5) makes canal-like pockets between the
    colon and the muscles beside it, the network's points in the colon find support there, and the column's middle
    then left L4-L5 without a path, while the outline's path followed the canal through them. Each end of ``track``
    is continued slice by slice along ``outline`` as long as ``outline`` is on the track there, when on ``track``'s
    last slice the two canal centres lie within :data:`JOIN_MM`.
    """
    if not track.found or not outline.found:
        return track if track.found else outline
    on = np.flatnonzero(track.on_track)
    other = outline.on_track
    first, last = int(on[0]), int(on[-1])
    add = []
    for end, step in ((first, -1), (last, 1)):
        if not other[end] or np.hypot(*(outline.canal[end, :2] - track.canal[end, :2])) > JOIN_MM:
            continue
        k = end + step
        while 0 <= k < len(other) and other[k] and not track.on_track[k]:
            add.append(k)
            k += step
    if not add:
        return track
    add = np.asarray(add)
    for name in ("canal", "body", "score", "body_depth_mm", "body_width_mm"):
        getattr(track, name)[add] = getattr(outline, name)[add]
    return track


def _follow(hu: np.ndarray, geometry, cands: dict, column: Optional[np.ndarray], timings: dict) -> CanalTrack:
    """The :class:`CanalTrack` through scored candidates (:func:`_score_candidates`) of the analysis volume ``hu``."""
    import time

    spacing = np.asarray(geometry.spacing, float)
    spacing_xy = (float(spacing[0]), float(spacing[1]))
    t0 = time.perf_counter()
    n = hu.shape[0]
    z = geometry.index_to_lps(np.column_stack([np.zeros(n), np.zeros(n), np.arange(n)]))[:, 2]
    # the path is chosen with each candidate's score times its midline weight (a paired structure far beside the
    # middle, the ilium's marrow between its cortices, must not outscore the canal: _path_score)
    weighted = _path_score(cands, hu, geometry, column)
    path = _link(cands, n, spacing, gain=weighted)
    canal = np.full((n, 3), np.nan)
    body = np.full((n, 3), np.nan)
    score = np.zeros(n)
    depth = np.full(n, np.nan)
    width = np.full(n, np.nan)
    wall = np.full(n, np.nan)
    angle = np.full(n, -np.pi / 2)
    if path:
        ks = cands["k"][path].astype(int)
        canal_index = np.column_stack([cands["i"][path], cands["j"][path], ks])
        pts = geometry.index_to_lps(canal_index)
        steady = _drop_lateral_drift(pts[:, 0], z[ks], weighted[path])
        path = [c for c, ok in zip(path, steady) if ok]
        ks, pts = ks[steady], pts[steady]
    if len(path) >= 2:
        span = np.arange(ks[0], ks[-1] + 1)
        for d in range(2):
            canal[span, d] = np.interp(span, ks, pts[:, d])
        canal[span, 2] = z[span]
        score[ks] = cands["score"][path]
        ok = np.isfinite(cands["depth"][path])
        if ok.any():
            from scipy.ndimage import median_filter

            dd = np.interp(span, ks[ok], cands["depth"][path][ok])
            ww = np.interp(span, ks[ok], cands["wall"][path][ok])
            depth[span] = median_filter(dd, size=5, mode="nearest")
            wall[span] = median_filter(ww, size=5, mode="nearest")
            # the body centre is placed straight anterior: the oblique rays only help to find the body
            # (on the TPTBox crop the per-slice best ray angle moved the centre 5-8 mm sideways)
            offset = wall[span] + depth[span] / 2
            body[span, 0] = canal[span, 0] + offset * np.cos(angle[span])
            body[span, 1] = canal[span, 1] + offset * np.sin(angle[span])
            body[span, 2] = z[span]
            bidx = geometry.lps_to_index(body[span])
            width[span] = _body_width(hu, span, bidx[:, 1], bidx[:, 0], spacing_xy)
    candidates = []
    if len(cands["k"]):
        all_pts = geometry.index_to_lps(np.column_stack([cands["i"], cands["j"], cands["k"]]))
        for kk in range(n):
            sel = cands["k"] == kk
            candidates.append(np.column_stack([all_pts[sel], cands["score"][sel]]))
    else:
        candidates = [np.zeros((0, 4)) for _ in range(n)]
    timings["track"] = time.perf_counter() - t0
    return CanalTrack(
        z=z,
        canal=canal,
        body=body,
        score=np.clip(score, 0.0, 1.0),
        body_depth_mm=depth,
        body_width_mm=width,
        candidates=candidates,
        timings_s=timings,
        scored=(geometry, cands),
    )


def spine_likelihood_at(
    track: CanalTrack,
    points_lps: np.ndarray,
    near_mm: float = 12.0,
    far_mm: float = 25.0,
    weighted: bool = True,
) -> np.ndarray:
    """How well proposed per-slice spine centres agree with the canal track (0-1).

    1 within ``near_mm`` (in-plane) of the track's body centre at the point's height, falling
    linearly to 0 at ``far_mm``, times the track's confidence there (best slice score within
    +-3 slices, rescaled so that a score of 0.5 or more counts fully). 0 where the track does not
    reach the point's height.

    Args:
        track: the :class:`CanalTrack`.
        points_lps: (N, 3) LPS points.
        near_mm: in-plane distance up to which a point fully agrees.
        far_mm: in-plane distance from which a point does not agree at all.
        weighted: multiply by the track's confidence (``False``: the distance term only).

    Returns:
        (N,) likelihoods.

    """
    points = np.atleast_2d(np.asarray(points_lps, float))
    out = np.zeros(len(points))
    on = track.on_track & np.isfinite(track.body[:, 0])
    if on.sum() < 2:
        return out
    z = track.z[on]
    bx, by = track.body[on, 0], track.body[on, 1]
    conf = np.clip(track.confidence()[on] / 0.5, 0.0, 1.0)
    dz = float(np.median(np.diff(track.z))) if len(track.z) > 1 else 3.0
    inside = (points[:, 2] >= z.min() - dz) & (points[:, 2] <= z.max() + dz)
    x = np.interp(points[:, 2], z, bx)
    y = np.interp(points[:, 2], z, by)
    c = np.interp(points[:, 2], z, conf)
    dist = np.hypot(points[:, 0] - x, points[:, 1] - y)
    near = np.clip((far_mm - dist) / (far_mm - near_mm), 0.0, 1.0)
    out[inside] = (near * c if weighted else near)[inside]
    return out


def track_confidence_at(track: CanalTrack, z: np.ndarray) -> np.ndarray:
    """Track confidence (0-1, a slice score of 0.5 or more counts fully) at heights ``z``; 0 off the track."""
    z = np.asarray(z, float)
    on = track.on_track
    if on.sum() < 2:
        return np.zeros(z.shape)
    zt = track.z[on]
    conf = np.interp(z, zt, np.clip(track.confidence()[on] / 0.5, 0.0, 1.0))
    dz = float(np.median(np.diff(track.z)))
    return np.where((z < zt.min() - dz) | (z > zt.max() + dz), 0.0, conf)


def body_centre_at(track: CanalTrack, z: np.ndarray) -> Optional[np.ndarray]:
    """(N, 3) track body centre at heights ``z`` (NaN outside the track), or None if no track."""
    on = track.on_track & np.isfinite(track.body[:, 0])
    if on.sum() < 2:
        return None
    z = np.asarray(z, float)
    zt = track.z[on]
    out = np.stack([np.interp(z, zt, track.body[on, 0]), np.interp(z, zt, track.body[on, 1]), z], axis=-1)
    dz = float(np.median(np.diff(track.z)))
    out[(z < zt.min() - dz) | (z > zt.max() + dz), :2] = np.nan
    return out


#: A point has a canal of its own (:func:`canal_support_at`) where a canal candidate's body centre lies within this
#: many mm of it (in-plane; the distance up to which :func:`spine_likelihood_at` agrees fully). At 25 mm (its far
#: end) the network's point at the lower end of a contrast-filled colon, 24 mm beside the spine's body, counted as
#: supported by the spine's own canal and bent the curve.
CANAL_SUPPORT_MM = 12.0


def _supported(points_lps: np.ndarray, geometry, cands: dict, within_mm: float = CANAL_SUPPORT_MM) -> np.ndarray:
    """(N,) whether a canal candidate the track could link lies behind each point (see :func:`canal_support_at`)."""
    points = np.atleast_2d(np.asarray(points_lps, float))
    out = np.zeros(len(points), dtype=bool)
    usable = np.flatnonzero((np.asarray(cands["score"]) >= MIN_SCORE) & np.isfinite(cands["depth"]))
    if not len(usable) or not len(points):
        return out
    canal = geometry.index_to_lps(np.column_stack([cands["i"][usable], cands["j"][usable], cands["k"][usable]]))
    # the body centre straight in front of the canal (-y in LPS), as the track places it
    bodies = canal[:, :2] - np.column_stack([np.zeros(len(usable)), cands["wall"][usable] + cands["depth"][usable] / 2])
    slice_of = np.rint(geometry.lps_to_index(points)[:, 2]).astype(int)
    for n, k in enumerate(slice_of):
        on_slice = cands["k"][usable].astype(int) == k
        if on_slice.any():
            out[n] = bool(np.hypot(*(bodies[on_slice] - points[n, :2]).T).min() <= within_mm)
    return out


def canal_support_at(track: CanalTrack, points_lps: np.ndarray, within_mm: float = CANAL_SUPPORT_MM) -> np.ndarray:
    """Whether each proposed spine centre has a spinal canal behind it, on or off the track.

    A point is supported where, on the track's analysis slice that holds it, a canal candidate that the track could
    link (score at least :data:`MIN_SCORE`, a body measured in front of it) has its body centre (straight anterior by
    the posterior wall distance plus half the body's depth, as the track places it) within ``within_mm`` of it
    in-plane. A contrast-filled colon, the aorta or a heart chamber has no such hole ringed by bone behind it (module
    docstring; a colon wedged against the psoas can make a pocket that passes, see :func:`_extended`); the vertebra
    the network found, the sacrum, or a second column of a scoliosis does.

    Args:
        track: the :class:`CanalTrack` (its :attr:`CanalTrack.scored` candidates).
        points_lps: (N, 3) LPS points.
        within_mm: in-plane distance from a candidate's body centre.

    Returns:
        (N,) bool; all False without candidates.
    """
    points = np.atleast_2d(np.asarray(points_lps, float))
    if track.scored is None:
        return np.zeros(len(points), dtype=bool)
    geometry, cands = track.scored
    return _supported(points, geometry, cands, within_mm)
