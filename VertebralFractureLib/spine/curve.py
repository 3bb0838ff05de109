"""Arc-length parametrised spine curves with rotation-minimising frames.

The spine centre-line (Pisov et al. 2020, section 3.1, Fig. 2c-d) is resampled at a uniform arc-length
step, running from the most superior point (sample 0) to the most inferior one. Each sample
carries an orthonormal frame ``(tangent, anterior, left)``:

* ``tangent`` points along the curve, towards inferior (increasing arc length);
* ``anterior`` is the normal that becomes the image's anterior direction in the straightened
  volume; it starts as the patient's anterior direction (LPS ``-y``) projected onto the plane
  normal to the curve and is carried along by the *double reflection* method (Wang, Juttler,
  Zheng and Liu, "Computation of rotation minimizing frames", ACM TOG 27(1), 2008), so the
  straightened image does not twist. A very smooth correction (Gaussian, ``twist_sigma_mm``)
  keeps it pointing anteriorly over long, doubly curved (scoliotic) spines;
* ``left = tangent x posterior`` (posterior = -anterior), so that ``(left, posterior, -tangent)``
  is right-handed and equals the LPS axes ``(x, y, z)`` for a straight vertical spine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np

#: Patient anterior direction in LPS.
ANTERIOR_LPS = np.array([0.0, -1.0, 0.0])


def _unit(vectors: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norm, 1e-12)


def rotation_minimising_frames(points: np.ndarray, tangents: np.ndarray, first_normal: np.ndarray) -> np.ndarray:
    """Rotation-minimising normals along a sampled curve by the double reflection method.

    Implements Algorithm "double reflection" of Wang et al. (2008), section 4: reflect the
    frame in the bisector plane of consecutive points, then in the plane that maps the
    reflected tangent onto the next tangent.

    Args:
        points: (N, 3) curve samples.
        tangents: (N, 3) unit tangents at the samples.
        first_normal: normal at sample 0 (made orthogonal to the first tangent).

    Returns:
        (N, 3) unit normals orthogonal to the tangents.

    """
    points = np.asarray(points, dtype=float)
    tangents = _unit(np.asarray(tangents, dtype=float))
    n = len(points)
    normals = np.empty_like(points)
    r = np.asarray(first_normal, dtype=float)
    r = r - np.dot(r, tangents[0]) * tangents[0]
    normals[0] = r / np.linalg.norm(r)
    for i in range(n - 1):
        r, t = normals[i], tangents[i]
        v1 = points[i + 1] - points[i]
        c1 = float(np.dot(v1, v1))
        if c1 < 1e-20:
            normals[i + 1] = r
            continue
        r_l = r - (2.0 / c1) * np.dot(v1, r) * v1
        t_l = t - (2.0 / c1) * np.dot(v1, t) * v1
        v2 = tangents[i + 1] - t_l
        c2 = float(np.dot(v2, v2))
        r_next = r_l if c2 < 1e-20 else r_l - (2.0 / c2) * np.dot(v2, r_l) * v2
        # remove round-off drift so the frame stays orthonormal
        r_next = r_next - np.dot(r_next, tangents[i + 1]) * tangents[i + 1]
        normals[i + 1] = r_next / np.linalg.norm(r_next)
    return normals


def _signed_angle(a: np.ndarray, b: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Angle rotating unit vectors ``a`` onto ``b`` about ``axis`` (all (N, 3))."""
    return np.arctan2(np.einsum("ij,ij->i", np.cross(a, b), axis), np.einsum("ij,ij->i", a, b))


def _rotate_about(vectors: np.ndarray, axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rodrigues rotation of vectors orthogonal to ``axis`` by ``angle``."""
    return vectors * np.cos(angle)[:, None] + np.cross(axis, vectors) * np.sin(angle)[:, None]


def _projected_anterior(tangents: np.ndarray) -> np.ndarray:
    anterior = ANTERIOR_LPS[None, :] - (tangents @ ANTERIOR_LPS)[:, None] * tangents
    degenerate = np.linalg.norm(anterior, axis=1) < 1e-6
    if np.any(degenerate):  # curve running antero-posteriorly: fall back to superior
        up = np.array([0.0, 0.0, 1.0])
        anterior[degenerate] = up - (tangents[degenerate] @ up)[:, None] * tangents[degenerate]
    return _unit(anterior)


def _clean_polyline(points: np.ndarray, values: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Drop repeated points and orient the polyline superior -> inferior (values follow)."""
    points = np.asarray(points, dtype=float)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"curve points must be an (N, 3) array of LPS mm, got shape {points.shape}")
    if not np.all(np.isfinite(points)):
        raise ValueError("curve points contain non-finite values")
    keep = np.ones(len(points), dtype=bool)
    keep[1:] = np.linalg.norm(np.diff(points, axis=0), axis=1) > 1e-6
    points, values = points[keep], values[keep]
    if len(points) < 2:
        raise ValueError("a spine curve needs at least two distinct points")
    if points[0, 2] < points[-1, 2]:  # sample 0 is the most superior end
        points, values = points[::-1], values[::-1]
    return points, values


def _interpolant(points: np.ndarray):
    from scipy.interpolate import make_interp_spline

    chord = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])
    degree = min(3, len(points) - 1)
    return make_interp_spline(chord, points, k=degree, axis=0), chord[-1]


