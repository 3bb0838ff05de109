"""Spine centre-line of a CT: network per axial slice -> smoothed 3D curve (Pisov et al. 2020, section 3.1).

:func:`find_centreline` resamples the CT to 3 mm (Pisov et al. 2020, §5.1), runs :class:`CentrelineNet`, keeps
the slices where the spine is present, smooths the per-slice soft-argmax points with a weighted
smoothing spline and interpolates the curve to the original slice spacing ("the predicted curve is
then linearly interpolated to the original resolution", Pisov et al. 2020, §5.1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

import numpy as np

from ..geometry import ImageGeometry
from .volume import NET_SPACING, prepare_volume

#: Name of the shipped weights file in ``VertebralFractureLib/weights``.
WEIGHTS_NAME = "centreline.pt"
MODEL_NAME = "centreline"


class CentrelineError(RuntimeError):
    """No spine found, or a centre-line that cannot be built."""


@dataclass
class Centreline:
    """A spine centre-line found in a CT.

    Attributes:
        points: (N, 3) LPS mm, superior -> inferior, at the original slice spacing, only where the
            spine is present.
        confidence: (N,) 0-1 per point (presence probability x sharpness of the heatmap).
        slice_z: (K,) LPS z (mm) of the 3 mm network slices.
        slice_points: (K, 3) LPS mm soft-argmax point of each network slice, replaced by the
            canal track's body centre where they disagree (:func:`apply_anatomy`).
        presence: (K,) probability that the slice crosses the spine.
        spread_mm: (K,) spread (standard deviation) of the slice's heatmap in mm.
        timings_s: seconds per stage.
        anatomy_score: (K,) 0-1 per network slice: agreement of the (possibly replaced) slice point
            with the spinal-canal track of :mod:`~VertebralFractureLib.spine.anatomy` (None if not run).

    """

    points: np.ndarray
    confidence: np.ndarray
    slice_z: np.ndarray
    slice_points: np.ndarray
    presence: np.ndarray
    spread_mm: np.ndarray
    timings_s: Dict[str, float] = field(default_factory=dict)
    anatomy_score: Optional[np.ndarray] = None

    @property
    def present(self) -> np.ndarray:
        """(K,) spine present in the network slices (presence >= 0.5 and a heatmap spread <= 45 mm)."""
        return effective_presence(self.presence, self.spread_mm) >= 0.5

    def point_at_z(self, z: np.ndarray) -> np.ndarray:
        """Curve point(s) at LPS height(s) ``z`` (linear between points, clamped at the ends)."""
        order = np.argsort(self.points[:, 2])
        zs, pts = self.points[order, 2], self.points[order]
        z = np.asarray(z, dtype=float)
        return np.stack([np.interp(z, zs, pts[:, 0]), np.interp(z, zs, pts[:, 1]), z], axis=-1)

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready form (frame LPS)."""
        return {
            "frame": "LPS",
            "points": np.round(self.points, 3).tolist(),
            "confidence": np.round(self.confidence, 4).tolist(),
            "slice_z": np.round(self.slice_z, 3).tolist(),
            "presence": np.round(self.presence, 4).tolist(),
        }


