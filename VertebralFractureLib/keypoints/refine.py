"""End-plate refinement of detected keypoints: snap each point to the disc / end-plate edge.

Three refinements live here:

* :func:`refine_on_ct` (the CT analysis): each keypoint is moved onto the body's cortical edges
  with sub-voxel precision, sampling the ORIGINAL CT voxels in the body's own mid-sagittal plane
  (:func:`VertebralFractureLib.spine.straighten.body_plane`); see its docstring for the method.
* :func:`refine_endplates` (below; the 1 mm 2D image the detector reads, used for radiographs and
  by the 2D generated-case evaluation): snapping along the image rows.
* :func:`trace_endplates` (radiographs): each endplate traced across its body, so that a collapsed,
  tilted or concave endplate moves its keypoints (see its docstring).

About :func:`refine_endplates`:

The region-proposal network (Pisov et al. 2020, §3.2, eq. 2) regresses the six keypoints as offsets from anchor
shapes; on fractured bodies it stays close to a normal shape (a biconcave end plate's middle
point sits on the straight line between the corners), so G comes out too high and the moderate
sensitivity was 0.31 on the held-out cases. 001 measures the heights on the end plates, which in
the mid-sagittal CT image are sharp edges: going from the disc into the body the intensity rises
(superior end plate), going out of the body it falls (inferior end plate). Each keypoint is moved
along its column (the straightened image's rows follow the spine) to the strongest such edge
within ``SEARCH_MM``, then ``OFFSET_MM`` into the body (the annotated point lies on the end plate,
just inside the edge's steepest slope). The profile is averaged over three columns, ``INSET_MM``
towards the body's middle for the anterior and posterior points, and smoothed by a Gaussian of
``SIGMA_MM``. The constants were chosen on 40 training cases (runs/keypoints_cache), never on the
held-out set.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

#: Half length of the search along the column (mm).
SEARCH_MM = 5.0
#: Final shift from the edge into the body (mm).
OFFSET_MM = 1.0
#: Sampling column moved towards the middle of the body for the anterior / posterior points (mm).
INSET_MM = 0.5
#: Gaussian smoothing of the profile (mm).
SIGMA_MM = 1.0
_STEP_MM = 0.25

# ---------------------------------------------------------------------------------------------- on the CT
#: Half length (mm) of the search for an endplate edge along the body's superior axis. A thoracic disc
#: is 4-6 mm and a lumbar one 8-12 mm high, a body 20-30 mm (Panjabi et al. 1991, 1992), so the next
#: fall of the same polarity (the far endplate of the neighbour, or of the body itself) is >= 20 mm
#: away; 8 mm lets a point the detector misplaced by up to a disc height come back.
CT_SEARCH_MM = 8.0
#: Half length (mm) of the search for the anterior / posterior cortex along the body's AP axis.
CT_AP_SEARCH_MM = 4.0
#: Width (mm) of the Gaussian preference for edges near the detector's point (the quality check's
#: ``ENDPLATE_PRIOR_MM``: among edges of similar strength the nearest wins).
CT_PRIOR_MM = 6.0
#: Weakest fall (HU/mm) that counts as a cortical edge (the quality check's ``ENDPLATE_MIN_GRADIENT``).
CT_MIN_GRADIENT = 12.0
#: Half width (mm) of the band of parallel profiles around each keypoint column / lateral offset.
CT_BAND_MM = 1.0
#: Antero-posterior offsets (mm) of the parallel endplate profiles of one keypoint, each of which finds
#: its own edge: 3 mm of endplate, over which a normal or a moderately concave endplate moves < 0.5 mm.
CT_PROFILE_OFFSETS_MM = (-1.5, -0.75, 0.0, 0.75, 1.5)
#: Lateral offsets (mm) averaged into each of those profiles (noise of a sharp kernel; the endplate is
#: flat over 3 mm side to side at the mid-sagittal plane).
CT_PROFILE_LATERAL_MM = (-1.5, 0.0, 1.5)
#: A profile's edge agrees when it lies within the larger of this (mm) and a third of the voxel extent
#: along the profile of the median edge of the keypoint's profiles; the others are rejected as noise,
#: a vessel or a profile that ran into the neighbour's endplate.
CT_AGREE_MM = 1.0
#: Profiles that must agree for an edge to be accepted (a majority of ``CT_PROFILE_OFFSETS_MM``).
CT_MIN_AGREEING = 3
#: Largest voxel extent (mm) along the profile at which the outer face of a cortical endplate is
#: resolved, so its steepest fall is the bone/disc border. Beyond it (3 mm slices) the endplate, a disc
#: thinner than a slice and the neighbour's endplate blur into one bright band (measured on the real
#: 3 mm chest CT, benchmarks/bench_real.py: the steepest fall lay 3.1 +- 2.1 mm beyond the annotated
#: border, on the neighbour's inner face), and the band's centre is used instead (:func:`endplate_edge`).
CT_RESOLVED_MM = 2.0
#: Widest band (rise to fall, in voxels along the profile) that one cortical endplate thinner than a
#: slice gives: a thin plate sampled by slices of thickness v, linearly interpolated and differentiated
#: at sigma v / 2 has its steepest rise and fall 1.0-1.4 v apart (1.3-1.36 v simulated over sub-slice
#: offsets); two endplates around a disc of >= 2 mm give >= 1.7 v. Wider bands are two merged endplates.
CT_SINGLE_PLATE_WIDTH = 1.5
#: Thickness (mm) of one cortical endplate with its subchondral bone, used to bound the width of the
#: bright band in which the rise is looked for: two endplates and a disc up to a slice thick
#: (<= v + 2 x CT_PLATE_MM) spread over the slices they touch and widened by the linear interpolation
#: between slice centres, so the steepest rise lies at most 3 v + 2 x CT_PLATE_MM inside the fall.
CT_PLATE_MM = 1.0
#: Sampling step (mm) of the profiles.
CT_STEP_MM = 0.25
#: Keypoint columns lie this far inside the anterior / posterior cortex: the larger of this (mm) and ...
CT_INSET_MM = 1.5
#: ... this fraction of the body depth (the convention of :mod:`VertebralFractureLib.shape.measure`,
#: the generator's 1.5 mm with a floor that keeps rounded rims of real bodies out of the heights).
CT_INSET_FRACTION = 0.08
#: Fraction of the body height, about its middle, whose rows give the anterior / posterior cortex.
CT_WALL_FRACTION = 0.5
#: Passes (frame rebuilt from the refined points between passes).
CT_PASSES = 2
#: Largest tilt (mm per mm) of the body's walls against the detector's axis that is followed, and the
#: largest disagreement between the anterior and the posterior wall's tilt: vertebral bodies are
#: nearly rectangular in the mid-sagittal plane, so walls that disagree more are noise (a 3 mm CT).
CT_MAX_TILT = 0.25
CT_MAX_TILT_DISAGREEMENT = 0.1
#: Spacing (mm) of the columns across the body on which each endplate's border is traced (:func:`endplate_line`).
CT_LINE_STEP_MM = 1.0
#: A column's border farther than the larger of this (mm) and one voxel extent along the profile from the
#: endplate's fitted line is not the endplate (a wall, a vessel channel, a bright band inside the body).
CT_LINE_TOLERANCE_MM = 1.5
#: Share of the columns with a border that must lie on the fitted line, and of all traced columns, before the line
#: overrules a keypoint's own border (thick noisy slices find no clear border on many single columns).
CT_LINE_MIN_SUPPORT = 0.6
CT_LINE_MIN_COVERAGE = 0.4
#: How far (mm) the line is extended beyond its outermost supporting column: the corners' columns are the
#: traced span's ends, where the wall or the vein channel takes the border.
CT_LINE_EXTEND_MM = 4.0
#: The body's mid-sagittal plane (:func:`body_midplane`) is the middle of the spinal canal behind it: its walls
#: (the pedicles' inner faces) are looked for on lateral profiles this far (mm) behind the body's posterior
#: wall (the canal is 12-20 mm deep at T1-L5: Panjabi et al. 1991, 1992) ...
CT_CANAL_COLUMNS_MM = (4.0, 6.0, 8.0, 10.0)
#: ... through the upper part of the body's height (fractions of it above the middle: the pedicles join
#: the upper half of the body, so the ring of bone round the canal is closed there).
CT_CANAL_ROWS = (0.0, 0.35)
#: Half widths (mm) searched for each wall: the canal is 14-26 mm wide at T1-L5 (Panjabi et al.), and the
#: detector's plane may lie a few millimetres off its middle.
CT_CANAL_SEARCH_MM = (3.0, 18.0)
#: A canal narrower or wider (mm) than this is not the canal (a foramen, a fracture line, a vessel channel).
CT_CANAL_WIDTH_MM = (10.0, 32.0)
#: Columns (of :data:`CT_CANAL_COLUMNS_MM`) whose midpoints must lie within this (mm) of their median (a column
#: through a foramen or a vessel channel is an outlier), and the largest move (mm) of the plane.
CT_CANAL_MIN_COLUMNS = 3
CT_CANAL_AGREE_MM = 1.5
CT_MAX_PLANE_SHIFT_MM = 6.0
#: The canal's middle is used where the body's own side walls (:data:`CT_SIDE_COLUMNS`, fractions of the depth from
#: the front; searched :data:`CT_SIDE_SEARCH` body depths from the plane; a width of :data:`CT_SIDE_WIDTH` depths) put
#: the body's middle within this (mm) of it; further, the smaller of the two moves when both lie on the same side,
#: none otherwise (in a rotated vertebra, scoliosis, the canal lies off the body's middle).
CT_PLANE_AGREE_MM = 2.0
CT_SIDE_COLUMNS = (0.55, 0.85)
CT_SIDE_SEARCH = (0.3, 1.1)
CT_SIDE_WIDTH = (0.8, 2.0)
#: The body's cortical ring (:func:`ring_middle`), read before the canal: lateral profiles through the middle of the
#: body's depth (fractions from the front: in front of the rib heads and the pedicles' roots, behind the anterior
#: osteophytes), each the mean over rows :data:`CT_RING_ROWS` of the height about the middle ...
CT_RING_COLUMNS = (0.25, 0.35, 0.45, 0.55, 0.65)
CT_RING_ROWS = (-0.2, 0.0, 0.2)
#: ... on each side the cortex is the local maximum that stands at least :data:`CT_RING_MIN_PROMINENCE_HU` above the
#: lowest HU within :data:`CT_RING_NARROW_MM` on both sides of it (a plate 1-2 mm thick, not the plateau of a
#: contrast-filled aorta against the body) and falls at least :data:`CT_RING_MIN_DROP_HU` within
#: :data:`CT_RING_OUTSIDE_MM` outwards; of several, the innermost that falls at least half as far as the one that falls
#: most (the body's outer surface against lung, fat, muscle or a vessel; not a trabecular strut inside it, not a rib
#: head or a calcified vessel wall outside it) ...
CT_RING_MIN_PROMINENCE_HU = 100.0
CT_RING_MIN_DROP_HU = 150.0
CT_RING_NARROW_MM = 3.0
CT_RING_OUTSIDE_MM = 5.0
#: ... the prominence and the fall as they stand for voxels up to this extent (mm) across the cortex; over a coarser
#: voxel a thin plate's contrast falls as its share of the voxel, and both thresholds with it (``CT_RING_SHARP_MM /
#: voxel``): on the 3 mm soft-kernel sample CT the cortex of L3 stands 50-60 HU above the marrow and falls 110-140 HU
#: outwards, a clear ring the full thresholds missed (the canal's middle, under half a voxel away, left the points
#: 1.4-1.9 mm beside both readers' planes, and L4's walls, read off its middle where they lean, sheared its box:
#: 3.9 -> 0.6 mm) ...
CT_RING_SHARP_MM = 1.0
#: ... searched from a quarter of the body's depth out to its depth plus :data:`CT_RING_REACH_MM` (the detector's
#: plane can pass 10 mm beside the middle of a rotated vertebra); a ring narrower or wider than :data:`CT_RING_WIDTH`
#: body depths is not the body's; the plane moves at most :data:`CT_RING_MAX_SHIFT_MM`. The middle is the mean of
#: the columns within :data:`CT_CANAL_AGREE_MM` of their median when at least :data:`CT_RING_MIN_COLUMNS` of the five
#: agree: each column has already shown a cortex on both sides at a body's width, so two that agree are the ring (on
#: the chest CT's T4, a contrast-filled aorta against its left side and a bright trabecular core left two of five
#: columns with both cortices; the canal's middle, which the three-column rule fell back on, lay 4 mm to the right
#: of both the ring and the reference plane).
CT_RING_REACH_MM = 15.0
CT_RING_WIDTH = (0.8, 2.5)
CT_RING_MAX_SHIFT_MM = 15.0
CT_RING_MIN_COLUMNS = 2


def refine_endplates(
    image: np.ndarray,
    keypoints: np.ndarray,
    search_mm: float = SEARCH_MM,
    offset_mm: float = OFFSET_MM,
    inset_mm: float = INSET_MM,
    sigma_mm: float = SIGMA_MM,
) -> np.ndarray:
    """Snap keypoints to end-plate edges.

    Args:
        image: (H, W) image at 1 mm pixels, rows superior -> inferior (normalised or HU).
        keypoints: (n, 6, 2) or (6, 2) ``[column, row]`` pixels, genant.KEYPOINT_NAMES order
            (superior / inferior of anterior, middle, posterior).
        search_mm: half length of the search (``SEARCH_MM``).
        offset_mm: shift from the edge into the body (``OFFSET_MM``).
        inset_mm: column inset of the anterior / posterior profiles (``INSET_MM``).
        sigma_mm: profile smoothing (``SIGMA_MM``).

    Returns:
        Refined keypoints, same shape; columns unchanged.

    """
    from scipy.ndimage import gaussian_filter1d, map_coordinates

    image = np.asarray(image, dtype=np.float32)
    points = np.array(keypoints, dtype=np.float64)
    flat = points.reshape(-1, 6, 2)
    steps = np.arange(-search_mm, search_mm + 1e-6, _STEP_MM)
    for vertebra in flat:
        for index in range(6):
            column, row = vertebra[index]
            superior = index % 2 == 0
            inset = inset_mm if index < 2 else (-inset_mm if index >= 4 else 0.0)
            rows = row + steps
            profile = np.mean(
                [map_coordinates(image, [rows, np.full_like(rows, column + inset + d)], order=1, mode="nearest")
                 for d in (-1.0, 0.0, 1.0)],
                axis=0,
            )
            gradient = np.gradient(gaussian_filter1d(profile, sigma_mm / _STEP_MM))
            best = int(np.argmax(gradient if superior else -gradient))
            vertebra[index, 1] = rows[best] + (offset_mm if superior else -offset_mm)
    return flat.reshape(points.shape)


# ------------------------------------------------------------------------------------ on a radiograph
#: Reach (fraction of the body's mean height) of the endplate trace into the body: a moderate or severe
#: fracture takes 25-40 % or more of one height (Genant et al. 1993), most of it from one endplate.
TRACE_INWARD_FRACTION = 0.35
#: Reach (mm) of the endplate trace out of the body, into the disc (the detector rarely draws a body too small).
TRACE_OUTWARD_MM = 3.0
#: Scale (mm) of the derivative of Gaussian on the trace's profiles.
TRACE_SIGMA_MM = 0.75
#: On each column the innermost fall at least this fraction of the column's strongest is the body's own border.
TRACE_RELATIVE = 0.5
#: Tolerance (mm) of the trace's robust fit and of its inliers.
TRACE_TOLERANCE_MM = 1.5
#: Columns of the trace start and end this far (mm) inside the anterior and posterior keypoints (rounded corners).
TRACE_INSET_MM = 1.0


def trace_endplates(image: np.ndarray, keypoints: np.ndarray, offset_mm: float = OFFSET_MM,
                    inward_fraction: float = TRACE_INWARD_FRACTION, outward_mm: float = TRACE_OUTWARD_MM,
                    sigma_mm: float = TRACE_SIGMA_MM, relative: float = TRACE_RELATIVE,
                    tolerance_mm: float = TRACE_TOLERANCE_MM) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both endplates of each body traced across it on a 2D image; keypoints moved onto the traced lines.

    The detector (Pisov et al. 2020, §3.2, eq. 2) regresses the six keypoints from anchor shapes; on generated
    radiographs it drew every moderately fractured body with a normal shape (G 0.85-0.93 for true G 0.45-0.75),
    and :func:`refine_endplates`, searching +-2.5 mm on the keypoint's own column, cannot follow a collapse of
    5-10 mm. Pisov et al. 2020 measure the heights on the endplates; here each endplate is found as what it is,
    one continuous border from the anterior to the posterior cortex (the radiograph form of
    :func:`endplate_line`, the CT analysis's trace). On columns 1 mm apart between the anterior and the posterior
    keypoint (``TRACE_INSET_MM`` inside them) the profile along the body's axis is searched from
    ``outward_mm`` outside the detector's endplate to ``inward_fraction`` of the body height inside it; going
    outward the intensity falls from the endplate's cortical line to the disc, and the innermost fall at least
    ``relative`` of the column's strongest is the body's own border (in projection a depressed endplate's middle
    shows below its rims, and the neighbour's cortical line lies further out). A quadratic in the AP position is
    fitted to the columns' borders by Tukey's biweight (Holland & Welsch 1977; flat, tilted, or concave endplates:
    normal, wedge, biconcave); a fit bulging out of the body is replaced by a straight line (:func:`_fit_endplate`,
    shared with :func:`endplate_line`). The line is used only when at least ``CT_LINE_MIN_SUPPORT`` of the columns
    with a border and ``CT_LINE_MIN_COVERAGE`` of all columns lie within ``tolerance_mm`` of it; the endplate's
    three keypoints then move onto it, ``offset_mm`` inside the border (the convention of :func:`refine_endplates`),
    their AP positions unchanged.

    Args:
        image: (H, W) image at 1 mm pixels, rows superior -> inferior, bone bright.
        keypoints: (n, 6, 2) ``[column, row]`` pixels, genant.KEYPOINT_NAMES order.
        offset_mm: shift from the border into the body.
        inward_fraction: reach into the body, a fraction of its height (``TRACE_INWARD_FRACTION``).
        outward_mm: reach out of the body (``TRACE_OUTWARD_MM``).
        sigma_mm: derivative-of-Gaussian scale (``TRACE_SIGMA_MM``).
        relative: share of a column's strongest fall that the innermost border needs (``TRACE_RELATIVE``).
        tolerance_mm: tolerance of the fit and of its inliers (``TRACE_TOLERANCE_MM``).

    Returns:
        ``(keypoints, traced, own_column)``: the keypoints (same shape; an endplate whose line was not found keeps
        its points), an (n, 2) bool array saying which endplates (superior, inferior) were traced, and an (n, 6)
        bool array saying which keypoints of a traced endplate have the border of their own column (the traced
        column nearest to them) within ``tolerance_mm`` of the line.

    """
    from scipy.ndimage import map_coordinates

    image = np.asarray(image, dtype=np.float32)
    flat = np.array(keypoints, dtype=np.float64).reshape(-1, 6, 2)
    traced = np.zeros((len(flat), 2), dtype=bool)
    own_column = np.zeros((len(flat), 6), dtype=bool)
    for body, points in enumerate(flat):
        sup, inf = points[[0, 2, 4]], points[[1, 3, 5]]
        u = points[[4, 5]].mean(0) - points[[0, 1]].mean(0)
        s = sup.mean(0) - inf.mean(0)
        if np.linalg.norm(u) < 1.0 or np.linalg.norm(s) < 1.0:
            continue
        u = u / np.linalg.norm(u)
        s = s - s.dot(u) * u
        s = s / np.linalg.norm(s)  # superior
        centre = points.mean(0)
        height = float(np.linalg.norm(sup - inf, axis=1).mean())
        steps = np.arange(-inward_fraction * height, outward_mm + 1e-6, _STEP_MM)  # along the outward direction
        for side, (which, outward) in enumerate(((np.array([0, 2, 4]), 1.0), (np.array([1, 3, 5]), -1.0))):
            pu, pt = (points[which] - centre) @ u, (points[which] - centre) @ s
            order = np.argsort(pu)
            grid = np.arange(pu.min() + TRACE_INSET_MM, pu.max() - TRACE_INSET_MM + 1e-6, 1.0)
            if len(grid) < 5:
                continue
            line_t = np.interp(grid, pu[order], pt[order])
            t = line_t[:, None] + outward * steps[None]  # (columns, samples)
            xy = centre + grid[:, None, None] * u + t[..., None] * s
            profiles = map_coordinates(image, [xy[..., 1].ravel(), xy[..., 0].ravel()], order=1,
                                       mode="nearest").reshape(t.shape)
            found_u, found_t, border = [], [], np.full(len(grid), np.nan)
            for column, profile in enumerate(profiles):
                fall = -_gaussian_derivative(profile, sigma_mm / _STEP_MM)
                strongest = float(fall[1:-1].max())
                if strongest <= 0:
                    continue
                peaks = np.flatnonzero((fall[1:-1] >= fall[:-2]) & (fall[1:-1] >= fall[2:])
                                       & (fall[1:-1] >= relative * strongest)) + 1
                if not len(peaks):  # the strongest fall runs out of the search: no border on this column
                    continue
                at = _interpolated_peak(steps, fall, int(peaks[0]))
                found_u.append(grid[column])
                found_t.append(line_t[column] + outward * at)
                border[column] = found_t[-1]
            half = max(0.5 * float(pu.max() - pu.min()), 1.0)
            fit = _fit_endplate(np.asarray(found_u), np.asarray(found_t), pu.mean(), half, outward, tolerance_mm,
                                tolerance_mm, len(grid))
            if fit is None:
                continue
            coefficients = fit[0]
            zk = (pu - pu.mean()) / half
            edge_t = np.stack([np.ones_like(zk), zk, zk * zk], axis=1) @ coefficients - outward * offset_mm
            points[which] = centre + pu[:, None] * u + edge_t[:, None] * s
            traced[body, side] = True
            nearest = border[np.abs(grid[None] - pu[:, None]).argmin(axis=1)]
            with np.errstate(invalid="ignore"):
                own_column[body, which] = np.abs(nearest - (edge_t + outward * offset_mm)) <= tolerance_mm
    return flat.reshape(np.shape(keypoints)), traced, own_column


