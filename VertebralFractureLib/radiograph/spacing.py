"""Pixel size of a radiograph that does not state it, estimated from its level centroids.

Neighbouring vertebral-body centres lie about half a body height + the disc + half the next body
height apart; with the published morphometry the generator uses (Panjabi et al. 1991, 1992; see
:mod:`VertebralFractureLib.synth.morphometry`) each pair of consecutive levels found by the Gartland et al. 2025
net gives one estimate of mm per pixel, and the median is taken. Individual spines differ by
about 5-10 % in size, so heights in mm from an estimated spacing carry that uncertainty (the
Genant ratio G does not depend on it).
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np

from ..levels import level_index


def expected_distance_mm(upper: str, lower: str) -> float:
    """Typical distance (mm) between the body centres of two consecutive levels."""
    from ..synth.morphometry import level_size

    a, b = level_size(upper), level_size(lower)
    return 0.25 * (a.height_posterior + a.height_anterior) + a.disc + 0.25 * (b.height_posterior + b.height_anterior)


def estimate_spacing(centroids: Dict[str, Tuple[float, float]]) -> Optional[float]:
    """Square pixel size (mm) from level -> ``(column, row, ...)`` centroids; None with fewer than two neighbours."""
    levels = sorted(centroids, key=level_index)
    estimates = []
    for upper, lower in zip(levels[:-1], levels[1:]):
        if level_index(lower) - level_index(upper) != 1:
            continue
        try:
            expected = expected_distance_mm(upper, lower)
        except ValueError:
            continue
        distance = float(np.hypot(centroids[lower][0] - centroids[upper][0], centroids[lower][1] - centroids[upper][1]))
        if distance > 1e-6:
            estimates.append(expected / distance)
    return float(np.median(estimates)) if estimates else None
