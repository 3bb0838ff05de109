"""End-plate refinement of detected keypoints: snap each point to the disc / end-plate edge.

Two refinements live here:

* :func:`refine_on_ct` (the CT analysis): each keypoint is moved onto the body's cortical edges
  with sub-voxel precision, sampling the ORIGINAL CT voxels in the body's own mid-sagittal plane
  (:func:`VertebralFractureLib.spine.straighten.body_plane`); see its docstring for the method.
* :func:`refine_endplates` (below; the 1 mm 2D image the detector reads, used for radiographs and
  by the 2D generated-case evaluation): snapping along the image rows.

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
#: Half width (mm) of the band of parallel profiles averaged around each keypoint column / lateral offset.
CT_BAND_MM = 1.0
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
#: Thickest voxel (mm, largest spacing of the CT) on which :func:`refine_on_ct` is used. At 3 mm a
#: thoracic disc (4-6 mm) spans one or two slices and the two cortical faces around it blur into one
#: band: measured on the real chest CT (3 mm slices, benchmarks/bench_real.py) the refinement moved
#: points across the disc (body heights 29-33 mm at T5-T9) and produced a false grade >= 2 on
#: cptac_chest and cptac_cardiac_a, so thicker CTs keep the detector's (1 mm snapped) points.
CT_MAX_VOXEL_MM = 2.0
CT_MAX_TILT_DISAGREEMENT = 0.1


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


def steepest_fall(
    positions: np.ndarray, profile: np.ndarray, outward: float, around: float, search: float, sigma_mm: float,
    prior_mm: float = CT_PRIOR_MM, min_gradient: float = CT_MIN_GRADIENT,
) -> float | None:
    """Sub-sample position of the steepest HU fall going ``outward`` near ``around`` (None if no edge).

    The derivative of the profile (derivative of Gaussian, ``sigma_mm``) is taken along the outward
    direction; the most negative value within ``around +- search``, weighted by a Gaussian of its
    distance to ``around`` (``prior_mm``), is the edge (or, when another peak at least half as strong
    lies further inside the body, that one: the innermost); a parabola through it and its two
    neighbours gives the sub-sample position (the classic peak interpolation of edge detectors,
    e.g. Devernay 1995). Falls weaker than ``min_gradient`` HU/mm are no edge.

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
    step = float(positions[1] - positions[0])
    fall = -outward * _gaussian_derivative(profile, sigma_mm / step) / step  # HU/mm lost going outward
    window = np.abs(positions - around) <= search
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
    a, b, c = fall[at - 1], fall[at], fall[at + 1]
    curvature = a - 2 * b + c
    shift = 0.5 * (a - c) / curvature if curvature < 0 else 0.0
    return float(positions[at] + np.clip(shift, -0.5, 0.5) * step)


def _wall(image, frame, u_axis: np.ndarray, rows: np.ndarray, lateral: np.ndarray, around: float, outward: float):
    """Position (mm along u) of the anterior (outward -1) or posterior (+1) cortex averaged over ``rows``."""
    from ..spine.straighten import body_plane

    centre, p, s, _ = frame
    profile = body_plane(image, centre, p, s, u_axis, rows, lateral=lateral).mean(axis=0)
    return steepest_fall(u_axis, profile, outward, around, CT_AP_SEARCH_MM, 0.5)


def _refine_once(image, points: np.ndarray, sigma_mm: float) -> np.ndarray:
    from ..spine.straighten import body_plane

    frame = _body_frame(points)
    if frame is None:
        return points
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
    # endplates: profiles along the body's superior axis through each keypoint's column
    new_t = t.copy()
    t_axis = np.arange(t.min() - CT_SEARCH_MM - 3, t.max() + CT_SEARCH_MM + 3 + 1e-6, step)
    for index in range(6):
        profile = body_plane(image, centre, p, s, new_u[index] + band, t_axis, lateral=band + w[index]).mean(axis=1)
        edge = steepest_fall(t_axis, profile, 1.0 if index % 2 == 0 else -1.0, float(t[index]), CT_SEARCH_MM,
                             sigma_mm)
        if edge is not None:
            new_t[index] = edge
    return centre + new_u[:, None] * p + new_t[:, None] * s + w[:, None] * lat


def refine_on_ct(image, keypoints_lps: np.ndarray, passes: int = CT_PASSES) -> np.ndarray:
    """Move six keypoints onto the cortical edges of their body in the CT, with sub-voxel precision.

    Method (in the body's own frame, :func:`_body_frame`: ``u`` antero-posterior, ``t`` superior,
    built from the six points): the CT is read straight from its voxels (trilinear,
    :func:`VertebralFractureLib.spine.straighten.body_plane`) on profiles 0.25 mm apart, each the mean
    of parallel lines within +-``CT_BAND_MM`` in-plane and laterally (noise of a sharp kernel
    averages out; the endplates are flat over 2 mm).

    1. Anterior and posterior cortex: AP profiles averaged over the upper and over the lower half of
       the middle ``CT_WALL_FRACTION`` of the body's height; each wall is the steepest HU fall going
       outward (bone -> prevertebral soft tissue, bone -> spinal canal) within ``CT_AP_SEARCH_MM``
       of where the points say; the two heights give the wall's line, so the columns follow the
       body's own tilt even when the detector's box is rotated. The anterior / posterior points go
       ``max(CT_INSET_MM, CT_INSET_FRACTION x depth)`` inside their wall line and the middle points
       half-way (the convention of the mask measure and the generator).
    2. Endplates: along ``t`` through each column, the steepest fall going outward (superior point:
       upwards, inferior point: downwards) within ``CT_SEARCH_MM``: the outer face of the cortical
       endplate, where bone meets disc. Among falls the nearest strong one wins (``CT_PRIOR_MM``).

    Why steepest fall: it is where the partial-volume blur of a bone/disc step is centred, i.e. the
    boundary itself, independent of the bone's HU (osteoporotic or contrast-enhanced) and of the
    kernel; the same definition as the quality gate's endplate check (:mod:`VertebralFractureLib.quality.checks`)
    and the 0.5 crossing of a mask's boundary. The derivative is a derivative of Gaussian whose scale
    is half the voxel extent along the profile (at least 0.5 mm): on thick slices the linearly
    interpolated profile is piecewise linear, and the Gaussian turns its steepest segment into one
    peak that a parabola through three samples locates to a fraction of the 0.25 mm step. A point
    with no edge of at least ``CT_MIN_GRADIENT`` HU/mm in its window stays where it was.
    Two passes: the frame is rebuilt from the refined points.

    Args:
        image: the CT (SimpleITK image or ``(array, geometry)``), any orientation.
        keypoints_lps: (6, 3) LPS mm, genant.KEYPOINT_NAMES order.
        passes: refinement passes (``CT_PASSES``).

    Returns:
        (6, 3) refined LPS mm (the lateral offset of each point is kept).

    """
    from ..spine.straighten import _image_parts

    array, geometry = _image_parts(image)
    points = np.array(keypoints_lps, dtype=float).reshape(6, 3)
    for _ in range(passes):
        frame = _body_frame(points)
        if frame is None:
            break
        voxel = float(np.abs(np.linalg.inv(geometry.direction) @ frame[2]) @ np.asarray(geometry.spacing))
        points = _refine_once((array, geometry), points, sigma_mm=max(0.5, voxel / 2))
    return points