# ---------------------------------------------------------------------- model
def load_model(weights=None, device=None):
    """The centre-line network with weights (default: the shipped, SHA-256 checked ``centreline.pt``).

    Args:
        weights: a path / shipped name, a loaded checkpoint dict, or a ``CentrelineNet``.
        device: torch device (default :func:`~VertebralFractureLib.nn.device.pick_device`).

    Raises:
        VertebralFractureLib.nn.weights.WeightsError: missing or corrupted weights.

    """
    from ..nn.device import pick_device
    from ..nn.weights import load_weights
    from .network import CentrelineNet

    device = device or pick_device()
    if isinstance(weights, CentrelineNet):
        return weights.to(device).eval()
    checkpoint = weights if isinstance(weights, dict) else load_weights(weights or WEIGHTS_NAME, model=MODEL_NAME)
    model = CentrelineNet(**checkpoint["config"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(device).eval()


#: How the 3 mm volume is padded in-plane to the network's size: ``"constant"`` (air, as in the
#: training's tight-crop augmentation) or a ``numpy.pad`` mode such as ``"edge"``. Slices are always
#: padded with air. On the real TPTBox crop, air gave 34/35 core slices inside the body, "edge" 32/35.
PAD_MODE = "constant"


def _pad_to(array: np.ndarray, divisor: Tuple[int, int, int], minimum: Tuple[int, int, int], value: float,
            in_plane: str = PAD_MODE):  # fmt: skip
    target = [max(m, int(np.ceil(s / d)) * d) for s, d, m in zip(array.shape, divisor, minimum)]
    target = [int(np.ceil(t / d)) * d for t, d in zip(target, divisor)]
    before = [(t - s) // 2 for t, s in zip(target, array.shape)]
    pads = [(b, t - s - b) for b, t, s in zip(before, target, array.shape)]
    padded = np.pad(array, [pads[0], (0, 0), (0, 0)], constant_values=value)
    if in_plane == "constant":
        padded = np.pad(padded, [(0, 0), pads[1], pads[2]], constant_values=value)
    else:
        padded = np.pad(padded, [(0, 0), pads[1], pads[2]], mode=in_plane)
    return padded, np.asarray(before)


def predict_slices(model, hu: np.ndarray, geometry: ImageGeometry, pad_mode: str = PAD_MODE) -> Dict[str, np.ndarray]:
    """Run the network on a canonical 3 mm volume (in-plane padding: ``pad_mode``, see :data:`PAD_MODE`).

    Returns:
        ``points`` (K, 3) LPS, ``presence`` (K,), ``spread_mm`` (K,) for the volume's slices.

    """
    import torch

    from .network import normalise_hu

    padded, before = _pad_to(hu, model.divisor, (16, 32, 32), -1024, pad_mode)
    device = next(model.parameters()).device
    with torch.inference_mode():
        x = torch.from_numpy(normalise_hu(padded))[None, None].to(device)
        out = model(x)
    k0 = before[0]
    n = hu.shape[0]
    coords = out["coords"][0, k0 : k0 + n].cpu().numpy().astype(float) - before[1:][None, :]
    presence = torch.sigmoid(out["presence_logit"][0, k0 : k0 + n]).cpu().numpy().astype(float)
    spread = out["spread"][0, k0 : k0 + n].cpu().numpy().astype(float) * geometry.spacing[0]
    index = np.stack([coords[:, 1], coords[:, 0], np.arange(n, dtype=float)], axis=1)  # (i, j, k)
    return {"points": geometry.index_to_lps(index), "presence": presence, "spread_mm": spread}


# ---------------------------------------------------------------------- curve
#: Slices whose heatmap spread (standard deviation) exceeds this are treated as "no spine": on real
#: CT below the sacrum the presence score stays high but the heatmap spreads over the pelvis
#: (60-100 mm), while 99 % of synthetic spine slices stay below 41 mm.
MAX_SPREAD_MM = 45.0


def effective_presence(presence: np.ndarray, spread_mm: np.ndarray, max_spread_mm: float = MAX_SPREAD_MM):
    """Presence probability, set to 0 where the slice's heatmap is too spread to locate a vertebra."""
    return np.where(np.asarray(spread_mm) > max_spread_mm, 0.0, np.asarray(presence, dtype=float))


def _present_run(presence: np.ndarray, threshold: float = 0.5, gap: int = 2) -> Optional[Tuple[int, int]]:
    """Longest run of present slices, bridging gaps of up to ``gap`` slices: (start, stop) or None."""
    present = presence >= threshold
    idx = np.flatnonzero(present)
    if idx.size == 0:
        return None
    runs, start = [], idx[0]
    for a, b in zip(idx[:-1], idx[1:]):
        if b - a > gap + 1:
            runs.append((start, a + 1))
            start = b
    runs.append((start, idx[-1] + 1))
    return max(runs, key=lambda r: (r[1] - r[0], presence[r[0] : r[1]].sum()))


def smooth_curve(
    z: np.ndarray, xy: np.ndarray, weights: np.ndarray, z_out: np.ndarray, smoothing_mm: float = 30.0
) -> np.ndarray:
    """Robust weighted smoothing of x(z), y(z), evaluated at ``z_out``.

    Slices far (> 3 robust standard deviations and > 3 mm) from a running median of five slices are
    down-weighted first; then a cubic smoothing spline (``scipy.interpolate.make_smoothing_spline``)
    whose penalty removes wiggles shorter than about ``smoothing_mm`` is fitted to the weighted
    points.

    Returns:
        (len(z_out), 2) x, y.

    """
    from scipy.interpolate import make_smoothing_spline
    from scipy.ndimage import median_filter

    z = np.asarray(z, dtype=float)
    order = np.argsort(z)
    z, xy, weights = z[order], np.asarray(xy, float)[order], np.maximum(np.asarray(weights, float)[order], 1e-3)
    if len(z) < 5:
        return np.stack([np.interp(z_out, z, xy[:, d]) for d in range(2)], axis=1)
    reference = median_filter(xy, size=(5, 1), mode="nearest")
    residual = np.hypot(*(xy - reference).T)
    scale = max(3.0, 3 * 1.4826 * float(np.median(residual)))
    w = weights * np.where(residual > scale, (scale / np.maximum(residual, 1e-9)) ** 4, 1.0)
    dz = float(np.median(np.diff(z)))
    lam = (smoothing_mm / (2 * np.pi)) ** 4 / dz
    fits = [make_smoothing_spline(z, xy[:, d], w=w / w.mean(), lam=lam) for d in range(2)]
    return np.stack([f(z_out) for f in fits], axis=1)


def curve_from_slices(
    slice_points: np.ndarray,
    presence: np.ndarray,
    spread_mm: np.ndarray,
    z_step: float,
    smoothing_mm: float = 30.0,
) -> Tuple[np.ndarray, np.ndarray]:
    """The smoothed centre-line at ``z_step`` from per-slice points (Pisov et al. 2020, §3.1, Fig. 2c).

    Returns:
        ``(points (N, 3) LPS superior -> inferior, confidence (N,))``.

    Raises:
        CentrelineError: if no slice shows the spine.

    """
    presence = effective_presence(presence, spread_mm)
    run = _present_run(presence)
    if run is None:
        raise CentrelineError("no axial slice of this image shows a vertebral body (presence < 0.5 everywhere)")
    start, stop = run
    z = slice_points[start:stop, 2]
    sharp = 1.0 / (1.0 + (np.asarray(spread_mm[start:stop]) / 10.0) ** 2)
    weights = presence[start:stop] * sharp
    z_low, z_high = float(z.min()), float(z.max())
    n = max(2, int(np.floor((z_high - z_low) / z_step + 1e-6)) + 1)
    z_out = z_high - np.arange(n) * z_step  # superior -> inferior
    xy = smooth_curve(z, slice_points[start:stop, :2], weights, z_out, smoothing_mm)
    order = np.argsort(z)
    confidence = np.interp(z_out, z[order], weights[order])
    return np.column_stack([xy, z_out]), np.clip(confidence, 0.0, 1.0)


def bone_evidence(hu: np.ndarray, geometry: ImageGeometry, points: np.ndarray, radius_mm: float = 12.0) -> np.ndarray:
    """1 where a disc of ``radius_mm`` around each point (in its axial slice) looks like bone, else 0.

    Bone: 5-80 % of the disc above 250 HU (below 2500 HU). A homogeneous bright blob (heart, aorta,
    contrast-filled bowel: 150-400 HU) fills more than 80 % or, below 250 HU, nothing; soft tissue has none.
    """
    index = np.rint(geometry.lps_to_index(np.asarray(points, float))).astype(int)
    r = max(1, int(round(radius_mm / geometry.spacing[0])))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    disc = np.hypot(yy, xx) <= r
    dj, di = yy[disc], xx[disc]
    out = np.zeros(len(index))
    for n, (i, j, k) in enumerate(index):
        if not 0 <= k < hu.shape[0]:
            continue
        jj, ii = j + dj, i + di
        ok = (jj >= 0) & (jj < hu.shape[1]) & (ii >= 0) & (ii < hu.shape[2])
        if ok.sum() < 0.5 * len(dj):
            continue
        v = hu[k, jj[ok], ii[ok]]
        fraction = float(np.mean((v > 250) & (v < 2500)))
        out[n] = 1.0 if 0.05 <= fraction <= 0.8 else 0.0
    return out


def apply_anatomy(raw: Dict[str, np.ndarray], track, hu: np.ndarray, geometry: ImageGeometry) -> np.ndarray:
    """Check the network's per-slice points against the spinal-canal track (edits ``raw`` in place).

    Per network slice, where the track reaches its height: a point within ~18 mm of the track's body centre is
    kept, and so is one in bone (:func:`bone_evidence` >= 0.5) with a canal of its own
    (:func:`.anatomy.canal_support_at`) or nearer the body's left-right middle than the track; a point off bone,
    or in bone without either, farther away is replaced by the body centre where the track is confident (moved by
    the network's local offset from it where the replaced stretch lies between agreeing slices:
    :func:`_local_offset`; presence raised to the track confidence, spread capped at 10 mm); else the presence
    of a point off bone is multiplied by the distance agreement. Where the track does not reach,
    the network's presence stands (the quality gate checks each vertebra's bone); with no track
    at all, the presence is multiplied by :func:`bone_evidence` of the point.

    Returns:
        (K,) anatomy score per slice (agreement with the track x track confidence; bone evidence
        off the track).

    Raises:
        CentrelineError: if no spinal canal is found and none of the network's present points lies in bone.

    """
    from .anatomy import body_centre_at, body_midline_x, canal_support_at, spine_likelihood_at, track_confidence_at

    points, presence = raw["points"], raw["presence"]
    z = points[:, 2]
    bone = bone_evidence(hu, geometry, points)
    if not track.found:
        present = effective_presence(presence, raw["spread_mm"]) >= 0.5
        if not present.any() or bone[present].mean() < 0.5:
            raise CentrelineError(
                "no spinal canal found and the network's spine points do not lie in bone (no spine in this image?)"
            )
        raw["presence"] = presence * bone
        return bone * 0.0
    agree = spine_likelihood_at(track, points, weighted=False)
    conf = track_confidence_at(track, z)
    body = body_centre_at(track, z)
    covered = np.isfinite(body[:, 0])
    # a network point in bone is not overruled where it has a canal of its own or where the track lies farther from
    # the body's left-right middle than it: the track is a prior against bright blobs (heart, aorta, contrast), not a
    # better locator of a point that already sits on a vertebra (on the real sample CT the track once left the sacrum
    # for the ilium, where the network's points were right; in a 180 mm circle around its spine it follows the ilium
    # below L5). Bone alone does not vouch for a point: the network's expectation between the spine and a
    # contrast-filled colon beside it lies on the colon's edge, where a disc around it is partly bright (the real
    # abdominal CT with an opacified colon drawn beside L2-L4: benchmarks/bench_real_variants.py, colon_left)
    off_bone = bone < 0.5
    middle = body_midline_x(hu, geometry)[np.clip(np.rint(geometry.lps_to_index(points)[:, 2]).astype(int), 0,
                                                   hu.shape[0] - 1)]
    inward = np.abs(np.nan_to_num(body[:, 0]) - middle) < np.abs(points[:, 0] - middle)  # NaN middle: False
    unsupported = ~canal_support_at(track, points) & inward
    replace = covered & (agree < 0.5) & (conf >= 0.5) & (off_bone | unsupported)
    points[replace, :2] = body[replace, :2] + _local_offset(points, body, replace, covered & (agree >= 0.5) & ~replace)
    # a replaced point takes the track's confidence, but a slice whose heatmap the network spread over more
    # than MAX_SPREAD_MM stays "no spine": below the sacrum the track wanders into the ilium, and raising
    # those slices added 130 mm of pelvis to the curve of the real sample CT
    seen = raw["spread_mm"] <= MAX_SPREAD_MM
    presence = np.where(replace & seen, np.maximum(presence, conf), presence)
    raw["spread_mm"] = np.where(replace & seen, np.minimum(raw["spread_mm"], 10.0), raw["spread_mm"])
    presence = np.where(covered & ~replace & off_bone, presence * np.where(agree >= 0.5, 1.0, agree), presence)
    raw["presence"] = presence
    return np.where(covered, spine_likelihood_at(track, points), bone * 0.5)


#: How far along z (mm) the network's agreeing points tell how far they lie from the track's body centre
#: (:func:`_local_offset`): about two lumbar levels.
OFFSET_REACH_MM = 60.0


def _local_offset(points: np.ndarray, body: np.ndarray, replace: np.ndarray, agreeing: np.ndarray) -> np.ndarray:
    """(R, 2) in-plane offset of the network's points from the track's body centre, for each replaced point.

    Where agreeing slices lie within :data:`OFFSET_REACH_MM` on both sides of the replaced one (a stretch the curve
    joins on both ends), the median of ``points - body`` over them; else 0 (at the curve's end nothing lies beyond to
    join: a replaced last slice of the real TPTBox crop moved 2 mm with the offset and the body cut by the top edge
    was lost). The track places the body's centre straight in front of the canal by the posterior wall's
    distance plus half the body's depth, smoothed along the track; the network's centre lies up to 10 mm from it front
    to back. Replaced points put at the track's own centre made the curve step by that much where the replacement
    began (the real abdominal CT with an opacified colon beside L1-L4: the curve tilted forward 10 mm over 12 mm at
    L1/L2, the straightened L2 came out 1.5 times as tall and was boxed twice, and every level below it was named one
    too low with certainty).
    """
    z = points[:, 2]
    out = np.zeros((int(replace.sum()), 2))
    near_agreeing = np.flatnonzero(agreeing)
    for row, n in enumerate(np.flatnonzero(replace)):
        nearby = near_agreeing[np.abs(z[near_agreeing] - z[n]) <= OFFSET_REACH_MM]
        if (z[nearby] < z[n]).any() and (z[nearby] > z[n]).any():
            out[row] = np.median(points[nearby, :2] - body[nearby, :2], axis=0)
    return out


def track_beside_column(image, raw: Dict[str, np.ndarray]):
    """The spinal-canal track of ``image`` looked for beside the network's column (:func:`predict_slices` ``raw``).

    The column is the network's longest run of confident slices (below the sacrum the network can be confident on
    the hip, 70 mm beside the spine: the real sample CT); :func:`.anatomy.track_spinal_canal` keeps those of its
    points with a canal behind them.
    """
    from .anatomy import track_spinal_canal

    run = _present_run(effective_presence(raw["presence"], raw["spread_mm"]))
    return track_spinal_canal(image, column=None if run is None else raw["points"][run[0]: run[1]])


def find_centreline(image, model=None, *, z_step: Optional[float] = None, smoothing_mm: float = 30.0) -> Centreline:
    """Find the spine centre-line of a CT (Pisov et al. 2020, section 3.1).

    Args:
        image: SimpleITK CT in HU (any orientation / spacing).
        model: ``None`` for the shipped weights, a weights path, a checkpoint dict or a loaded
            :class:`~VertebralFractureLib.spine.network.CentrelineNet`.
        z_step: spacing of the output points in mm (default: the image's slice spacing after
            canonical reorientation, at most 3 mm).
        smoothing_mm: smoothing length of the curve.

    Returns:
        The :class:`Centreline`.

    Raises:
        CentrelineError: if the spine is not found in any slice, or no spinal canal is found and the
            network's points do not lie in bone (:func:`apply_anatomy`).
        VertebralFractureLib.nn.weights.WeightsError: missing or corrupted weights.

    """
    import time

    timings = {}
    t0 = time.perf_counter()
    hu, geometry = prepare_volume(image, NET_SPACING)
    timings["resample"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    net = load_model(model)
    timings["load_model"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    raw = predict_slices(net, hu, geometry)
    timings["network"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    anatomy_score = apply_anatomy(raw, track_beside_column(image, raw), hu, geometry)
    timings["anatomy"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if z_step is None:
        from ..io.images import geometry_of

        spacing = geometry_of(image).spacing
        direction = np.abs(geometry_of(image).direction)
        z_step = float(min(NET_SPACING, spacing[int(np.argmax(direction[2]))]))
    points, confidence = curve_from_slices(raw["points"], raw["presence"], raw["spread_mm"], z_step, smoothing_mm)
    timings["curve"] = time.perf_counter() - t0
    return Centreline(
        points=points,
        confidence=confidence,
        slice_z=raw["points"][:, 2],
        slice_points=raw["points"],
        presence=raw["presence"],
        spread_mm=raw["spread_mm"],
        timings_s=timings,
        anatomy_score=anatomy_score,
    )