@dataclass
class SpineCurve:
    """A centre-line sampled every ``step`` mm of arc length, with its frames.

    Attributes:
        points: (N, 3) LPS mm; sample 0 is the superior end.
        tangents: (N, 3) unit tangents, pointing inferiorly (increasing arc length).
        anterior: (N, 3) unit normals pointing anteriorly (rotation-minimising).
        left: (N, 3) unit binormals ``tangent x posterior`` (towards the patient's left).
        step: arc-length spacing of the samples in mm.
        confidence: (N,) per-sample confidence 0-1 (1 where unknown).

    """

    points: np.ndarray
    tangents: np.ndarray
    anterior: np.ndarray
    left: np.ndarray
    step: float
    confidence: np.ndarray

    @property
    def n(self) -> int:
        """Number of samples."""
        return len(self.points)

    @property
    def length(self) -> float:
        """Arc length from the first to the last sample in mm."""
        return (self.n - 1) * self.step

    @property
    def arc_length(self) -> np.ndarray:
        """(N,) arc length of each sample from sample 0."""
        return np.arange(self.n) * self.step

    @property
    def posterior(self) -> np.ndarray:
        """(N, 3) unit vectors pointing posteriorly (``-anterior``)."""
        return -self.anterior

    @classmethod
    def from_points(
        cls,
        points: np.ndarray,
        step: float = 1.0,
        *,
        margin_mm: float = 0.0,
        confidence: np.ndarray | None = None,
        twist_sigma_mm: float = 150.0,
    ) -> SpineCurve:
        """Resample an ordered polyline at a uniform arc-length step and build its frames.

        The polyline is interpolated by a cubic spline over chord length (Pisov et al. 2020, section
        3.1: the curve "linearly interpolated to the original resolution" is smoothed first by
        :func:`VertebralFractureLib.spine.centreline.smooth_curve`), then resampled so that
        consecutive samples are ``step`` mm apart along the curve.

        Args:
            points: (M, 3) LPS mm points ordered along the spine (either direction).
            step: arc-length spacing in mm.
            margin_mm: extend the curve straight along its end tangents by this much at both ends.
            confidence: optional (M,) confidence of the input points, interpolated to the samples.
            twist_sigma_mm: Gaussian scale of the slow correction keeping ``anterior`` anterior;
                0 disables it (pure rotation-minimising frames).

        Raises:
            ValueError: for fewer than two distinct points or non-finite values.

        """
        if step <= 0:
            raise ValueError(f"curve step must be positive, got {step}")
        raw = np.asarray(points, dtype=float)
        values = np.ones(len(raw)) if confidence is None else np.asarray(confidence, dtype=float).reshape(-1)
        if len(values) != len(raw):
            raise ValueError(f"{len(values)} confidence values for {len(raw)} curve points")
        cleaned, values = _clean_polyline(raw, values)
        spline, total = _interpolant(cleaned)
        dense_u = np.linspace(0.0, total, max(2, int(np.ceil(total / step * 8)) + 1))
        dense = spline(dense_u)
        dense_s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(dense, axis=0), axis=1))])
        n = max(2, int(np.floor(dense_s[-1] / step + 1e-9)) + 1)
        s = np.arange(n) * step
        u = np.interp(s, dense_s, dense_u)
        samples = spline(u)
        tangents = _unit(spline.derivative()(u))
        chord = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(cleaned, axis=0), axis=1))])
        conf = np.interp(u, chord, values)
        if margin_mm > 0:
            k = int(np.ceil(margin_mm / step))
            before = samples[0] - tangents[0] * step * np.arange(k, 0, -1)[:, None]
            after = samples[-1] + tangents[-1] * step * np.arange(1, k + 1)[:, None]
            samples = np.concatenate([before, samples, after])
            tangents = np.concatenate([np.repeat(tangents[:1], k, 0), tangents, np.repeat(tangents[-1:], k, 0)])
            conf = np.concatenate([np.zeros(k), conf, np.zeros(k)])
        anterior0 = _projected_anterior(tangents[:1])[0]
        anterior = rotation_minimising_frames(samples, tangents, anterior0)
        if twist_sigma_mm > 0 and len(samples) > 2:
            from scipy.ndimage import gaussian_filter1d

            target = _projected_anterior(tangents)
            angle = np.unwrap(_signed_angle(anterior, target, tangents))
            smooth = gaussian_filter1d(angle, twist_sigma_mm / step, mode="nearest")
            anterior = _unit(_rotate_about(anterior, tangents, smooth))
        left = _unit(np.cross(tangents, -anterior))
        return cls(samples, tangents, anterior, left, float(step), conf)

    # ------------------------------------------------------------------ continuous evaluation
    def _segment(self, s: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        t = np.asarray(s, dtype=float) / self.step
        i = np.clip(np.floor(t), 0, self.n - 2).astype(int)
        return i, t - i

    def position(self, s: np.ndarray) -> np.ndarray:
        """Curve point(s) at arc length ``s`` (mm); linear between samples, straight beyond the ends."""
        s = np.asarray(s, dtype=float)
        i, f = self._segment(s)
        inside = self.points[i] * (1 - f)[..., None] + self.points[i + 1] * f[..., None]
        before = self.points[0] + self.tangents[0] * s[..., None]
        after = self.points[-1] + self.tangents[-1] * (s - self.length)[..., None]
        out = np.where((s < 0)[..., None], before, inside)
        return np.where((s > self.length)[..., None], after, out)

    def frame(self, s: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """(posterior, left) vectors at arc length ``s``: linear between samples, constant beyond.

        They are not renormalised between samples; the point maps of
        :class:`~VertebralFractureLib.spine.straighten.StraightenedSpine` use exactly these, so
        forward and inverse maps agree to round-off.
        """
        s = np.clip(np.asarray(s, dtype=float), 0.0, self.length)
        i, f = self._segment(s)
        post = -(self.anterior[i] * (1 - f)[..., None] + self.anterior[i + 1] * f[..., None])
        left = self.left[i] * (1 - f)[..., None] + self.left[i + 1] * f[..., None]
        return post, left
