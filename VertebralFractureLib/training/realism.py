"""How realistic a CT is: HU by tissue, noise, edge sharpness, anatomy; the same measures on real and generated CTs.

Every measure needs only the image and the vertebral bodies in it (centroids in LPS mm, optionally the six Genant
keypoints), so the reference annotations of the real CTs (:mod:`VertebralFractureLib.training.real.reference`) and
the truth of a generated case (:func:`VertebralFractureLib.synth.generate_case`) are measured by the same code
(``benchmarks/bench_realism.py`` prints the two columns side by side).

Measures (all on the image turned to LPS, ``array[k, j, i]`` at ``origin + (i, j, k) * spacing``):

* HU by tissue: cancellous bone (sphere of 5 mm radius at each body centroid), intervertebral disc (disc-shaped
  sample of 6 mm radius, +-1.5 mm along the spine at the midpoint of adjacent centroids), paraspinal muscle (25-50 mm
  lateral and 15-70 mm posterior of the centroid, +-5 mm along z, HU -30..150), fat (HU -200..-30 within 80 mm
  in-plane and +-10 mm along z of the centroid) and cortical bone (99th percentile in a 40 mm cube centred on the
  centroid).
* Noise: SD (outliers beyond 4 robust SDs dropped) of the residual ``image - median3x3x3(image)`` in homogeneous
  muscle and fat (median-filtered HU 10..90 or -150..-50, eroded by one voxel), and the centroid of the 1-D noise
  power spectrum along x as a fraction of the Nyquist frequency (white noise: about 0.57; blurred noise: lower).
* Edge sharpness: the 10-90 % fall distance (mm) of the anterior cortex (profile from the centroid along the
  anterior direction) and of both endplates (profiles along the spine axis), each the mean of nine parallel
  profiles 2 mm apart, from the cortical peak down to where the fall ends (see :func:`edge_rise_mm`). A step
  blurred by a Gaussian of SD sigma gives 2.563 sigma; voxels and trilinear sampling add about spacing^2 / 4 to
  sigma^2, the same for real and generated CTs at the same spacing.
* Anatomy: the share of the field of view in contrast-enhanced vessels / heart (median-filtered HU 150..500,
  connected blobs of at least 0.5 mL that neither touch bone (> 400 HU) on 5 % of their voxels nor reach within
  8 mm of a body centroid), the share below -500 HU (air, lung, gas) and the in-plane position of the spine
  (mean centroid) relative to the centre of the field of view, as a fraction of the field of view.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

#: 10-90 % distance of a step blurred by a Gaussian, in units of the Gaussian's SD (2 x 1.2816).
RISE_PER_SIGMA = 2.5631
#: Tissue windows (HU).
MUSCLE_HU = (-30.0, 150.0)
FAT_HU = (-200.0, -30.0)
CONTRAST_HU = (150.0, 500.0)
BONE_HU = 400.0
AIR_HU = -500.0


@dataclass
class Volume:
    """A CT turned to LPS: ``array[k, j, i]`` is the HU at LPS ``origin + (i, j, k) * spacing``.

    Attributes:
        array: float32 HU, shape (nz, ny, nx).
        origin: LPS mm of voxel (0, 0, 0), (x, y, z).
        spacing: voxel size in mm, (x, y, z).

    """

    array: np.ndarray
    origin: np.ndarray
    spacing: np.ndarray
    _median: Optional[np.ndarray] = field(default=None, repr=False)

    @property
    def median(self) -> np.ndarray:
        """The 3x3x3 median-filtered image (computed once)."""
        if self._median is None:
            from scipy.ndimage import median_filter

            self._median = median_filter(self.array, size=3, mode="nearest")
        return self._median

    def index(self, points: np.ndarray) -> np.ndarray:
        """Continuous array indices (k, j, i) of LPS points (N, 3)."""
        ijk = (np.asarray(points, float) - self.origin) / self.spacing
        return ijk[..., ::-1]

    def coordinates(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """LPS coordinates broadcastable to the array: x (1, 1, nx), y (1, ny, 1), z (nz, 1, 1)."""
        nz, ny, nx = self.array.shape
        x = self.origin[0] + np.arange(nx) * self.spacing[0]
        y = self.origin[1] + np.arange(ny) * self.spacing[1]
        z = self.origin[2] + np.arange(nz) * self.spacing[2]
        return x[None, None, :], y[None, :, None], z[:, None, None]

    def box(self, centre: Sequence[float], half_mm: Sequence[float]) -> Tuple[tuple, tuple]:
        """Array slices (k, j, i) of the voxels within ``centre +- half_mm`` and their LPS coordinates."""
        centre, half = np.asarray(centre, float), np.broadcast_to(np.asarray(half_mm, float), (3,))
        slices, coords = [], []
        for d in range(3):
            n = self.array.shape[2 - d]
            first = max(int(np.ceil((centre[d] - half[d] - self.origin[d]) / self.spacing[d])), 0)
            last = min(int(np.floor((centre[d] + half[d] - self.origin[d]) / self.spacing[d])) + 1, n)
            slices.append(slice(first, max(first, last)))
            coords.append(self.origin[d] + np.arange(first, max(first, last)) * self.spacing[d])
        x, y, z = coords
        return (slices[2], slices[1], slices[0]), (x[None, None, :], y[None, :, None], z[:, None, None])

    @property
    def fov_mm(self) -> np.ndarray:
        """Extent (x, y, z) in mm (voxel count x spacing)."""
        return np.array(self.array.shape[::-1], float) * self.spacing

    @property
    def centre(self) -> np.ndarray:
        """LPS centre of the field of view."""
        return self.origin + (np.array(self.array.shape[::-1], float) - 1) / 2 * self.spacing


def volume_from_image(image) -> Volume:
    """A :class:`Volume` from a SimpleITK image whose axes are aligned with LPS (any order and sign).

    Raises:
        ValueError: for an oblique image.

    """
    import SimpleITK as sitk

    direction = np.asarray(image.GetDirection(), float).reshape(3, 3)
    if not np.allclose(np.abs(direction), np.round(np.abs(direction)), atol=1e-3):
        raise ValueError("oblique image: resample it to an axis-aligned grid first")
    if not np.allclose(direction, np.eye(3), atol=1e-3):
        image = sitk.DICOMOrient(image, "LPS")
    array = sitk.GetArrayFromImage(image).astype(np.float32)
    return Volume(array, np.asarray(image.GetOrigin(), float), np.asarray(image.GetSpacing(), float))


@dataclass
class Body:
    """One vertebral body: centroid (LPS mm) and, if known, the six Genant keypoints (6, 3)."""

    label: str
    centroid: np.ndarray
    keypoints: Optional[np.ndarray] = None
    full: bool = True


def spine_axis(bodies: Sequence[Body], i: int) -> np.ndarray:
    """Unit vector towards the head at body ``i``: from its keypoints, else from its neighbours' centroids."""
    body = bodies[i]
    if body.keypoints is not None:
        kp = np.asarray(body.keypoints, float)
        axis = kp[[0, 2, 4]].mean(axis=0) - kp[[1, 3, 5]].mean(axis=0)
    elif len(bodies) > 1:
        a, b = bodies[max(i - 1, 0)].centroid, bodies[min(i + 1, len(bodies) - 1)].centroid
        axis = np.asarray(a, float) - np.asarray(b, float)  # cranio-caudal order: earlier = higher
    else:
        axis = np.array([0.0, 0.0, 1.0])
    axis = axis / max(np.linalg.norm(axis), 1e-9)
    return axis if axis[2] >= 0 else -axis


