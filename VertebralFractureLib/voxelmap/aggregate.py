"""From the voxel fracture map to vertebra and patient findings (Nicolaes et al. 2019 §3.3 and §4).

- Vertebra level (Nicolaes et al. 2019, §3.3): the fracture probabilities of the voxels in a cube around the
  vertebra centroid, averaged with Gaussian distance weights. Nicolaes et al. 2019 chose the cube size by
  cross-validation (10 voxels at 1 mm); ``vertebral-fracture evaluate voxelmap`` does the same.
- Patient level (Nicolaes et al. 2019, §3.3): connected components of voxels whose fracture probability reaches a
  *probability threshold*; components smaller than a *noise threshold* are dropped; the patient is
  positive when fracture voxels remain. The two thresholds trade off against each other, so the
  ROC is the convex hull of the (FPR, TPR) points of all threshold pairs (Nicolaes et al. 2019, §4, Provost and
  Fawcett 1997): :func:`patient_roc`.
- Scan-edge margin (issue 8; Nicolaes et al. 2019, Fig. 7a): vertebrae cut by the first/last slice of the scan look
  flattened and light up the map on patients without fractures. Components with a voxel within
  ``edge_margin_mm`` of the first or last slice of the map (the band grid along the spine) are
  ignored at the patient level (:func:`edge_slices`, :func:`component_sizes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, Optional, Sequence, Tuple

import numpy as np

#: Default vertebra cube (voxels of the map) and Gaussian sigma as a fraction of the cube side.
DEFAULT_CUBE = 5
SIGMA_FRACTION = 0.25
#: Default operating point of the patient-level classifier (probability, noise threshold in mm^3).
DEFAULT_PROBABILITY_THRESHOLD = 0.5
DEFAULT_NOISE_MM3 = 400.0
#: Probability thresholds swept for the patient-level ROC.
PROBABILITY_GRID = tuple(np.round(np.arange(0.1, 0.96, 0.05), 2))
#: Patient level: components within this distance (mm) of the first/last slice of the map are ignored.
#: Chosen on the validation cases (synth_train case_0120-0152, :func:`~.metrics.choose_edge_margin`:
#: best hull AUC, ties to the smallest margin): hull AUC 0.846 without the margin, 0.985 at 24-30 mm.
DEFAULT_EDGE_MARGIN_MM = 24.0
#: Margins (mm) swept on validation by :func:`~.metrics.choose_edge_margin`.
EDGE_MARGIN_GRID = tuple(float(m) for m in range(0, 42, 2))


def _array_and_geometry(prob_map):
    """(array [k, j, i], origin, spacing, direction) of a SimpleITK image or (array, geometry) pair."""
    if isinstance(prob_map, tuple):
        array, geometry = prob_map
        return np.asarray(array), np.asarray(geometry.origin), np.asarray(geometry.spacing), geometry.direction
    import SimpleITK as sitk

    return (sitk.GetArrayViewFromImage(prob_map), np.asarray(prob_map.GetOrigin()),
            np.asarray(prob_map.GetSpacing()), np.asarray(prob_map.GetDirection()).reshape(3, 3))


def vertebra_score(array: np.ndarray, origin, spacing, direction, centroid, cube: int = DEFAULT_CUBE,
                   sigma_fraction: float = SIGMA_FRACTION) -> Optional[float]:
    """Gaussian-weighted mean fracture probability in a ``cube``^3 voxel cube around ``centroid``.

    Returns None when the cube lies entirely outside the map.
    """
    direction = np.asarray(direction, dtype=float).reshape(3, 3)
    index = np.linalg.solve(direction * spacing[None, :], np.asarray(centroid, float) - origin)  # (i, j, k)
    half = (cube - 1) / 2.0
    lo = np.floor(index - half + 1e-9).astype(int)
    if cube % 2:
        lo = np.round(index).astype(int) - int(half)
    ranges = [np.arange(lo[a], lo[a] + cube) for a in range(3)]
    i, j, k = np.meshgrid(*ranges, indexing="ij")
    shape = array.shape  # (k, j, i)
    valid = (i >= 0) & (i < shape[2]) & (j >= 0) & (j < shape[1]) & (k >= 0) & (k < shape[0])
    if not valid.any():
        return None
    offsets = (np.stack([i, j, k], axis=-1) - index) * spacing
    sigma = max(sigma_fraction * cube * float(np.mean(spacing)), 1e-6)
    weights = np.exp(-0.5 * np.sum(offsets**2, axis=-1) / sigma**2) * valid
    values = np.zeros(weights.shape)
    values[valid] = array[k[valid], j[valid], i[valid]]
    return float(np.sum(weights * values) / np.sum(weights))


def vertebra_scores(prob_map, centroids, cube: int = DEFAULT_CUBE,
                    sigma_fraction: float = SIGMA_FRACTION) -> Dict[str, Optional[float]]:
    """Nicolaes et al. 2019, §3.3 vertebra-level scores.

    Args:
        prob_map: fracture probability image (SimpleITK, any grid) or ``(array [k, j, i], ImageGeometry)``.
        centroids: mapping level -> LPS centroid (or a sequence of centroids, keys 0, 1...).
        cube: cube side in voxels of the map (Nicolaes et al. 2019: 10 voxels at 1 mm).
        sigma_fraction: Gaussian sigma as a fraction of the cube side (in mm).

    Returns:
        level -> score in 0-1 (None for centroids outside the map).

    """
    array, origin, spacing, direction = _array_and_geometry(prob_map)
    items = centroids.items() if isinstance(centroids, dict) else enumerate(centroids)
    return {key: vertebra_score(array, origin, spacing, direction, c, cube, sigma_fraction) for key, c in items}


def edge_slices(spacing, edge_margin_mm: float) -> int:
    """Slices (along the map's slice axis, ``k``) covered by an edge margin of ``edge_margin_mm``."""
    if not edge_margin_mm or edge_margin_mm <= 0:
        return 0
    return int(np.ceil(float(edge_margin_mm) / float(np.asarray(spacing, float)[2]) - 1e-9))


def component_sizes(array: np.ndarray, threshold: float, edge: int = 0) -> np.ndarray:
    """Voxel counts of the 26-connected components of ``array >= threshold``, largest first.

    Components with a voxel in the first or last ``edge`` slices (axis 0 of ``array [k, j, i]``)
    are left out (the scan-edge margin, see :data:`DEFAULT_EDGE_MARGIN_MM`).
    """
    from scipy import ndimage

    mask = np.asarray(array) >= threshold
    if not mask.any():
        return np.zeros(0, dtype=int)
    labelled, n = ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
    sizes = np.bincount(labelled.ravel(), minlength=n + 1)[1:]
    if edge > 0:
        depth = labelled.shape[0]
        touching = np.unique(np.r_[labelled[:edge].ravel(), labelled[max(depth - edge, 0):].ravel()])
        keep = np.ones(n, bool)
        keep[touching[touching > 0] - 1] = False
        sizes = sizes[keep]
    return np.sort(sizes)[::-1]


@dataclass
class PatientScore:
    """Nicolaes et al. 2019, §3.3 patient-level finding at one (probability, noise) threshold pair.

    Attributes:
        positive: a component at least ``noise_mm3`` large remains.
        fracture_volume_mm3: total volume of the remaining components (Nicolaes et al. 2019: "counting the total
            number of fracture voxels").
        largest_mm3: volume of the largest component (the patient's score for a sweep of the
            noise threshold).
        n_components: components kept.
        probability_threshold, noise_mm3: the thresholds used.
        edge_margin_mm: components this close to the first/last slice were ignored.

    """

    positive: bool
    fracture_volume_mm3: float
    largest_mm3: float
    n_components: int
    probability_threshold: float
    noise_mm3: float
    edge_margin_mm: float = 0.0

    def to_dict(self) -> Dict[str, float]:
        """JSON-ready form."""
        return dict(self.__dict__)


def patient_score(prob_map, probability_threshold: float = DEFAULT_PROBABILITY_THRESHOLD,
                  noise_mm3: float = DEFAULT_NOISE_MM3,
                  edge_margin_mm: float = DEFAULT_EDGE_MARGIN_MM) -> PatientScore:
    """Nicolaes et al. 2019, §3.3 patient-level aggregation: connected components of likely fracture voxels.

    Components within ``edge_margin_mm`` of the first/last slice of the map are ignored (0: none).
    """
    array, _, spacing, _ = _array_and_geometry(prob_map)
    voxel = float(np.prod(spacing))
    sizes = component_sizes(array, probability_threshold, edge_slices(spacing, edge_margin_mm)) * voxel
    kept = sizes[sizes >= noise_mm3]
    return PatientScore(bool(len(kept)), float(kept.sum()), float(sizes[0]) if len(sizes) else 0.0, int(len(kept)),
                        float(probability_threshold), float(noise_mm3), float(edge_margin_mm or 0.0))


def largest_components(prob_map, thresholds: Iterable[float] = PROBABILITY_GRID,
                       edge_margin_mm: float = DEFAULT_EDGE_MARGIN_MM) -> Dict[float, float]:
    """Largest component volume (mm^3) per probability threshold: what :func:`patient_roc` needs.

    Components within ``edge_margin_mm`` of the first/last slice of the map are ignored (0: none).
    """
    array, _, spacing, _ = _array_and_geometry(prob_map)
    voxel = float(np.prod(spacing))
    edge = edge_slices(spacing, edge_margin_mm)
    out = {}
    for t in thresholds:
        sizes = component_sizes(array, t, edge)
        out[float(t)] = float(sizes[0]) * voxel if len(sizes) else 0.0
    return out


# --------------------------------------------------------------------------- ROC
def roc_points(scores: Sequence[float], truth: Sequence[bool]) -> np.ndarray:
    """(FPR, TPR) points of thresholding ``scores`` (``score >= t`` positive), from (0,0) to (1,1)."""
    scores = np.asarray(scores, dtype=float)
    truth = np.asarray(truth, dtype=bool)
    order = np.argsort(-scores, kind="mergesort")
    scores, truth = scores[order], truth[order]
    distinct = np.r_[np.nonzero(np.diff(scores))[0], len(scores) - 1]
    tp = np.cumsum(truth)[distinct]
    fp = np.cumsum(~truth)[distinct]
    p, n = max(truth.sum(), 1), max((~truth).sum(), 1)
    return np.vstack([[0.0, 0.0], np.stack([fp / n, tp / p], axis=1)])


def roc_auc(scores: Sequence[float], truth: Sequence[bool]) -> float:
    """Area under the ROC curve (ties count half): the Mann-Whitney statistic."""
    from scipy.stats import rankdata

    scores = np.asarray(scores, dtype=float)
    truth = np.asarray(truth, dtype=bool)
    n_pos, n_neg = int(truth.sum()), int((~truth).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[truth].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def convex_hull(points: np.ndarray) -> np.ndarray:
    """Upper-left convex hull of ROC points (with (0,0) and (1,1)), sorted by FPR (Provost 1997)."""
    points = np.vstack([[0.0, 0.0], np.asarray(points, float).reshape(-1, 2), [1.0, 1.0]])
    points = np.unique(points, axis=0)
    points = points[np.lexsort((points[:, 1], points[:, 0]))]
    hull: list = []
    for p in points:
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1) >= 0:  # not a right turn: drop
                hull.pop()
            else:
                break
        hull.append(p)
    return np.asarray(hull)


def hull_auc(hull: np.ndarray) -> float:
    """Area under a hull polyline from :func:`convex_hull`."""
    return float(np.trapezoid(hull[:, 1], hull[:, 0]) if hasattr(np, "trapezoid") else np.trapz(hull[:, 1], hull[:, 0]))


def patient_roc(largest: Sequence[Dict[float, float]], truth: Sequence[bool]) -> Tuple[np.ndarray, np.ndarray]:
    """Nicolaes et al. 2019, §4 patient-level ROC: convex hull over all (probability, noise threshold) pairs.

    Args:
        largest: per patient, :func:`largest_components` (threshold -> largest component mm^3).
        truth: per patient, has a fracture.

    Returns:
        ``(points, hull)``: every classifier's (FPR, TPR) and the hull (the ROC curve).

    """
    truth = np.asarray(truth, dtype=bool)
    points = []
    for t in sorted(largest[0]) if largest else []:
        volume = np.array([d[t] for d in largest])
        # noise threshold just above each observed size, plus "anything" (0)
        points.append(roc_points(volume, truth))
    allpoints = np.vstack(points) if points else np.zeros((0, 2))
    return allpoints, convex_hull(allpoints)


def bootstrap(statistic, n_items: int, n: int = 1000, seed: int = 0, groups: Optional[Sequence] = None) -> np.ndarray:
    """``statistic(indices)`` over ``n`` bootstrap resamples (of items, or of whole ``groups``).

    Resamples whose statistic is NaN (one class missing) are dropped.
    """
    rng = np.random.default_rng(seed)
    if groups is not None:
        groups = np.asarray(groups)
        members = [np.nonzero(groups == g)[0] for g in np.unique(groups)]
    values = []
    for _ in range(n):
        if groups is None:
            index = rng.integers(0, n_items, n_items)
        else:
            picks = rng.integers(0, len(members), len(members))
            index = np.concatenate([members[p] for p in picks])
        value = statistic(index)
        if np.isfinite(value):
            values.append(value)
    return np.asarray(values)