def _body_frame(points: np.ndarray):
    """Centre, posterior, superior and lateral unit axes of six keypoints (as :class:`quality.checks.BodyFrame`)."""
    p = points[4:6].mean(0) - points[0:2].mean(0)
    s = points[0::2].mean(0) - points[1::2].mean(0)
    if np.linalg.norm(p) < 1.0 or np.linalg.norm(s) < 1.0:
        return None
    p = p / np.linalg.norm(p)
    s = s - s.dot(p) * p
    s = s / np.linalg.norm(s)
    return points.mean(0), p, s, np.cross(p, s)


def _gaussian_derivative(profile: np.ndarray, sigma_samples: float) -> np.ndarray:
    """Derivative of a profile per sample, by a derivative-of-Gaussian filter (Canny 1986)."""
    from scipy.ndimage import gaussian_filter1d

    return gaussian_filter1d(profile.astype(np.float64), max(sigma_samples, 0.5), order=1, mode="nearest")


def _interpolated_peak(positions: np.ndarray, values: np.ndarray, at: int) -> float:
    """Sub-sample position of the peak ``values[at]`` by a parabola through it and its two neighbours.

    The classic peak interpolation of edge detectors (e.g. Devernay 1995): for a Gaussian-smoothed
    step the derivative is a Gaussian, whose top a parabola locates to a small fraction of the step.
    """
    step = float(positions[1] - positions[0])
    if at <= 0 or at >= len(values) - 1:
        return float(positions[at])
    a, b, c = values[at - 1], values[at], values[at + 1]
    curvature = a - 2 * b + c
    shift = 0.5 * (a - c) / curvature if curvature < 0 else 0.0
    return float(positions[at] + np.clip(shift, -0.5, 0.5) * step)


