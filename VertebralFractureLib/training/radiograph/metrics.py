"""Gartland et al. 2025, §2 evaluation: vertebra identification accuracy and RMSE of correctly identified centroids.

A labelled vertebra counts as identified when its layer's predicted centroid lies closer to the
true centroid than half the average distance between neighbouring true centroids of that image;
the RMSE is over the identified vertebrae only (Gartland et al. 2025, §2). Distances are measured in the network's
input pixels (264 x 264 for the paper's setting), and also reported in mm and relative to the
neighbour distance, which compares across image sizes (Gartland et al. 2025: 17.08 px of a 326 px mean spacing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np


@dataclass
class Tally:
    """Running counts for one model."""

    total: int = 0
    correct: int = 0
    squared_px: List[float] = field(default_factory=list)
    squared_mm: List[float] = field(default_factory=list)
    relative: List[float] = field(default_factory=list)

    def add(self, truth: Dict[str, np.ndarray], predicted: Dict[str, np.ndarray], scale_in: np.ndarray,
            pixel_mm: float, reference: Optional[Dict[str, np.ndarray]] = None) -> None:
        """Score one image.

        Args:
            truth: level -> true centroid ``[column, row]`` (image pixels) of the vertebrae scored.
            predicted: level -> predicted centroid (image pixels) for every layer.
            scale_in: (column, row) factors from image pixels to input pixels.
            pixel_mm: image pixel size for the mm figures.
            reference: true centroids for the neighbour distance (default ``truth``); all vertebrae
                in view, so that an image with one labelled vertebra still has a distance.

        """
        if not truth:
            return
        reference = reference if reference and len(reference) >= 2 else truth
        spacing = neighbour_distance(list(reference), [reference[name] * scale_in for name in reference])
        levels = list(truth)
        for name in levels:
            self.total += 1
            if name not in predicted:
                continue
            delta = (np.asarray(predicted[name]) - truth[name]) * scale_in
            distance = float(np.hypot(*delta))
            if distance < 0.5 * spacing:
                self.correct += 1
                self.squared_px.append(distance**2)
                delta_mm = (np.asarray(predicted[name]) - truth[name]) * pixel_mm
                self.squared_mm.append(float(delta_mm @ delta_mm))
                self.relative.append(distance / spacing)

    def summary(self) -> Dict[str, float]:
        """Accuracy (%), RMSE (input px, mm) and RMSE / neighbour distance (%)."""
        return {
            "n": self.total,
            "accuracy_pct": 100.0 * self.correct / max(self.total, 1),
            "rmse_px": float(np.sqrt(np.mean(self.squared_px))) if self.squared_px else float("nan"),
            "rmse_mm": float(np.sqrt(np.mean(self.squared_mm))) if self.squared_mm else float("nan"),
            "rmse_rel_pct": (100.0 * float(np.sqrt(np.mean(np.square(self.relative)))) if self.relative
                             else float("nan")),
        }


def neighbour_distance(levels: Sequence[str], points: Sequence[np.ndarray]) -> float:
    """Mean distance between true centroids of consecutive levels of one image (any two if none are consecutive)."""
    from ...levels import TYPICAL_LEVELS, level_index

    def position(name: str) -> int:
        return TYPICAL_LEVELS.index(name) if name in TYPICAL_LEVELS else level_index(name)

    order = sorted(range(len(levels)), key=lambda i: position(levels[i]))
    distances = []
    for a, b in zip(order[:-1], order[1:]):
        steps = position(levels[b]) - position(levels[a])
        distances.append(float(np.hypot(*(np.asarray(points[b]) - np.asarray(points[a])))) / max(steps, 1))
    return float(np.mean(distances)) if distances else float("inf")
