"""Anatomical level anchor on a lateral view: the sacrum below the lowest mobile vertebral body.

The Gartland et al. 2025 heatmaps know T4 ... L4 only and cannot tell a thoracic from a lumbar body
on a view without context (measured on the real sagittal images: every lumbar label off by one to
four levels), so the level count is anchored on the anatomy, as a radiologist counts lumbar levels
on a lateral film: upwards from the sacrum (Genant et al. 1993; the lumbosacral junction is the
reference of every lateral lumbar reading).

Method (:func:`sacral_anchor`), on the
:func:`~VertebralFractureLib.radiograph.gate2d.body_window` image, all lengths in units of
the detected bodies' median height ``h`` (so pixel size is never needed):

1. **Intensity levels of this image.** ``bone`` = median of the detected mobile bodies' interiors,
   ``disc`` = median of their disc bands (the same bands as the gate's ``bone`` check); the
   disc/bone boundary is their midpoint. Nothing is a fixed HU or grey value, so CT slices and
   8-bit films are handled alike.
2. **Trace the column caudally.** From the centre of the lowest body that passes the gate's bone
   check (a mobile body: bright rim, darker disc above and below), step 0.1 h along the column
   direction; at each step the track is re-centred on the bone across the column (centre of the
   above-boundary samples on a line of +-0.6 body depths, damped by half, direction smoothed) so it
   follows the lordosis and the posterior turn of the sacrum. The track stops where the line
   holds less than 25 % bone (out of the spine) or at the image edge.
3. **Discs along the track.** The profile (mean over the central +-0.25 depth) is smoothed over
   0.15 h; a disc is a local minimum below the disc/bone boundary with bone (above the boundary)
   within 0.9 h on both sides, at least 0.6 h from the previous disc (a disc is 0.2-0.45 of a
   body height, a body + disc 1.2-1.45 h: Panjabi et al. 1991, 1992).
4. **The sacrum.** After the last disc the track must run on in bone for at least 1.6 h with no
   disc (S1 and S2 are fused: the large bony mass with no disc below; a mobile body is at most
   about 1.1 h long before the next disc), and the sacral axis (S1 centre to the end of that
   stretch) must turn posteriorly by at least 15 degrees from the lumbar axis (the lumbosacral
   angle is 20-45 degrees on lateral films and supine CT; a straight column continuing in bone is
   more likely a fused or bridged lumbar segment). Then the segment after the last disc is S1,
   and the lowest mobile body is S1 minus the number of discs passed.
5. **The rest of the column** is counted upwards from that body by the discs between neighbouring
   detections (the same profile on the straight line between their centres); a pair whose disc
   count disagrees with their distance (spacing per level outside 0.7-1.4 of the column's median)
   makes the whole count uncertain.

No anchor (sacrum not in view, no disc pattern, a count that does not agree) means ``None``: the
caller keeps "levels uncertain". No threshold here was fitted on the real images: the fractions
of h come from the morphometry above, the 25 % / 15 degree limits were set before the run.

**Status: superseded, not used.** :func:`~VertebralFractureLib.radiograph.analyze.analyze_radiograph`
anchors the levels with :mod:`VertebralFractureLib.radiograph.sacrum` instead (soft tissue of the pelvis
straight ahead of L5 and a long bony mass turning posteriorly, not the bone/disc alternation of this
module); this one is kept as the record of the failed attempt. On the 12 real sagittal images with the
lumbar spine in view (``covid_sagittal``) it found no sacrum on the 8 with a sacrum in the slice and one
false "sacrum" on an image whose slice misses it (A002304_19001231: the track left the bodies for the
posterior elements and "turned" 104 degrees). Seen on the renderings: the body interior of these elderly
spines is barely brighter than the discs (trabecular bone 0.45 vs disc 0.40 of the window), the track is
pulled into the pedicles and the sacral canal, and the S1/S2 disc remnant is taken for the last mobile disc.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

#: Steps per body height along the traced column.
STEP_H = 0.1
#: Half width (body depths) of the cross line that re-centres the track on the bone.
CROSS_D = 0.4
#: Half width (body depths) of the strip whose mean makes the profile.
CORE_D = 0.25
#: Least fraction of bone on the cross line for the track to continue.
MIN_BONE_FRACTION = 0.25
#: Longest stretch (body heights) without bone across the column that the track crosses (a disc is
#: 0.2-0.45 body heights; a degenerate, vacuum or wedge-shaped disc up to about 0.6).
MAX_GAP_H = 0.7
#: Disc spacing rules (body heights).
MIN_DISC_GAP_H = 0.6
BONE_NEAR_DISC_H = 0.9
#: Bony length with no disc after the last disc that makes the sacrum (S1 + S2, fused).
SACRUM_LENGTH_H = 1.6
#: Least posterior turn (degrees) of the sacral axis from the lumbar axis.
SACRAL_TURN_DEG = 15.0
#: Spacing per level allowed against the column's median when counting between detections.
SPACING_RATIO = (0.7, 1.4)
#: How far (body heights) the track may run below the lowest mobile body.
MAX_TRACE_H = 9.0


@dataclass
class SacralAnchor:
    """The sacrum found below the lowest mobile body, and the level offsets it gives."""

    s1: np.ndarray
    discs_below: int
    lowest: int
    offsets: Dict[int, int]
    track: np.ndarray
    disc_points: np.ndarray
    details: Dict[str, float] = field(default_factory=dict)

    def levels(self, names: Sequence[str]) -> Dict[int, str]:
        """Detection index -> level name (``names`` cranio-caudal, ending with ``"S1"``)."""
        s1 = list(names).index("S1")
        out = {}
        for index, offset in self.offsets.items():
            position = s1 - offset
            if 0 <= position < len(names):
                out[index] = names[position]
        return out


def _sample(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    from scipy.ndimage import map_coordinates

    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return map_coordinates(image, [points[:, 1], points[:, 0]], order=1, mode="constant", cval=np.nan)


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-9)


def trace_column(image01: np.ndarray, start: np.ndarray, direction: np.ndarray, height: float, depth: float,
                 boundary: float, length_h: float = MAX_TRACE_H) -> Tuple[np.ndarray, np.ndarray]:
    """Follow the bone of the column from ``start`` along ``direction``.

    Returns:
        (track points (m, 2) ``[column, row]``, profile (m,) mean of the central strip).

    """
    step = STEP_H * height
    across = np.linspace(-CROSS_D, CROSS_D, 25) * depth
    core = np.abs(across) <= CORE_D * depth
    point, d = np.asarray(start, dtype=np.float64), _unit(np.asarray(direction, dtype=np.float64))
    track, profile = [], []
    gap_steps, limit = 0, int(round(MAX_GAP_H / STEP_H))
    for _ in range(int(length_h / STEP_H)):
        normal = np.array([-d[1], d[0]])
        line = point[None] + across[:, None] * normal[None]
        values = _sample(image01, line)
        if np.isnan(values[core]).any():
            break
        bone = np.nan_to_num(values, nan=0.0) > boundary
        # a disc holds no bone across the column: keep going straight through up to MAX_GAP_H
        gap_steps = gap_steps + 1 if bone.mean() < MIN_BONE_FRACTION else 0
        if gap_steps > limit:
            track, profile = track[: len(track) - gap_steps + 1], profile[: len(profile) - gap_steps + 1]
            break
        shift = float(np.mean(across[bone])) if gap_steps == 0 and bone.any() else 0.0
        track.append(point.copy())
        profile.append(float(np.mean(values[core])))
        moved = point + 0.3 * shift * normal + step * d
        d = _unit(0.8 * d + 0.2 * _unit(moved - point))
        point = moved
    return np.array(track).reshape(-1, 2), np.array(profile)


def find_discs(profile: np.ndarray, height: float, boundary: float) -> List[int]:
    """Indices (track steps) of the disc minima of a column profile (see the module's step 3)."""
    from scipy.ndimage import uniform_filter1d

    if len(profile) < 3:
        return []
    smooth = uniform_filter1d(profile, max(1, int(round(0.15 / STEP_H))), mode="nearest")
    near = int(round(BONE_NEAR_DISC_H / STEP_H))
    gap = int(round(MIN_DISC_GAP_H / STEP_H))
    discs: List[int] = []
    for i in range(1, len(smooth) - 1):
        if not (smooth[i] <= smooth[i - 1] and smooth[i] < smooth[i + 1] and smooth[i] < boundary):
            continue
        before, after = smooth[max(0, i - near) : i], smooth[i + 1 : i + 1 + near]
        if before.size == 0 or after.size == 0 or before.max() <= boundary or after.max() <= boundary:
            continue
        if discs and i - discs[-1] < gap:
            if smooth[i] < smooth[discs[-1]]:
                discs[-1] = i
            continue
        discs.append(i)
    return discs


def discs_between(image01: np.ndarray, upper: np.ndarray, lower: np.ndarray, height: float, depth: float,
                  boundary: float) -> int:
    """Number of discs on the straight line between two body centres."""
    length = float(np.linalg.norm(lower - upper))
    count = max(2, int(length / (STEP_H * height)) + 1)
    d = _unit(lower - upper)
    normal = np.array([-d[1], d[0]])
    t = np.linspace(0.0, 1.0, count)
    centres = upper[None] + t[:, None] * (lower - upper)[None]
    across = np.linspace(-CORE_D, CORE_D, 9) * depth
    values = _sample(image01, (centres[:, None, :] + across[None, :, None] * normal[None, None, :]).reshape(-1, 2))
    profile = np.nanmean(values.reshape(count, -1), axis=1)
    return len(find_discs(np.nan_to_num(profile, nan=0.0), height, boundary))


def intensity_levels(image01: np.ndarray, keypoints: Sequence[np.ndarray]) -> Tuple[float, float]:
    """(bone, disc): median of the bodies' interiors and of the disc bands above and below them."""
    from ...radiograph.gate2d import _band, _Body

    inside, discs = [], []
    for k in keypoints:
        body = _Body(np.asarray(k, dtype=np.float64))
        centre, axis = body.centre, body.axis
        normal = np.array([-axis[1], axis[0]])
        grid = [centre + a * body.height * axis + b * body.depth * normal
                for a in np.linspace(-0.3, 0.3, 5) for b in np.linspace(-0.3, 0.3, 5)]
        inside.append(_sample(image01, np.array(grid)))
        for which, sign in ((body.sup, -1.0), (body.inf, 1.0)):
            discs.append(_sample(image01, _band(body, which, 0.08, 0.22, sign)))
    return float(np.nanmedian(np.concatenate(inside))), float(np.nanmedian(np.concatenate(discs)))


def sacral_anchor(image01: np.ndarray, keypoints: Sequence[np.ndarray], mobile: Sequence[bool]
                  ) -> Tuple[Optional[SacralAnchor], str]:
    """The sacrum below the lowest mobile body and each detection's level offset from S1.

    Args:
        image01: the :func:`~VertebralFractureLib.radiograph.gate2d.body_window` image.
        keypoints: (6, 2) keypoints ``[column, row]`` of the detections in the spine column.
        mobile: per detection, whether it passed the gate's bone check (rim + discs).

    Returns:
        (anchor or None, a one-line account of what was found or why there is no anchor).

    """
    from ...radiograph.gate2d import _Body

    bodies = [_Body(np.asarray(k, dtype=np.float64)) for k in keypoints]
    order = sorted(range(len(bodies)), key=lambda i: bodies[i].centre[1])
    movable = [i for i in order if mobile[i]]
    if len(movable) < 2:
        return None, "fewer than two mobile bodies in the column"
    height = float(np.median([bodies[i].height for i in movable]))
    depth = float(np.median([bodies[i].depth for i in movable]))
    bone, disc = intensity_levels(image01, [bodies[i].keypoints for i in movable])
    if not bone > disc + 0.03:
        return None, "no contrast between the bodies and the discs"
    boundary = 0.5 * (bone + disc)
    lowest = movable[-1]
    above = movable[-2]
    lumbar_axis = _unit(bodies[lowest].centre - bodies[above].centre)
    track, profile = trace_column(image01, bodies[lowest].centre, lumbar_axis, height, depth, boundary)
    discs = find_discs(profile, height, boundary)
    details = {"bone": round(bone, 3), "disc": round(disc, 3), "height_px": round(height, 1),
               "track_h": round(len(track) * STEP_H, 2), "discs_below": float(len(discs))}
    if not discs:
        return None, "no disc below the lowest mobile body"
    last = discs[-1]
    run_h = (len(track) - 1 - last) * STEP_H
    details["bone_after_last_disc_h"] = round(run_h, 2)
    if run_h < SACRUM_LENGTH_H:
        return None, (f"no sacrum below the lowest mobile body: the column ends {run_h:.1f} body heights after "
                      "its last disc (the sacrum is a longer bony mass)")
    start = last + int(round(0.6 / STEP_H))
    stop = last + int(round(SACRUM_LENGTH_H / STEP_H))
    sacral_axis = _unit(track[stop] - track[start])
    # posterior = increasing column (column 0 anterior); a positive turn goes posterior
    turn = float(np.degrees(np.arctan2(lumbar_axis[1] * sacral_axis[0] - lumbar_axis[0] * sacral_axis[1],
                                       float(np.dot(lumbar_axis, sacral_axis)))))
    details["sacral_turn_deg"] = round(turn, 1)
    if turn < SACRAL_TURN_DEG:
        return None, (f"the bone below the last disc continues the column ({turn:.0f} degrees from it), not "
                      "the inclined sacrum")
    s1 = track[min(len(track) - 1, last + int(round(0.6 / STEP_H)))]
    offsets = {lowest: len(discs)}
    for upper, lower in zip(reversed(movable[:-1]), reversed(movable[1:])):
        count = discs_between(image01, bodies[upper].centre, bodies[lower].centre, height, depth, boundary)
        if count < 1:
            return None, "two detected bodies with no disc between them: the count cannot be trusted"
        offsets[upper] = offsets[lower] + count
    spacing = []
    for upper, lower in zip(movable[:-1], movable[1:]):
        steps = offsets[upper] - offsets[lower]
        spacing.append(float(np.linalg.norm(bodies[lower].centre - bodies[upper].centre)) / steps)
    median = float(np.median(spacing))
    if any(not SPACING_RATIO[0] <= s / median <= SPACING_RATIO[1] for s in spacing):
        return None, "the disc count between detected bodies disagrees with their spacing"
    # detections that failed the bone check (e.g. behind ribs, or sacral segments) take the nearest count
    for i in order:
        if i in offsets:
            continue
        nearest = min(movable, key=lambda j: abs(bodies[j].centre[1] - bodies[i].centre[1]))
        along = float(np.dot(bodies[i].centre - bodies[nearest].centre, lumbar_axis))
        offsets[i] = offsets[nearest] - int(round(along / median))
    details["spacing_px"] = round(median, 1)
    anchor = SacralAnchor(s1=s1, discs_below=len(discs), lowest=lowest, offsets=offsets, track=track,
                          disc_points=track[discs], details=details)
    return anchor, (f"sacrum found {len(discs)} disc(s) below the lowest mobile body, "
                    f"{run_h:.1f} body heights of bone with no disc below, turned {turn:.0f} degrees posteriorly")