def _fall(positions: np.ndarray, profile: np.ndarray, outward: float, around: float, search: float,
          sigma_mm: float, prior_mm: float, min_gradient: float,
          limits: tuple[float, float] | None = None) -> tuple[float, float, np.ndarray] | None:
    """``(position, strength HU/mm, outward derivative)`` of the body's own steepest fall, or None."""
    step = float(positions[1] - positions[0])
    profile, valid = _continued(profile, sigma_mm, step)
    if profile is None:
        return None
    slope = outward * _gaussian_derivative(profile, sigma_mm / step) / step  # HU/mm gained going outward
    return _fall_on_slope(positions, slope, valid, outward, around, search, prior_mm, min_gradient, limits)


def _continued(profile: np.ndarray, sigma_mm: float, step: float) -> tuple[np.ndarray | None, np.ndarray]:
    """The profile, samples outside the image (NaN) continued by the last value inside, and a validity mask.

    Samples within three derivative scales of the outside are invalid: no edge is taken at the field of view.
    """
    profile = np.asarray(profile, dtype=np.float64)
    valid = np.isfinite(profile)
    if not np.any(valid):
        return None, valid
    if not np.all(valid):
        index = np.arange(len(profile))
        profile = np.interp(index, index[valid], profile[valid])
        reach = int(np.ceil(3 * max(sigma_mm, 0.5) / step))
        valid = ~np.convolve(~valid, np.ones(2 * reach + 1, bool), mode="same").astype(bool)
    return profile, valid


def _fall_on_slope(positions: np.ndarray, slope: np.ndarray, valid: np.ndarray, outward: float, around: float,
                   search: float, prior_mm: float, min_gradient: float, limits: tuple[float, float] | None):
    """:func:`_fall` on a precomputed outward derivative (HU/mm)."""
    fall = -slope
    window = (np.abs(positions - around) <= search) & valid
    if limits is not None:
        window &= (positions >= limits[0]) & (positions <= limits[1])
    window[0] = window[-1] = False
    if not np.any(window):
        return None
    weighted = np.where(window, fall * np.exp(-0.5 * ((positions - around) / prior_mm) ** 2), -np.inf)
    best = int(np.argmax(weighted))
    if fall[best] < min_gradient:
        return None
    # a cortical line has a fall on both faces: the body's own endplate (cortex -> disc) and, a disc
    # further out, the inner face of the neighbour's endplate (cortex -> its marrow); the innermost
    # peak at least half as strong as the best is the body's own
    peaks = np.flatnonzero(window[1:-1] & (fall[1:-1] >= fall[:-2]) & (fall[1:-1] >= fall[2:])
                           & (weighted[1:-1] >= 0.5 * weighted[best])) + 1
    at = int(peaks[0] if outward > 0 else peaks[-1]) if len(peaks) else best
    return _interpolated_peak(positions, fall, at), float(fall[at]), slope


