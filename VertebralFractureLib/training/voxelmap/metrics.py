"""Vertebra- and patient-level evaluation of voxel maps (Nicolaes et al. 2019 §4).

Vertebra level: centroids jittered with Gaussian noise (Nicolaes et al. 2019: sd 3 mm per axis, simulating automatic
localisation), scores by :func:`~.aggregate.vertebra_scores`, ROC AUC bootstrapped (n = 1000) over
patients. Patient level: the convex-hull ROC over (probability, noise) threshold pairs
(:func:`~.aggregate.patient_roc`), bootstrapped over patients.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from ...geometry import ImageGeometry
from ...voxelmap.aggregate import (
    DEFAULT_CUBE,
    DEFAULT_EDGE_MARGIN_MM,
    EDGE_MARGIN_GRID,
    PROBABILITY_GRID,
    bootstrap,
    convex_hull,
    largest_components,
    patient_roc,
    roc_auc,
    roc_points,
    vertebra_scores,
)

#: Nicolaes et al. 2019, §4: standard deviation (mm per axis) of the noise added to the true centroids.
JITTER_MM = 3.0


@dataclass
class CaseMap:
    """One case's fracture map with its truth.

    Attributes:
        name: case name.
        prob: p(fracture) ``[k, j, i]`` on ``geometry``.
        geometry: the map's grid.
        levels, centroids, grades: the annotated vertebrae (LPS centroids, Genant grades).

    """

    name: str
    prob: np.ndarray
    geometry: ImageGeometry
    levels: List[str]
    centroids: np.ndarray
    grades: np.ndarray
    largest: Dict[float, float] = field(default_factory=dict)
    largest_margin_mm: Optional[float] = None

    @property
    def positive(self) -> bool:
        """The patient has a fracture (any grade >= 1)."""
        return bool(np.any(self.grades >= 1))


def vertebra_level(cases: Sequence[CaseMap], cube: int, jitter_mm: float = JITTER_MM, seed: int = 0) -> Dict:
    """Per-vertebra scores (centroids jittered) and truth, pooled over cases."""
    rng = np.random.default_rng(seed)
    scores, truth, groups, grades = [], [], [], []
    for index, case in enumerate(cases):
        centroids = case.centroids + rng.normal(0.0, jitter_mm, case.centroids.shape) if jitter_mm else case.centroids
        values = vertebra_scores((case.prob, case.geometry), list(centroids), cube=cube)
        for n in range(len(case.levels)):
            value = values[n]
            scores.append(0.0 if value is None else value)
            truth.append(case.grades[n] >= 1)
            grades.append(int(case.grades[n]))
            groups.append(index)
    return {"scores": np.asarray(scores), "truth": np.asarray(truth, bool), "groups": np.asarray(groups),
            "grades": np.asarray(grades)}


def choose_cube(cases: Sequence[CaseMap], candidates: Sequence[int] = (3, 5, 7, 9, 11), jitter_mm: float = JITTER_MM,
                seed: int = 0) -> tuple:
    """The vertebra cube size with the best jittered AUC (Nicolaes et al. 2019, §4): ``(cube, {cube: auc})``."""
    aucs = {}
    for cube in candidates:
        table = vertebra_level(cases, cube, jitter_mm, seed)
        aucs[int(cube)] = roc_auc(table["scores"], table["truth"])
    best = max(aucs, key=lambda c: (np.nan_to_num(aucs[c], nan=-1), -abs(c - DEFAULT_CUBE)))
    return best, aucs


def ensure_largest(cases: Sequence[CaseMap], thresholds: Sequence[float] = PROBABILITY_GRID,
                   edge_margin_mm: float = DEFAULT_EDGE_MARGIN_MM) -> None:
    """Fill each case's largest-component volume per probability threshold (at this edge margin)."""
    for case in cases:
        if not case.largest or case.largest_margin_mm != float(edge_margin_mm):
            case.largest = largest_components((case.prob, case.geometry), thresholds, edge_margin_mm)
            case.largest_margin_mm = float(edge_margin_mm)


