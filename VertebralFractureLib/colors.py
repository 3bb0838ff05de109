"""Colours shared by the overview figures, the Slicer scene and the reports.

Pure Python (no matplotlib, no VTK): RGB triples of floats in 0-1.

* Genant grade (Genant et al. 1993; Pisov et al. 2020): 0 green, 1 yellow, 2 orange, 3 red; an
  unmeasured vertebra is grey.
* Abnormality 0-100 (Botros et al.): a green -> yellow -> red ramp.
* Levels: a fixed palette cycling along the column, so neighbouring vertebrae differ.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

from .levels import level_index

RGB = Tuple[float, float, float]

#: Colour of each Genant grade.
GRADE_COLORS = {
    0: (0.20, 0.70, 0.30),
    1: (0.95, 0.85, 0.15),
    2: (1.00, 0.55, 0.10),
    3: (0.85, 0.10, 0.10),
}
#: Colour of a vertebra without a measure (degenerate or missing keypoints).
UNKNOWN_COLOR: RGB = (0.60, 0.60, 0.60)

_RAMP = ((0.0, (0.20, 0.70, 0.30)), (50.0, (0.95, 0.85, 0.15)), (100.0, (0.85, 0.10, 0.10)))

#: Distinct colours for neighbouring levels (cycled cranio-caudally).
LEVEL_PALETTE: Tuple[RGB, ...] = (
    (0.90, 0.60, 0.00),
    (0.35, 0.70, 0.90),
    (0.00, 0.60, 0.50),
    (0.95, 0.90, 0.25),
    (0.00, 0.45, 0.70),
    (0.80, 0.40, 0.00),
    (0.80, 0.60, 0.70),
)


def grade_color(grade: Optional[int]) -> RGB:
    """Colour of a Genant grade 0-3; :data:`UNKNOWN_COLOR` for None.

    Raises:
        ValueError: for a grade outside 0-3.

    """
    if grade is None:
        return UNKNOWN_COLOR
    if int(grade) not in GRADE_COLORS:
        raise ValueError(f"Genant grade must be 0, 1, 2 or 3, got {grade!r}")
    return GRADE_COLORS[int(grade)]


def abnormality_color(score: Optional[float]) -> RGB:
    """Green (0) -> yellow (50) -> red (100) colour of an abnormality score; clipped to 0-100.

    :data:`UNKNOWN_COLOR` for None or NaN.
    """
    if score is None or not math.isfinite(float(score)):
        return UNKNOWN_COLOR
    value = min(100.0, max(0.0, float(score)))
    for (low, low_rgb), (high, high_rgb) in zip(_RAMP, _RAMP[1:]):
        if value <= high:
            t = (value - low) / (high - low)
            return tuple(round(a + t * (b - a), 6) for a, b in zip(low_rgb, high_rgb))  # type: ignore[return-value]
    return _RAMP[-1][1]


def level_color(level: str | int) -> RGB:
    """A colour per level, cycling through :data:`LEVEL_PALETTE` along the column."""
    return LEVEL_PALETTE[level_index(level) % len(LEVEL_PALETTE)]


def to_uint8(rgb: RGB) -> Tuple[int, int, int]:
    """0-1 floats to 0-255 integers."""
    return tuple(int(round(255 * min(1.0, max(0.0, c)))) for c in rgb)  # type: ignore[return-value]


def to_hex(rgb: RGB) -> str:
    """``#rrggbb`` form of a colour."""
    return "#{:02x}{:02x}{:02x}".format(*to_uint8(rgb))