def steepest_fall(
    positions: np.ndarray, profile: np.ndarray, outward: float, around: float, search: float, sigma_mm: float,
    prior_mm: float = CT_PRIOR_MM, min_gradient: float = CT_MIN_GRADIENT,
) -> float | None:
    """Sub-sample position of the steepest HU fall going ``outward`` near ``around`` (None if no edge).

    The derivative of the profile (derivative of Gaussian, ``sigma_mm``) is taken along the outward
    direction; the most negative value within ``around +- search``, weighted by a Gaussian of its
    distance to ``around`` (``prior_mm``), is the edge (or, when another peak at least half as strong
    lies further inside the body, that one: the innermost); a parabola through it and its two
    neighbours gives the sub-sample position (:func:`_interpolated_peak`). Falls weaker than
    ``min_gradient`` HU/mm are no edge.

    Args:
        positions: (n,) equally spaced sample positions (mm).
        profile: (n,) HU along ``positions``.
        outward: +1 when leaving the body means increasing position, else -1.
        around: expected position (mm).
        search: half length of the window (mm).
        sigma_mm: derivative-of-Gaussian scale (mm).
        prior_mm: width of the distance weighting (mm).
        min_gradient: weakest fall counted (HU/mm).

    """
    found = _fall(positions, profile, outward, around, search, sigma_mm, prior_mm, min_gradient)
    return None if found is None else found[0]


@dataclass
class EndplateEdge:
    """The bone/disc border of one endplate on one keypoint's profiles.

    Attributes:
        position: border position along the profile axis (mm), the mean of the agreeing profiles.
        agreeing: profiles whose edge lies within the agreement tolerance of the median.
        profiles: profiles that found an edge at all.
        spread: standard deviation (mm) of the agreeing profiles' edges.
        strength: median fall (HU/mm) of the agreeing profiles.
        kind: ``"fall"`` (the resolved outer face) or ``"band"`` (the centre of an unresolved bright band).

    """

    position: float
    agreeing: int
    profiles: int
    spread: float
    strength: float
    kind: str


def endplate_edge(
    positions: np.ndarray, profile: np.ndarray, outward: float, around: float, search: float, voxel_mm: float,
    prior_mm: float = CT_PRIOR_MM, min_gradient: float = CT_MIN_GRADIENT, limits: tuple[float, float] | None = None,
) -> tuple[float, float, str] | None:
    """``(position, strength, kind)`` of the bone/disc border of an endplate on one profile, or None.

    The profile runs along the body's superior axis; ``outward`` is +1 when leaving the body (into
    the disc) means increasing position. The derivative is a derivative of Gaussian whose scale is
    half the voxel extent ``voxel_mm`` along the profile (at least 0.5 mm): on thick slices the
    linearly interpolated profile is piecewise linear, and the Gaussian turns its steepest segment
    into one peak that a parabola locates to a fraction of the sampling step (sub-voxel).

    * Resolved endplate (``voxel_mm <= CT_RESOLVED_MM``): the steepest HU fall going outward
      (:func:`steepest_fall`), i.e. the outer face of the cortical endplate where bone meets disc:
      the steepest slope of a blurred step is its boundary whatever the bone's HU (osteoporotic or
      contrast-enhanced) and the kernel, and it is the 0.5 crossing of a mask's boundary.
    * Thick slices: a disc thinner than about a slice and the two cortical endplates around it
      blur into one bright band, whose outer fall is the neighbour's inner face, a disc beyond the
      border. When the band is brighter than the marrow inside it (a rise going outward, inside the
      fall and within ``3 x voxel + 2 x CT_PLATE_MM``, at least ``min_gradient`` and half as steep
      as the fall) and the band is wider than one blurred endplate can be (rise to fall more than
      ``CT_SINGLE_PLATE_WIDTH`` voxels), the border is the band's centre, half-way between its steepest rise and its
      steepest fall: for one resolved-but-blurred endplate that is the cortex's centre (within half
      a cortical thickness, ~0.5 mm, of the border); for a merged band it is the disc's mid-plane
      (within half a disc, 1-3 mm in the elderly thoracic spine, of the border, and the same for
      both bodies, so Genant ratios are hardly biased). Without such a rise (bone as bright as its
      endplate: dense bone or a smooth kernel) the steepest fall is the body's boundary and is used.

    Measured on the real reference cases against hand-placed / mask keypoints (0 = reference point,
    positive = outward): 3 mm chest (sharp kernel) fall +3.1 +- 2.1 mm, band centre +0.1 +- 1.7 mm;
    3 mm abdomen (smooth kernel, no rise) fall -1.2 +- 1.5 mm; 1.5 mm TPTBox fall +0.7 +- 0.5 mm;
    1 mm VerSe crop fall 0.0 +- 0.3 mm.

    Args:
        positions: (n,) equally spaced sample positions (mm).
        profile: (n,) HU along ``positions``.
        outward: +1 or -1 (see above).
        around: expected position (mm).
        search: half length of the window (mm).
        voxel_mm: voxel extent along the profile (mm).
        prior_mm: width of the distance weighting of :func:`steepest_fall` (mm).
        min_gradient: weakest fall / rise counted (HU/mm).
        limits: optional ``(low, high)`` positions (mm) outside which no edge is taken. Samples
            outside the image are NaN and are continued by the last value inside (no edge there).

    """
    sigma = max(0.5, voxel_mm / 2)
    found = _fall(positions, profile, outward, around, search, sigma, prior_mm, min_gradient, limits)
    return _edge_from_fall(positions, found, outward, voxel_mm, min_gradient)


def _edge_from_fall(positions: np.ndarray, found, outward: float, voxel_mm: float, min_gradient: float):
    """The border of :func:`endplate_edge` from the fall :func:`_fall` found (None when it found none)."""
    if found is None:
        return None
    fall_at, strength, slope = found
    if voxel_mm <= CT_RESOLVED_MM:
        return fall_at, strength, "fall"
    depth = (fall_at - positions) * outward  # mm inside the fall
    inside = (depth > 0) & (depth <= 3 * voxel_mm + 2 * CT_PLATE_MM)
    inside[0] = inside[-1] = False
    if not np.any(inside):
        return fall_at, strength, "fall"
    rise = np.where(inside, slope, -np.inf)
    at = int(np.argmax(rise))
    if rise[at] < max(min_gradient, 0.5 * strength):
        return fall_at, strength, "fall"
    rise_at = _interpolated_peak(positions, slope, at)
    if abs(fall_at - rise_at) <= CT_SINGLE_PLATE_WIDTH * voxel_mm:
        return fall_at, strength, "fall"
    return 0.5 * (fall_at + rise_at), strength, "band"


def combine_edges(
    positions: np.ndarray, profiles: np.ndarray, outward: float, around: float, search: float, voxel_mm: float,
    prior_mm: float = CT_PRIOR_MM, min_gradient: float = CT_MIN_GRADIENT, limits: tuple[float, float] | None = None,
) -> EndplateEdge | None:
    """One keypoint's endplate border from several parallel profiles, rejecting those that disagree.

    Each profile gives its own border (:func:`endplate_edge`); those farther than
    ``max(CT_AGREE_MM, voxel_mm / 3)`` from the median are rejected (noise of a sharp kernel, a
    vessel foramen, a profile that ran into the neighbour's endplate); when at least
    ``CT_MIN_AGREEING`` agree, the border is their mean, else None (the image does not show one).

    Args:
        positions: (n,) sample positions (mm), shared by the profiles.
        profiles: (k, n) HU, parallel profiles through the keypoint (NaN outside the image).
        outward: as :func:`endplate_edge`.
        around: as :func:`endplate_edge`.
        search: as :func:`endplate_edge`.
        voxel_mm: as :func:`endplate_edge`.
        prior_mm: as :func:`endplate_edge`.
        min_gradient: as :func:`endplate_edge`.
        limits: as :func:`endplate_edge`.

    """
    from scipy.ndimage import gaussian_filter1d

    step = float(positions[1] - positions[0])
    sigma = max(0.5, voxel_mm / 2)
    rows = [_continued(profile, sigma, step) for profile in np.atleast_2d(profiles)]
    rows = [(profile, valid) for profile, valid in rows if profile is not None]
    if not rows:
        return None
    slopes = outward * gaussian_filter1d(np.array([r[0] for r in rows]), max(sigma / step, 0.5), axis=1, order=1,
                                         mode="nearest") / step  # one filter for all profiles (speed)
    edges = [_edge_from_fall(positions, _fall_on_slope(positions, slope, valid, outward, around, search, prior_mm,
                                                       min_gradient, limits), outward, voxel_mm, min_gradient)
             for slope, (_, valid) in zip(slopes, rows)]
    edges = [e for e in edges if e is not None]
    if not edges:
        return None
    where = np.array([e[0] for e in edges])
    keep = np.abs(where - np.median(where)) <= max(CT_AGREE_MM, voxel_mm / 3) + 1e-9
    if keep.sum() < min(CT_MIN_AGREEING, len(np.atleast_2d(profiles))):
        return None
    kinds = [e[2] for e, k in zip(edges, keep) if k]
    return EndplateEdge(position=float(where[keep].mean()), agreeing=int(keep.sum()), profiles=len(edges),
                        spread=float(where[keep].std()), strength=float(np.median([e[1] for e, k in zip(edges, keep)
                                                                                  if k])),
                        kind=max(set(kinds), key=kinds.count))