def anterior_axis(body: Body, axis: np.ndarray) -> np.ndarray:
    """Unit anterior direction orthogonal to ``axis``: from the keypoints, else -y (LPS)."""
    if body.keypoints is not None:
        kp = np.asarray(body.keypoints, float)
        front = kp[[0, 1]].mean(axis=0) - kp[[4, 5]].mean(axis=0)
    else:
        front = np.array([0.0, -1.0, 0.0])
    front = front - np.dot(front, axis) * axis
    return front / max(np.linalg.norm(front), 1e-9)


# --- HU samples --------------------------------------------------------------------------------------------------


def sphere_values(volume: Volume, centre: Sequence[float], radius_mm: float) -> np.ndarray:
    """HU of the voxels whose centres lie within ``radius_mm`` of ``centre`` (the nearest voxel if none)."""
    slices, (x, y, z) = volume.box(centre, radius_mm)
    c = np.asarray(centre, float)
    inside = (x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2 <= radius_mm**2
    values = volume.array[slices][inside]
    if values.size == 0:
        k, j, i = np.round(volume.index(c)).astype(int)
        if all(0 <= v < n for v, n in zip((k, j, i), volume.array.shape)):
            values = volume.array[k, j, i][None]
    return values


def disc_values(
    volume: Volume, upper: Sequence[float], lower: Sequence[float], radius_mm: float = 6.0, half_mm: float = 1.5
) -> np.ndarray:
    """HU in a flat cylinder at the midpoint of two adjacent body centroids, its axis along their line.

    The half-height is at least half a voxel along z, so thick slices still give the disc's own slice.
    """
    upper, lower = np.asarray(upper, float), np.asarray(lower, float)
    centre, axis = (upper + lower) / 2, upper - lower
    axis = axis / max(np.linalg.norm(axis), 1e-9)
    half = max(half_mm, 0.5 * float(volume.spacing[2]) + 1e-3)
    slices, (x, y, z) = volume.box(centre, radius_mm + half)
    d = (x - centre[0], y - centre[1], z - centre[2])
    along = d[0] * axis[0] + d[1] * axis[1] + d[2] * axis[2]
    radial2 = d[0] ** 2 + d[1] ** 2 + d[2] ** 2 - along**2
    inside = (np.abs(along) <= half) & (radial2 <= radius_mm**2)
    return volume.array[slices][inside]


def muscle_values(volume: Volume, centroid: Sequence[float], hu: Tuple[float, float] = MUSCLE_HU) -> np.ndarray:
    """Paraspinal muscle: 25-50 mm left or right and 15-70 mm posterior of the centroid, +-5 mm in z, HU in ``hu``."""
    c = np.asarray(centroid, float)
    slices, (x, y, z) = volume.box(c + [0.0, 42.5, 0.0], (50.0, 27.5, 5.0))
    lateral = np.abs(x - c[0])
    region = (lateral >= 25.0) & (lateral <= 50.0) & (y - c[1] >= 15.0) & (y - c[1] <= 70.0) & (np.abs(z - c[2]) <= 5)
    values = volume.array[slices][np.broadcast_to(region, volume.array[slices].shape)]
    return values[(values >= hu[0]) & (values <= hu[1])]


def fat_values(volume: Volume, centroid: Sequence[float], hu: Tuple[float, float] = FAT_HU) -> np.ndarray:
    """Fat: HU in ``hu`` within 80 mm in-plane and +-10 mm along z of the centroid."""
    slices, _ = volume.box(centroid, (80.0, 80.0, 10.0))
    values = volume.array[slices].ravel()
    return values[(values >= hu[0]) & (values <= hu[1])]


def cortical_p99(volume: Volume, centroid: Sequence[float], half_mm: float = 20.0) -> float:
    """99th percentile of HU in a cube of side ``2 half_mm`` centred on the body (nan if empty)."""
    slices, _ = volume.box(centroid, half_mm)
    values = volume.array[slices]
    return float(np.percentile(values, 99)) if values.size else float("nan")


# --- noise ---------------------------------------------------------------------------------------------------------


def homogeneous_mask(volume: Volume, hu: Tuple[float, float]) -> np.ndarray:
    """Voxels whose whole 3x3x3 neighbourhood has a median-filtered HU within ``hu`` (one-voxel erosion)."""
    from scipy.ndimage import binary_erosion

    mask = (volume.median >= hu[0]) & (volume.median <= hu[1])
    return binary_erosion(mask, structure=np.ones((3, 3, 3), bool))


def robust_sd(values: np.ndarray) -> float:
    """SD after dropping outliers beyond 4 robust SDs (interquartile range / 1.349); nan for fewer than 50 values.

    For normal data this is the SD (0.1 % low); unlike the median absolute deviation it is not quantised by
    integer HU.
    """
    values = np.asarray(values, float)
    if values.size < 50:
        return float("nan")
    q1, centre, q3 = np.percentile(values, [25, 50, 75])
    keep = np.abs(values - centre) <= 4.0 * max((q3 - q1) / 1.349, 0.5)
    return float(np.std(values[keep]))


def noise_sd(volume: Volume, mask: np.ndarray) -> float:
    """SD (:func:`robust_sd`) of the high-pass residual ``image - median3x3x3(image)`` inside ``mask``.

    For white noise of SD s this gives 0.99 s; for noise correlated over neighbouring voxels (blurred) less.
    """
    return robust_sd((volume.array - volume.median)[mask])


def nps_centroid_x(volume: Volume, mask: np.ndarray, length: int = 16) -> float:
    """Centroid of the 1-D noise power spectrum along x, as a fraction of the Nyquist frequency.

    Rows are cut into windows of ``length`` voxels along x; windows entirely inside ``mask`` are detrended
    (linear fit removed) and their periodograms averaged; the zero frequency is left out. White noise gives
    about 0.57 (``length`` 16), correlated (blurred) noise less. Nan for fewer than 20 windows.
    """
    nx = volume.array.shape[2] // length * length
    if nx == 0:
        return float("nan")
    windows = volume.array[:, :, :nx].reshape(-1, length)
    inside = mask[:, :, :nx].reshape(-1, length).all(axis=1)
    windows = windows[inside].astype(float)
    if len(windows) < 20:
        return float("nan")
    t = np.arange(length) - (length - 1) / 2
    windows = windows - windows.mean(axis=1, keepdims=True)
    windows = windows - np.outer(windows @ t / (t @ t), t)
    power = (np.abs(np.fft.rfft(windows, axis=1)) ** 2).mean(axis=0)[1:]
    frequency = np.arange(1, len(power) + 1) / (length / 2)
    return float((power * frequency).sum() / power.sum())


# --- edges ---------------------------------------------------------------------------------------------------------


def line_profile(
    volume: Volume,
    start: Sequence[float],
    direction: Sequence[float],
    length_mm: float,
    step_mm: float = 0.1,
    offsets: Sequence[np.ndarray] = (),
) -> np.ndarray:
    """Mean HU along parallel lines ``start + offset + s * direction`` (s = 0..length), trilinear; nan outside."""
    from scipy.ndimage import map_coordinates

    s = np.arange(0.0, length_mm + 1e-9, step_mm)
    shifts = list(offsets) or [np.zeros(3)]
    points = np.asarray(start, float) + np.asarray(shifts, float)[:, None, :] + s[None, :, None] * np.asarray(direction)
    index = volume.index(points.reshape(-1, 3)).T
    values = map_coordinates(volume.array, index, order=1, mode="constant", cval=np.nan)
    return values.reshape(len(shifts), len(s)).mean(axis=0)


def edge_rise_mm(
    profile: np.ndarray, step_mm: float, search: Tuple[float, float], reach_mm: float = 10.0, min_step_hu: float = 100.0
) -> float:
    """10-90 % distance (mm) of the falling edge after the peak of a profile.

    The peak P is the maximum within ``search`` (mm from the start of the profile). The floor B is where the fall
    ends, within ``reach_mm`` beyond the peak: the first local minimum of the profile smoothed by 0.3 mm, or the
    first point past the steepest descent where the slope has flattened to 2 % of the steepest, whichever comes
    first (else the last point). The result is the distance between the first crossings of ``B + 0.9 (P - B)``
    and ``B + 0.1 (P - B)`` beyond the peak (linear interpolation). For a step blurred by a Gaussian of SD sigma
    this is 2.563 sigma (2.55 sigma: the 2 % slope rule ends the fall slightly early); a thin cortex gives
    less (the blurred peak is a point, not a plateau), soft tissue in front of fat more (two falls in a row).
    Nan when the profile leaves the image before the floor, when ``P - B < min_step_hu`` or a crossing is missing.
    """
    from scipy.ndimage import gaussian_filter1d

    profile = np.asarray(profile, float)
    low, high = (int(round(v / step_mm)) for v in search)
    low, high = max(low, 0), min(high, len(profile) - 1)
    window = profile[low : high + 1] if high > low else np.zeros(0)
    if not np.any(np.isfinite(window)):
        return float("nan")
    peak = low + int(np.nanargmax(window))
    segment = profile[peak : min(peak + int(round(reach_mm / step_mm)), len(profile) - 1) + 1]
    missing = np.flatnonzero(~np.isfinite(segment))
    clipped = missing.size > 0
    segment = segment[: missing[0]] if clipped else segment
    if len(segment) < 5:
        return float("nan")
    smooth = gaussian_filter1d(segment, 0.3 / step_mm, mode="nearest")
    minima = np.flatnonzero((smooth[1:-1] <= smooth[:-2]) & (smooth[1:-1] < smooth[2:])) + 1
    slope = -np.gradient(smooth)
    steepest = int(np.argmax(slope))
    flat = steepest + np.flatnonzero(slope[steepest:] <= 0.02 * slope[steepest])
    ends = [int(v[0]) for v in (minima, flat) if v.size]
    if not ends and clipped:
        return float("nan")
    floor_at = min(ends) if ends else len(segment) - 1
    top, floor = segment[0], smooth[floor_at]
    if top - floor < min_step_hu:
        return float("nan")
    crossings = []
    for level in (floor + 0.9 * (top - floor), floor + 0.1 * (top - floor)):
        below = np.flatnonzero(segment[: floor_at + 1] <= level)
        if below.size == 0 or below[0] == 0:
            return float("nan")
        n = int(below[0])
        a, b = segment[n - 1], segment[n]
        crossings.append((n - 1 + (a - level) / (a - b)) * step_mm if a != b else n * step_mm)
    return float(crossings[1] - crossings[0])


def _parallel_offsets(u: np.ndarray, v: np.ndarray, spread_mm: float = 2.0) -> List[np.ndarray]:
    return [a * u + b * v for a in (-spread_mm, 0.0, spread_mm) for b in (-spread_mm, 0.0, spread_mm)]


def body_edges(volume: Volume, bodies: Sequence[Body], i: int, step_mm: float = 0.1) -> Dict[str, List[float]]:
    """10-90 % edge distances (mm) of the anterior cortex and of both endplates of body ``i`` (needs keypoints).

    Returns:
        ``{"anterior": [mm], "endplate": [mm, mm]}``, nan where not measurable; empty lists without keypoints.

    """
    body = bodies[i]
    if body.keypoints is None:
        return {"anterior": [], "endplate": []}
    kp, c = np.asarray(body.keypoints, float), np.asarray(body.centroid, float)
    axis = spine_axis(bodies, i)
    front = anterior_axis(body, axis)
    side = np.cross(axis, front)
    anterior = float(np.dot(kp[[0, 1]].mean(axis=0) - c, front))
    profile = line_profile(volume, c, front, anterior + 15.0, step_mm, _parallel_offsets(side, axis))
    result = {"anterior": [edge_rise_mm(profile, step_mm, (anterior - 6.0, anterior + 4.0))], "endplate": []}
    for direction, point in ((axis, kp[2]), (-axis, kp[3])):
        reach = float(np.dot(point - c, direction))
        profile = line_profile(volume, c, direction, reach + 12.0, step_mm, _parallel_offsets(side, front))
        result["endplate"].append(edge_rise_mm(profile, step_mm, (reach - 4.0, reach + 4.0), reach_mm=8.0))
    return result


# --- anatomy -------------------------------------------------------------------------------------------------------


def contrast_fraction(
    volume: Volume, centroids: Sequence[Sequence[float]], min_ml: float = 0.5
) -> Tuple[float, np.ndarray]:
    """Share of the field of view in contrast-enhanced vessels / heart, and their mask.

    Candidates: median-filtered HU in :data:`CONTRAST_HU`; connected blobs (26-connectivity) of at least ``min_ml``
    that touch bone (raw HU > :data:`BONE_HU`, dilated by one voxel) on less than 5 % of their voxels and have no
    voxel within 8 mm of a body centroid (cancellous bone inside a thin cortex).
    """
    from scipy.ndimage import binary_dilation, label

    candidates = (volume.median >= CONTRAST_HU[0]) & (volume.median <= CONTRAST_HU[1])
    labels, n = label(candidates, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return 0.0, np.zeros_like(candidates)
    size = np.bincount(labels.ravel(), minlength=n + 1)
    bone = binary_dilation(volume.array > BONE_HU, structure=np.ones((3, 3, 3), bool))
    touching = np.bincount(labels[bone].ravel(), minlength=n + 1)
    keep = (size * np.prod(volume.spacing) / 1000.0 >= min_ml) & (touching < 0.05 * size)
    for c in centroids:
        slices, (x, y, z) = volume.box(c, 8.0)
        near = (x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2 <= 64.0
        keep[np.unique(labels[slices][np.broadcast_to(near, labels[slices].shape)])] = False
    keep[0] = False
    mask = keep[labels]
    return float(mask.mean()), mask


def air_fraction(volume: Volume) -> float:
    """Share of the field of view below :data:`AIR_HU` (outside air, lung, bowel gas)."""
    return float((volume.array < AIR_HU).mean())


def spine_offset(volume: Volume, centroids: Sequence[Sequence[float]]) -> Tuple[float, float]:
    """In-plane position of the spine (mean centroid) from the centre of the field of view, as fractions of it.

    Returns:
        (left-right, antero-posterior): ``(x_spine - x_centre) / fov_x`` (+ = patient's left) and
        ``(y_spine - y_centre) / fov_y`` (+ = posterior).

    """
    mean = np.mean(np.asarray(centroids, float), axis=0)
    offset = (mean - volume.centre) / volume.fov_mm
    return float(offset[0]), float(offset[1])


# --- one case ------------------------------------------------------------------------------------------------------


@dataclass
class CaseMeasures:
    """Everything measured on one CT.

    Attributes:
        name: case name.
        spacing: voxel size (x, y, z) mm.
        hu: HU samples per tissue (``cancellous``, ``disc``, ``muscle``, ``fat``; all voxels of all bodies).
        cortical_p99: per body, the 99th percentile of HU around it.
        noise: ``{"muscle": SD, "fat": SD, "nps_centroid": fraction of Nyquist}``.
        edges: ``{"anterior": [mm], "endplate": [mm]}``.
        anatomy: ``{"contrast": share, "air": share, "offset_lr": f, "offset_ap": f}``.

    """

    name: str
    spacing: Tuple[float, float, float]
    hu: Dict[str, np.ndarray] = field(default_factory=dict)
    cortical_p99: List[float] = field(default_factory=list)
    noise: Dict[str, float] = field(default_factory=dict)
    edges: Dict[str, List[float]] = field(default_factory=dict)
    anatomy: Dict[str, float] = field(default_factory=dict)


def measure_case(
    name: str,
    volume: Volume,
    bodies: Sequence[Body],
    *,
    soft_tissue: bool = True,
    edges: bool = True,
    anatomy: bool = True,
) -> CaseMeasures:
    """All measures of one CT.

    Args:
        name: case name (for the report).
        volume: the CT (:func:`volume_from_image`).
        bodies: vertebral bodies in cranio-caudal order; bone HU and edges use the ``full`` ones, discs every
            adjacent pair whose sample lies in the image, the spine position all of them.
        soft_tissue: measure muscle, fat and noise (off for an image masked to the bone).
        edges: measure edges (off for an image masked to the bone: the mask edge is not the scanner's).
        anatomy: measure the field-of-view shares and the spine position (off for a crop around one vertebra).

    """
    out = CaseMeasures(name, tuple(float(s) for s in volume.spacing))
    full = [b for b in bodies if b.full]
    hu: Dict[str, List[np.ndarray]] = {"cancellous": [], "disc": [], "muscle": [], "fat": []}
    for b in full:
        hu["cancellous"].append(sphere_values(volume, b.centroid, 5.0))
        out.cortical_p99.append(cortical_p99(volume, b.centroid))
        if soft_tissue:
            hu["muscle"].append(muscle_values(volume, b.centroid))
            hu["fat"].append(fat_values(volume, b.centroid))
    for upper, lower in zip(bodies[:-1], bodies[1:]):
        if upper.full or lower.full:
            hu["disc"].append(disc_values(volume, upper.centroid, lower.centroid))
    out.hu = {k: (np.concatenate(v) if v else np.zeros(0, np.float32)) for k, v in hu.items()}
    if soft_tissue:
        muscle, fat = homogeneous_mask(volume, (10.0, 90.0)), homogeneous_mask(volume, (-150.0, -50.0))
        length = 16 if volume.spacing[0] <= 1.6 else 8
        out.noise = {
            "muscle": noise_sd(volume, muscle),
            "fat": noise_sd(volume, fat),
            "nps_centroid": nps_centroid_x(volume, muscle | fat, length),
        }
    if edges:
        out.edges = {"anterior": [], "endplate": []}
        for i, b in enumerate(bodies):
            if b.full:
                for key, values in body_edges(volume, bodies, i).items():
                    out.edges[key].extend(values)
    if anatomy:
        lr, ap = spine_offset(volume, [b.centroid for b in bodies])
        out.anatomy = {
            "contrast": contrast_fraction(volume, [b.centroid for b in bodies])[0],
            "air": air_fraction(volume),
            "offset_lr": lr,
            "offset_ap": ap,
        }
    return out