def patient_level(cases: Sequence[CaseMap], edge_margin_mm: float = DEFAULT_EDGE_MARGIN_MM) -> Dict:
    """Patient-level ROC points, hull and AUC (Nicolaes et al. 2019, §4); components near the scan edges ignored."""
    ensure_largest(cases, edge_margin_mm=edge_margin_mm)
    truth = np.asarray([c.positive for c in cases])
    points, hull = patient_roc([c.largest for c in cases], truth)
    from ...voxelmap.aggregate import hull_auc

    return {"points": points, "hull": hull, "auc": hull_auc(hull), "truth": truth}


def choose_edge_margin(cases: Sequence[CaseMap], candidates: Sequence[float] = EDGE_MARGIN_GRID) -> tuple:
    """Scan-edge margin (mm) with the best patient hull AUC, ties to the smallest; ``(margin, {margin: auc})``.

    Run it on validation cases only (issue 8): the chosen margin becomes the patient-level default.
    """
    aucs = {float(m): patient_level(cases, float(m))["auc"] for m in candidates}
    best = max(aucs, key=lambda m: (round(np.nan_to_num(aucs[m], nan=-1.0), 9), -m))
    return best, aucs


def operating_point(cases: Sequence[CaseMap], edge_margin_mm: float = DEFAULT_EDGE_MARGIN_MM) -> Dict[str, float]:
    """The (probability, noise) pair with the best Youden index on these cases."""
    ensure_largest(cases, edge_margin_mm=edge_margin_mm)
    truth = np.asarray([c.positive for c in cases])
    best = {"probability_threshold": 0.5, "noise_mm3": 400.0, "youden": -1.0}
    for t in sorted(cases[0].largest):
        volumes = np.asarray([c.largest[t] for c in cases])
        for noise in np.unique(volumes):
            if noise <= 0:
                continue
            predicted = volumes >= noise
            tpr = predicted[truth].mean() if truth.any() else 0.0
            fpr = predicted[~truth].mean() if (~truth).any() else 0.0
            if tpr - fpr > best["youden"]:
                # midway to the next smaller volume, so the rule generalises
                lower = volumes[volumes < noise]
                cut = 0.5 * (noise + lower.max()) if len(lower) else 0.5 * noise
                best = {"probability_threshold": float(t), "noise_mm3": float(cut), "youden": float(tpr - fpr)}
    return best


def bootstrap_vertebra_auc(table: Dict, n: int = 1000, seed: int = 0) -> np.ndarray:
    """Bootstrap AUCs of the vertebra level, resampling whole patients."""
    return bootstrap(lambda idx: roc_auc(table["scores"][idx], table["truth"][idx]), len(table["scores"]), n, seed,
                     groups=table["groups"])


def bootstrap_patient_auc(cases: Sequence[CaseMap], n: int = 1000, seed: int = 0,
                          edge_margin_mm: float = DEFAULT_EDGE_MARGIN_MM) -> np.ndarray:
    """Bootstrap hull AUCs of the patient level, resampling patients."""
    from ...voxelmap.aggregate import hull_auc

    ensure_largest(cases, edge_margin_mm=edge_margin_mm)
    truth = np.asarray([c.positive for c in cases])
    largest = [c.largest for c in cases]

    def statistic(idx: np.ndarray) -> float:
        t = truth[idx]
        if t.all() or not t.any():
            return float("nan")
        return hull_auc(patient_roc([largest[i] for i in idx], t)[1])

    return bootstrap(statistic, len(cases), n, seed)


def summary(values: np.ndarray, point: Optional[float] = None) -> Dict[str, float]:
    """Mean, sd and 95 % interval of bootstrap values (plus the point estimate)."""
    out = {"mean": float(np.mean(values)), "sd": float(np.std(values)),
           "ci95": [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))], "n": int(len(values))}
    if point is not None:
        out["point"] = float(point)
    return out


__all__ = ["CaseMap", "choose_cube", "choose_edge_margin", "convex_hull", "patient_level", "roc_points",
           "vertebra_level"]