def _wall(image, frame, u_axis: np.ndarray, rows: np.ndarray, lateral: np.ndarray, around: float, outward: float):
    """Position (mm along u) of the anterior (outward -1) or posterior (+1) cortex averaged over ``rows``."""
    from ..spine.straighten import body_plane

    centre, p, s, _ = frame
    profile = body_plane(image, centre, p, s, u_axis, rows, lateral=lateral).mean(axis=0)
    return steepest_fall(u_axis, profile, outward, around, CT_AP_SEARCH_MM, 0.5)


def _profiles(image, centre, p, s, lat, u: np.ndarray, t: np.ndarray, lateral: np.ndarray) -> np.ndarray:
    """(len(u), len(t)) profiles along ``s`` at columns ``u``, each the mean over ``lateral``; NaN outside the image."""
    from ..spine.straighten import sample_image

    uu, tt, ww = np.meshgrid(np.asarray(u, float), np.asarray(t, float), np.asarray(lateral, float), indexing="ij")
    points = centre + uu[..., None] * p + tt[..., None] * s + ww[..., None] * lat
    return sample_image(image, points, fill=np.nan).mean(axis=2)


def _lateral_profiles(image, frame, columns: np.ndarray, rows: np.ndarray, across: np.ndarray) -> np.ndarray:
    """(len(columns), len(across)) profiles along the frame's lateral axis, each the mean over ``rows``; NaN outside."""
    from ..spine.straighten import sample_image

    centre, p, s, lat = frame
    uu, tt, ww = np.meshgrid(columns, rows, across, indexing="ij")
    samples = sample_image(image, centre + uu[..., None] * p + tt[..., None] * s + ww[..., None] * lat, fill=np.nan)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(samples, axis=1)


def _agreeing_mean(middles: list, min_columns: int = CT_CANAL_MIN_COLUMNS) -> float | None:
    """Mean of the columns' midpoints near their median, or None when too few agree.

    Within :data:`CT_CANAL_AGREE_MM` of the median, at least ``min_columns`` of them (a column through a foramen or a
    vessel channel is an outlier; :data:`CT_CANAL_MIN_COLUMNS` for the canal and the side walls,
    :data:`CT_RING_MIN_COLUMNS` for the cortical ring).
    """
    if not middles:
        return None
    agreeing = [m for m in middles if abs(m - float(np.median(middles))) <= CT_CANAL_AGREE_MM]
    return float(np.mean(agreeing)) if len(agreeing) >= min_columns else None


def _cortex(across: np.ndarray, profile: np.ndarray, outward: float, near: float, far: float,
            step: float, contrast: float = 1.0) -> float | None:
    """Position of the body's cortex on one side of a lateral profile (:data:`CT_RING_COLUMNS`), or None.

    ``contrast`` scales the prominence and fall thresholds (:data:`CT_RING_SHARP_MM`: a coarse voxel blurs the plate).
    """
    narrow, outside = int(round(CT_RING_NARROW_MM / step)), int(round(CT_RING_OUTSIDE_MM / step))
    found = []  # (distance from the plane, position, fall outwards)
    for i in np.flatnonzero((outward * across >= near) & (outward * across <= far)):
        if i < narrow or i + narrow >= len(profile) or not (profile[i] >= profile[i - 1] and
                                                            profile[i] >= profile[i + 1]):
            continue
        before, after = profile[i - narrow:i], profile[i + 1:i + 1 + narrow]
        beyond = profile[i + 1:i + 1 + outside] if outward > 0 else profile[max(0, i - outside):i]
        drop = float(profile[i] - beyond.min())
        if profile[i] - max(before.min(), after.min()) >= contrast * CT_RING_MIN_PROMINENCE_HU and \
                drop >= contrast * CT_RING_MIN_DROP_HU:
            found.append((outward * float(across[i]), float(across[i]), drop))
    if not found:
        return None
    strongest = max(drop for _, _, drop in found)
    # the innermost plate that falls at least half as far as the strongest: the body's own cortex, not a rib head,
    # the crus or a vessel's calcified wall further out
    return min((distance, position) for distance, position, drop in found if drop >= 0.5 * strongest)[1]


def ring_middle(image, points: np.ndarray, voxel_mm: float) -> float | None:
    """Middle (mm along the frame's lateral axis, from the points' centre) of the body's cortical ring, or None.

    The body's mid-sagittal plane as a reader finds it on an axial slice: half-way between the left and the right
    cortex of the body itself. Per column (:data:`CT_RING_COLUMNS`), a lateral profile (mean over
    :data:`CT_RING_ROWS`, smoothed by half a voxel) and on each side the cortex (:func:`_cortex`: a thin plate that
    stands out from both sides and falls outwards); the columns' midpoints that agree (:func:`_agreeing_mean`) give
    the middle. A cortex is a peak, so what lies outside it (lung, fat, the psoas, a contrast-filled aorta) does not
    move it, as it moves the steepest fall (:func:`_side_walls_middle`: on the real chest CT the fall into the lung
    on one side and the fall from the cortex on the other put the middle 1.5-3 mm off). Not found where the cortex is
    not resolved as a peak (a 3 mm soft-kernel CT: the caller falls back on the canal).
    """
    from scipy.ndimage import gaussian_filter1d

    frame = _body_frame(points)
    if frame is None:
        return None
    centre, p, s, _ = frame
    rel = points - centre
    u, t = rel @ p, rel @ s
    depth, height = float(u[4:6].mean() - u[0:2].mean()), float(np.mean(t[0::2] - t[1::2]))
    if depth <= 0 or height <= 0:
        return None
    columns = float(u[0:2].mean()) + depth * np.asarray(CT_RING_COLUMNS)
    rows = float(np.mean(t)) + height * np.asarray(CT_RING_ROWS)
    far = depth + CT_RING_REACH_MM
    across = np.arange(-far - CT_RING_OUTSIDE_MM - 1.0, far + CT_RING_OUTSIDE_MM + 1.0 + 1e-6, CT_STEP_MM)
    contrast = min(1.0, CT_RING_SHARP_MM / voxel_mm)  # a plate blurred over a coarser voxel stands out less
    middles = []
    for profile in _lateral_profiles(image, frame, columns, rows, across):
        finite = np.isfinite(profile)
        if finite.sum() < 2:
            continue
        # outside the field of view the profile goes on flat: no peak, no fall (a cut side gives no cortex)
        profile = np.interp(across, across[finite], profile[finite])
        profile = gaussian_filter1d(profile, max(0.5 * voxel_mm, 0.5) / CT_STEP_MM)
        sides = [_cortex(across, profile, outward, 0.25 * depth, far, CT_STEP_MM, contrast) for outward in (-1.0, 1.0)]
        if None not in sides and CT_RING_WIDTH[0] * depth <= sides[1] - sides[0] <= CT_RING_WIDTH[1] * depth:
            middles.append(0.5 * (sides[0] + sides[1]))
    return _agreeing_mean(middles, CT_RING_MIN_COLUMNS)


def body_midplane(image, points: np.ndarray, voxel_mm: float, ring: bool = True,
                  canal_min_move: float = 0.0) -> float | None:
    """The body's mid-sagittal plane: the middle of its cortical ring, else of the spinal canal behind it.

    Returns the plane's lateral position (mm along the body frame's lateral axis, from the points' centre, on which
    their mean lateral offset is 0 by construction), or None
    when neither the ring nor the canal's walls are found or the checks below fail. Genant's heights are read on the
    body's mid-sagittal plane (Genant et al. 1993; Pisov et al. 2020 annotate "the mid-sagittal slice for each of
    the visible vertebrae"; a mask measure takes the mask's own middle). The detector's plane follows the spine's
    centre line, which can pass a few millimetres beside a body's middle (measured on the real reference CTs: 1-4
    mm, and 10 mm at the chest CT's rotated L1, whose canal lies 9 mm right of its body's middle).

    First the body's own cortical ring (:func:`ring_middle`, when ``ring``), as a reader finds the middle on an axial
    slice: on the real chest CT and its cardiac crop it put the middle within 1.2 mm (median 0.45) of both readers'
    reference planes on the 12 bodies where it was found (the canal's middle 0.4-4 mm off them, L1's 10 mm; the
    steepest side-wall falls 1-3 mm off, the other way), and on the generated spines the
    keypoint error went 1.28 -> 1.19 mm (``benchmarks/bench_generated.py --n 24``; docs/findings.md, 2026-12-06
    fifteenth session). Where the ring is not resolved (3 mm soft-kernel bone, a cortex cut by the field of view),
    the canal, checked against the side walls, as follows. The body's own side walls alone are a poor guide on
    a contrast CT (the aorta lies against the left side of the thoracic bodies, the psoas and the crura against the
    lumbar ones, the rib heads against the posterior corners), but the spinal canal is a dark tube (CSF, epidural
    fat) in a closed ring of bone at the level of the pedicles, bilaterally symmetric about the mid-sagittal plane
    of a vertebra that is not rotated. The CT is read on lateral profiles :data:`CT_CANAL_COLUMNS_MM` behind
    the posterior wall, averaged over the upper part of the body's height (:data:`CT_CANAL_ROWS`); on each side the
    wall is the innermost rise going outward (canal -> pedicle) at least half as steep as the steepest
    :data:`CT_CANAL_SEARCH_MM` from the plane (a derivative of Gaussian of half a voxel, a parabola through its
    peak; the outer face of a lamina or a rib head further out can be steeper). A column's midpoint counts when its
    width fits a canal (:data:`CT_CANAL_WIDTH_MM`); the mean of the columns within :data:`CT_CANAL_AGREE_MM` of
    their median is used when at least :data:`CT_CANAL_MIN_COLUMNS` agree, the move is at most
    :data:`CT_MAX_PLANE_SHIFT_MM`. The body's own side walls, read across its posterior part (:data:`CT_SIDE_COLUMNS`,
    where the aorta rarely lies), check it: where they put the body's middle within :data:`CT_PLANE_AGREE_MM` of the
    canal's, the canal's middle is used; where they disagree but both lie on the same side, the smaller of the two
    moves (the move both support); otherwise none. Each measure has its own failure: the aorta against the body
    widens its walls, and in a rotated vertebra (scoliosis) the body turns towards the convexity and the canal away
    from it, so the canal lies off the body's middle (the canal alone made the generated scoliotic spines'
    keypoints 1.65 -> 2.32 mm and lost one moderate fracture; with the check 1.65 -> 1.71 mm and none lost).

    Args:
        image: the CT (SimpleITK image or ``(array, geometry)``).
        points: (6, 3) LPS mm keypoints of the body.
        voxel_mm: extent (mm) of a voxel along the profiles.
        ring: read the cortical ring first (False: the canal checked against the side walls only, as the coronal
            turn's neighbour centres are placed, :mod:`.column_tilt`).
        canal_min_move: the canal's middle is not used (None) when it lies closer than this (mm) to the points'
            plane: the refinement passes half a voxel, below what the canal's walls resolve on a 3 mm CT. The ring's
            middle, two cortical peaks located to a fraction of a voxel on both sides of the body, is used however
            close (on the 3 mm sample CT its L4 lay 1.4 mm beside the points, 1.7 mm by both readers).

    """
    frame = _body_frame(points)
    if frame is None:
        return None
    middle = ring_middle(image, points, voxel_mm) if ring else None
    if middle is not None and abs(middle) <= CT_RING_MAX_SHIFT_MM:
        return middle
    centre, p, s, _ = frame
    rel = points - centre
    u, t = rel @ p, rel @ s
    height = float(np.mean(t[0::2] - t[1::2]))
    if height <= 0:
        return None
    back = float(u[4:6].mean())
    columns = back + np.asarray(CT_CANAL_COLUMNS_MM, dtype=float)
    rows = float(np.mean(t)) + height * np.linspace(CT_CANAL_ROWS[0], CT_CANAL_ROWS[1], 5)
    reach = CT_CANAL_SEARCH_MM[1] + 3.0
    across = np.arange(-reach, reach + 1e-6, CT_STEP_MM)
    sigma = max(0.5 * voxel_mm, 0.5) / CT_STEP_MM
    middles = []
    for profile in _lateral_profiles(image, frame, columns, rows, across):
        if not np.all(np.isfinite(profile)):
            continue
        rise = _gaussian_derivative(profile, sigma) / CT_STEP_MM  # HU/mm gained towards +lateral
        walls = []
        for outward in (-1.0, 1.0):
            window = (outward * across >= CT_CANAL_SEARCH_MM[0]) & (outward * across <= CT_CANAL_SEARCH_MM[1])
            gained = np.where(window, outward * rise, -np.inf)
            strongest = float(gained.max())
            # the innermost rise at least half as strong as the steepest: the pedicle's inner face, not the
            # outer face of a lamina or a rib head further out
            peaks = np.flatnonzero((gained[1:-1] >= gained[:-2]) & (gained[1:-1] >= gained[2:])
                                   & (gained[1:-1] >= 0.5 * strongest)) + 1
            if strongest < CT_MIN_GRADIENT or not len(peaks):
                walls.append(None)
                continue
            at = int(peaks[np.argmin(np.abs(across[peaks]))])
            walls.append(_interpolated_peak(across, outward * rise, at))
        if all(wall is not None for wall in walls) and \
                CT_CANAL_WIDTH_MM[0] <= walls[1] - walls[0] <= CT_CANAL_WIDTH_MM[1]:
            middles.append(0.5 * (walls[0] + walls[1]))
    shift = _agreeing_mean(middles)
    if shift is None or abs(shift) > CT_MAX_PLANE_SHIFT_MM:
        return None
    walls = _side_walls_middle(image, frame, u, t, voxel_mm)
    if walls is None:
        return None
    if abs(walls - shift) > CT_PLANE_AGREE_MM:
        if walls * shift <= 0:
            return None
        shift = min(shift, walls, key=abs)  # the move both measures support
    return shift if abs(shift) >= canal_min_move else None


def _side_walls_middle(image, frame, u: np.ndarray, t: np.ndarray, voxel_mm: float) -> float | None:
    """Middle (mm along the frame's lateral axis, from its centre) of the body's own left and right cortex, or None.

    Per column across the posterior part of the body (:func:`body_midplane`), the innermost steep fall going outward
    on each side; the mean of the columns whose width fits a body and that agree with their median.
    """
    depth = float(u[4:6].mean() - u[0:2].mean())
    height = float(np.mean(t[0::2] - t[1::2]))
    if depth <= 0 or height <= 0:
        return None
    columns = float(u[0:2].mean()) + depth * np.linspace(CT_SIDE_COLUMNS[0], CT_SIDE_COLUMNS[1], 5)
    rows = float(np.mean(t)) + height * np.linspace(-0.25, 0.25, 5)
    reach = CT_SIDE_SEARCH[1] * depth
    across = np.arange(-reach - 3.0, reach + 3.0 + 1e-6, CT_STEP_MM)
    middle = 0.5 * (CT_SIDE_SEARCH[0] + CT_SIDE_SEARCH[1]) * depth
    half = 0.5 * (CT_SIDE_SEARCH[1] - CT_SIDE_SEARCH[0]) * depth
    middles = []
    for profile in _lateral_profiles(image, frame, columns, rows, across):
        sides = [steepest_fall(across, profile, outward, outward * middle, half, max(0.5 * voxel_mm, 0.5),
                               prior_mm=10 * depth) for outward in (-1.0, 1.0)]
        if all(side is not None for side in sides) and \
                CT_SIDE_WIDTH[0] * depth <= sides[1] - sides[0] <= CT_SIDE_WIDTH[1] * depth:
            middles.append(0.5 * (sides[0] + sides[1]))
    return _agreeing_mean(middles)


def _refine_once(image, points: np.ndarray, voxel_mm: float, start: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """One pass of :func:`refine_on_ct`: (refined points, indices of the points put on an endplate's line)."""
    frame = _body_frame(points)
    if frame is None:
        return points, []
    centre, p, s, lat = frame
    rel = points - centre
    u, t, w = rel @ p, rel @ s, rel @ lat
    step = CT_STEP_MM
    band = np.arange(-CT_BAND_MM, CT_BAND_MM + 1e-6, 0.5)
    lateral = band + float(np.mean(w))
    # anterior / posterior cortex in the upper and the lower half of the body's middle: two points of
    # each wall line, so the columns follow the body's own tilt
    u_axis = np.arange(u.min() - CT_AP_SEARCH_MM - 6, u.max() + CT_AP_SEARCH_MM + 6 + 1e-6, step)
    middle, height = float(np.mean(t)), float(np.mean(t[0::2] - t[1::2]))
    quarter = 0.25 * CT_WALL_FRACTION * height
    depth = float(u[4:6].mean() - u[0:2].mean())
    inset = max(CT_INSET_MM, CT_INSET_FRACTION * depth)
    levels = (middle + quarter, middle - quarter)
    walls = {}
    for side, pair, outward in (("front", slice(0, 2), -1.0), ("back", slice(4, 6), 1.0)):
        found = []
        for level in levels:
            rows = np.linspace(level - quarter, level + quarter, 5)
            guess = float(np.interp(level, t[pair][::-1], u[pair][::-1])) + outward * inset
            found.append(_wall(image, frame, u_axis, rows, lateral, guess, outward))
        if all(f is not None for f in found):
            walls[side] = (0.5 * (found[0] + found[1]), (found[0] - found[1]) / (levels[0] - levels[1]))
    slopes = [slope for _, slope in walls.values()]
    tilt = float(np.mean(slopes)) if slopes else 0.0
    if abs(tilt) > CT_MAX_TILT or (len(slopes) == 2 and abs(slopes[0] - slopes[1]) > CT_MAX_TILT_DISAGREEMENT):
        tilt = float(np.mean([np.mean(np.diff(u[pair][::-1]) / np.diff(t[pair][::-1]))
                              for pair in (slice(0, 2), slice(4, 6))]))  # keep the detector's tilt
    walls = {side: (base, tilt) for side, (base, _) in walls.items()}
    if "front" in walls and "back" in walls:
        inset = max(CT_INSET_MM, CT_INSET_FRACTION * (walls["back"][0] - walls["front"][0]))

    def wall_at(side: str, level: float) -> float:
        base, slope = walls[side]
        return base + slope * (level - middle)

    new_u = u.copy()
    for pair, side, sign in ((range(0, 2), "front", 1.0), (range(4, 6), "back", -1.0)):
        if side in walls:
            for index in pair:
                new_u[index] = wall_at(side, t[index]) + sign * inset
    for index in (2, 3):
        new_u[index] = 0.5 * (np.interp(t[index], t[0:2][::-1], new_u[0:2][::-1])
                              + np.interp(t[index], t[4:6][::-1], new_u[4:6][::-1]))
    # endplates: parallel profiles along the body's superior axis through each keypoint's column
    new_t = t.copy()
    t_axis = np.arange(t.min() - CT_SEARCH_MM - 3, t.max() + CT_SEARCH_MM + 3 + 1e-6, step)
    origins = (start - centre) @ s  # the detector's points: no pass moves further than the search
    for index in range(6):
        profiles = _profiles(image, centre, p, s, lat, new_u[index] + np.asarray(CT_PROFILE_OFFSETS_MM), t_axis,
                             np.asarray(CT_PROFILE_LATERAL_MM) + w[index])
        origin = float(origins[index])
        edge = combine_edges(t_axis, profiles, 1.0 if index % 2 == 0 else -1.0, float(t[index]), CT_SEARCH_MM,
                             voxel_mm, limits=(origin - CT_SEARCH_MM, origin + CT_SEARCH_MM))
        if edge is not None:
            new_t[index] = edge.position
    # each endplate traced across the body: a keypoint's border off the endplate's line is not the endplate
    placed = []
    for trio, outward in (((0, 2, 4), 1.0), ((1, 3, 5), -1.0)):
        line = endplate_line(image, frame, new_u[list(trio)], t[list(trio)], origins[list(trio)],
                             float(np.mean(w[list(trio)])), outward, voxel_mm, t_axis)
        if line is None:
            continue
        tolerance = max(CT_LINE_TOLERANCE_MM, voxel_mm)
        for index in trio:
            expected = line(float(new_u[index]))
            if expected is not None and abs(new_t[index] - expected) > tolerance:
                new_t[index] = expected
                placed.append(index)
    return centre + new_u[:, None] * p + new_t[:, None] * s + w[:, None] * lat, sorted(placed)


def _robust_fit(basis: np.ndarray, y: np.ndarray, scale: float) -> np.ndarray | None:
    """Least squares of ``y`` on ``basis`` re-weighted by Tukey's biweight at ``2 x scale`` (None: too few points)."""
    weights = (np.abs(y - np.median(y)) <= 2 * scale).astype(float)  # start from the borders near the median
    coefficients = None
    for _ in range(10):
        if (weights > 0).sum() < basis.shape[1] + 1:
            return None
        sqrt_w = np.sqrt(weights)
        coefficients = np.linalg.lstsq(basis * sqrt_w[:, None], y * sqrt_w, rcond=None)[0]
        residual = y - basis @ coefficients
        weights = np.where(np.abs(residual) < 2 * scale, (1 - (residual / (2 * scale)) ** 2) ** 2, 0.0)
    return coefficients


def _fit_endplate(u: np.ndarray, t: np.ndarray, middle: float, half: float, outward: float, scale: float,
                  bulge_mm: float, columns: int) -> tuple[np.ndarray, np.ndarray] | None:
    """An endplate's border ``t`` as a quadratic in ``z = (u - middle) / half`` from the borders found on columns.

    Tukey's biweight fit (:func:`_robust_fit`, scale ``scale``); a fit whose middle bulges out of the body by more
    than ``bulge_mm`` (endplates are flat or concave) is replaced by a straight line. None when fewer than
    :data:`CT_LINE_MIN_COVERAGE` of the ``columns`` traced found a border, or fewer than :data:`CT_LINE_MIN_SUPPORT`
    of those (and of the coverage) lie within ``scale`` of the fit (never fewer than 5 in either case).

    Returns:
        ``(coefficients, inliers)``: (3,) of ``1, z, z**2`` and the (len(u),) bool mask of the borders on the fit.
    """
    if len(u) < max(5, CT_LINE_MIN_COVERAGE * columns):
        return None
    z = (np.asarray(u, float) - middle) / half
    basis = np.stack([np.ones_like(z), z, z * z], axis=1)
    coefficients = _robust_fit(basis, t, scale)
    if coefficients is None:
        return None
    if outward * -coefficients[2] > bulge_mm:
        linear = _robust_fit(basis[:, :2], t, scale)
        if linear is None:
            return None
        coefficients = np.array([linear[0], linear[1], 0.0])
    inliers = np.abs(t - basis @ coefficients) <= scale
    if inliers.sum() < max(5, CT_LINE_MIN_SUPPORT * len(u), CT_LINE_MIN_COVERAGE * columns):
        return None
    return coefficients, inliers


def endplate_line(image, frame, columns_u: np.ndarray, guess_t: np.ndarray, origin_t: np.ndarray, lateral: float,
                  outward: float, voxel_mm: float, t_axis: np.ndarray):
    """The border of one endplate traced across the body, as a robust quadratic ``t(u)``; None if not traced.

    An endplate is one continuous surface from the anterior to the posterior cortex, flat, tilted (a wedge) or
    concave (a biconcave fracture), so its border on every column between the anterior and the posterior keypoint
    lies on a smooth curve. A keypoint's own profiles can meet something else near its column: the anterior
    cortex where the body's waist curves in (a fall from cortex to prevertebral fat), the basivertebral vein's
    channel behind the middle of the body, a bright band inside a thick-slice body. On the real 3 mm chest CT
    such borders moved normal T11, T12 and L1 corners 7-10 mm into their bodies, which then measured as grade-3
    losses. Here the border is found on columns every :data:`CT_LINE_STEP_MM` (:func:`endplate_edge`, searched
    around the line of the current points and within :data:`CT_SEARCH_MM` of the detector's line), a quadratic
    in ``u`` is fitted by iteratively re-weighted least squares (Tukey's biweight, scale
    ``max(CT_LINE_TOLERANCE_MM, voxel)``; Holland & Welsch 1977), and the line is returned only when at least
    :data:`CT_LINE_MIN_SUPPORT` of the columns with a border and :data:`CT_LINE_MIN_COVERAGE` of all columns lie
    on it; it is used up to :data:`CT_LINE_EXTEND_MM` beyond its outermost supporting column. A fit whose middle
    bulges outwards of the chord of its ends by more than :data:`CT_LINE_TOLERANCE_MM` (endplates are flat or
    concave) is replaced by a straight line. A tilted or concave endplate keeps its shape; what a minority of
    columns shows does not move a keypoint: a keypoint whose own border lies farther than the tolerance from the
    line is put on the line.

    Args:
        image: as :func:`_refine_once`'s.
        frame: the body frame (:func:`_body_frame`).
        columns_u: (3,) ``u`` of the anterior, middle and posterior keypoint columns.
        guess_t: (3,) ``t`` of the current points (the search is centred on their line).
        origin_t: (3,) ``t`` of the detector's points (the search never leaves ``+-CT_SEARCH_MM`` of their line).
        lateral: lateral offset (mm) of the profiles.
        outward: +1 for the superior endplate, -1 for the inferior one.
        voxel_mm: voxel extent along the profiles (mm).
        t_axis: sample positions along ``t`` (mm).

    Returns:
        A function ``u -> t`` on the traced span (None outside the supporting columns), or None.

    """
    centre, p, s, lat = frame
    order = np.argsort(columns_u)
    cu, gt, ot = (np.asarray(a, float)[order] for a in (columns_u, guess_t, origin_t))
    grid = np.arange(cu[0], cu[-1] + 1e-6, CT_LINE_STEP_MM)
    if len(grid) < 5:
        return None
    profiles = _profiles(image, centre, p, s, lat, grid, t_axis, np.asarray(CT_PROFILE_LATERAL_MM) + lateral)
    found_u, found_t = [], []
    for u_col, profile in zip(grid, profiles):
        around, origin = float(np.interp(u_col, cu, gt)), float(np.interp(u_col, cu, ot))
        edge = endplate_edge(t_axis, profile, outward, around, CT_SEARCH_MM, voxel_mm,
                             limits=(origin - CT_SEARCH_MM, origin + CT_SEARCH_MM))
        if edge is not None:
            found_u.append(u_col)
            found_t.append(edge[0])
    x, y = np.asarray(found_u), np.asarray(found_t)
    half = max(0.5 * (cu[-1] - cu[0]), 1.0)
    # the middle of an endplate lies on or inside the chord of its ends (flat or concave: normal endplates,
    # biconcave fractures); a fit bulging outwards took a corner's wall or channel for the border: a straight line
    fit = _fit_endplate(x, y, cu.mean(), half, outward, max(CT_LINE_TOLERANCE_MM, voxel_mm), CT_LINE_TOLERANCE_MM,
                        len(grid))
    if fit is None:
        return None
    coefficients, inliers = fit
    low, high = x[inliers].min() - CT_LINE_EXTEND_MM, x[inliers].max() + CT_LINE_EXTEND_MM

    def line(u_value: float):
        if not low <= u_value <= high:
            return None
        z = (u_value - cu.mean()) / half
        return float(coefficients @ np.array([1.0, z, z * z]))

    return line


#: The refinement reads the CT at about this resolution (mm): an axis whose voxels are finer is low-passed to it first
#: (:func:`reading_ct`), ...
CT_READING_MM = 1.0
#: ... over the region of the detected bodies and this far (mm) around them (the profiles of :func:`ring_middle`
#: reach a body's depth plus 21 mm from its plane).
CT_READING_MARGIN_MM = 70.0


def reading_ct(image, around: np.ndarray):
    """The CT as :func:`refine_on_ct` reads it: each axis finer than :data:`CT_READING_MM` low-passed to it.

    The cortical and endplate edges the refinement finds are plates blurred over a millimetre or more, and the
    generated spines and the real CTs it was measured on are 1 mm or coarser. A sharp-kernel series with finer pixels
    carries noise at scales below that (trabecular struts, streaks): on the real chest CT as its DICOM series (0.56 mm
    pixels, B70f) 2 of the 10 bodies with reference points were assessed (height error 3.2 mm), read so 6 (keypoint /
    height error 2.5 / 2.0 mm; the same scan resampled to 1.1 mm gives 8; docs/findings.md 2026-12-06, fifteenth
    session). Each finer
    axis gets a Gaussian of ``sqrt((CT_READING_MM / 2)^2 - (voxel / 2)^2)`` mm (half a reading sample less the
    voxel's own half, the anti-aliasing width of :func:`..spine.straighten.straighten`); what the image already
    resolves coarser (slices thicker than their spacing, ``ImageGeometry.resolution``) is left. Only the box of the
    bodies (``around``, LPS points) widened by :data:`CT_READING_MARGIN_MM` is read and returned, as ``(array,
    geometry)`` with the reading's resolution recorded; a CT with no finer axis is returned as it is.
    """
    from dataclasses import replace

    from ..geometry import box_around
    from ..spine.straighten import _anti_aliased, _image_parts

    array, geometry = _image_parts(image)
    resolves = np.asarray(geometry.resolution or geometry.spacing, dtype=float)
    fine = resolves < CT_READING_MM - 1e-6
    points = np.asarray(around, dtype=float).reshape(-1, 3)
    if not fine.any() or not len(points):
        return image
    box, boxed = box_around(array, geometry, points, CT_READING_MARGIN_MM)
    read = replace(boxed, resolution=tuple(float(max(r, CT_READING_MM)) if f else float(r)
                                           for r, f in zip(resolves, fine)))
    return _anti_aliased(box, geometry, CT_READING_MM, resolves), read


def refine_on_ct(image, keypoints_lps: np.ndarray, passes: int = CT_PASSES,
                 line_placed: list | None = None, midplane: bool = True) -> np.ndarray:
    """Move six keypoints onto the cortical edges of their body in the CT, with sub-voxel precision.

    Method (in the body's own frame, :func:`_body_frame`: ``u`` antero-posterior, ``t`` superior,
    built from the six points): the CT is read straight from its voxels (trilinear,
    :func:`VertebralFractureLib.spine.straighten.sample_image`) on profiles sampled every 0.25 mm.

    0. The plane: the six points are moved, together, onto the body's mid-sagittal plane half-way between the
       left and right cortex of the body (:func:`ring_middle`) or, where that is not resolved, between the walls of
       the spinal canal behind it (:func:`body_midplane`), the canal's only when at least half a voxel away.

    1. Anterior and posterior cortex: AP profiles averaged over the upper and over the lower half of
       the middle ``CT_WALL_FRACTION`` of the body's height; each wall is the steepest HU fall going
       outward (bone -> prevertebral soft tissue, bone -> spinal canal) within ``CT_AP_SEARCH_MM``
       of where the points say; the two heights give the wall's line, so the columns follow the
       body's own tilt even when the detector's box is rotated. The anterior / posterior points go
       ``max(CT_INSET_MM, CT_INSET_FRACTION x depth)`` inside their wall line and the middle points
       half-way (the convention of the mask measure and the generator).
    2. Endplates: along ``t`` through each column, on the five parallel profiles
       ``CT_PROFILE_OFFSETS_MM`` (each the mean of ``CT_PROFILE_LATERAL_MM``), the bone/disc border of
       :func:`endplate_edge` within ``CT_SEARCH_MM`` of the detector's point (superior point:
       upwards, inferior point: downwards); profiles that disagree are rejected and the agreeing
       ones averaged (:func:`combine_edges`). A point whose profiles do not agree stays where it was.
    3. Each endplate traced across the body (:func:`endplate_line`): the border on columns every 1 mm from the
       anterior to the posterior keypoint, a robust quadratic through them; a keypoint whose border of step 2
       lies off that line (a wall, a vessel channel) is put on it.

    Why these edges: on a resolved endplate (voxel <= ``CT_RESOLVED_MM`` along the axis) the steepest
    fall is where the partial-volume blur of the bone/disc step is centred, i.e. the boundary itself,
    independent of the bone's HU (osteoporotic or contrast-enhanced) and of the kernel, the 0.5
    crossing of a mask's boundary; on thick slices (any voxel size is accepted, 3 mm included) a disc
    thinner than a slice merges with both endplates into one band whose fall is the neighbour's, so
    the band's centre is taken (:func:`endplate_edge` gives the measured offsets on real CTs). The
    profiles are sampled from the original voxels (trilinear, no smoothed or straightened copy); the
    derivative-of-Gaussian scale is half the voxel extent along the profile, and a parabola through
    the derivative's peak gives the sub-voxel position. Two passes: the frame is rebuilt from the
    refined points; no point moves more than ``CT_SEARCH_MM`` from the detector's.

    Args:
        image: the CT (SimpleITK image or ``(array, geometry)``), any orientation.
        keypoints_lps: (6, 3) LPS mm, genant.KEYPOINT_NAMES order.
        passes: refinement passes (``CT_PASSES``).
        line_placed: when a list is given, the indices of the keypoints the last pass put on their endplate's
            line (step 3: their own column showed another edge) are appended to it. Such a point is an estimate
            from its neighbours' borders: a height loss measured with it is not confirmed by the image
            (:func:`VertebralFractureLib.quality.stage.withhold_unsupported_grades`).
        midplane: move the points onto the body's mid-sagittal plane first (step 0); False measures on the
            detector's own plane (the chain's check that the refined body is the detected one).

    Returns:
        (6, 3) refined LPS mm, on the body's mid-sagittal plane (step 0) or, where that is not found or not
        supported by the body's side walls, on the detector's.

    """
    from ..spine.straighten import _image_parts

    array, geometry = _image_parts(image)
    points = np.array(keypoints_lps, dtype=float).reshape(6, 3)
    frame = _body_frame(points) if midplane else None
    if frame is not None:
        lat = frame[3]
        voxel = geometry.voxel_extent_along(lat)
        # a canal's move under half a voxel across is below what its walls resolve (3 mm CT): the plane stays
        plane = body_midplane((array, geometry), points, voxel, canal_min_move=0.5 * voxel)
        if plane is not None:
            points = points + (plane - (points - frame[0]) @ lat)[:, None] * lat
    start = points.copy()
    for _ in range(passes):
        frame = _body_frame(points)
        if frame is None:
            break
        voxel = geometry.voxel_extent_along(frame[2])
        points, placed = _refine_once((array, geometry), points, voxel_mm=voxel, start=start)
    if line_placed is not None:
        line_placed.extend(placed)
    return points
