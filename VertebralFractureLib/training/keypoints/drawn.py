"""Simple drawn 2D spines with exact keypoints, for unit tests and smoke training.

Not a substitute for the generated CT cases (:mod:`VertebralFractureLib.synth`): each vertebral
body is a bright polygon through its six keypoints (concave endplates through the middle points)
on a darker background with discs between bodies, a posterior canal band and noise. Sizes grow
cranio-caudally roughly like published morphometry (body height about 15 mm at C7 to 27 mm at L5,
depth 17 to 45 mm); fractures lower the anterior (wedge), middle (biconcave) or all (crush) heights.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ...levels import TYPICAL_LEVELS
from .sample import Sample

_COLUMN = TYPICAL_LEVELS[TYPICAL_LEVELS.index("C7") :]


def _size(level: str) -> tuple:
    """Body height and depth (mm) of a level, linear in position C7 -> L5; S1 like L5."""
    order = list(_COLUMN)
    t = min(order.index(level), order.index("L5")) / order.index("L5") if level in order else 0.5
    return 15.0 + 12.0 * t, 18.0 + 27.0 * t


def kind_is_biconcave(reduce: np.ndarray) -> bool:
    """Whether the middle height alone is reduced (endplates sag from both sides)."""
    return bool(reduce[1] < 1 and reduce[0] == 1 and reduce[2] == 1)


def draw_spine(
    rng: np.random.Generator,
    levels: Optional[Sequence[str]] = None,
    rows: int = 320,
    cols: int = 96,
    fracture_rate: float = 0.25,
    noise: float = 0.15,
) -> Sample:
    """A drawn mid-sagittal spine image with keypoints.

    Args:
        rng: random generator.
        levels: consecutive levels to draw (default: a random run of 6-12 levels from C7-S1).
        rows: image height in 1 mm pixels.
        cols: image width in 1 mm pixels.
        fracture_rate: probability that a vertebra is deformed (grade 1-3 height loss).
        noise: Gaussian noise level (image intensities ~0-1).

    """
    from skimage.draw import polygon

    if levels is None:
        count = int(rng.integers(6, 13))
        start = int(rng.integers(0, len(_COLUMN) - count))
        levels = list(_COLUMN[start : start + count])
    image = np.full((rows, cols), 0.1, dtype=np.float32)
    x_front = cols * 0.2 + rng.uniform(-4, 4)
    y = rng.uniform(-10, 8)
    keypoints, names = [], []
    for level in levels:
        height, depth = _size(level)
        height *= rng.uniform(0.92, 1.08)
        depth *= rng.uniform(0.92, 1.08)
        disc = rng.uniform(4.0, 8.0)
        reduce = np.ones(3)
        if level != "S1" and rng.random() < fracture_rate:
            loss = rng.uniform(0.2, 0.5)
            kind = rng.integers(0, 3)
            reduce = np.array([1 - loss, 1 - loss * 0.5, 1.0]) if kind == 0 else reduce
            reduce = np.array([1.0, 1 - loss, 1.0]) if kind == 1 else reduce
            reduce = np.full(3, 1 - loss) if kind == 2 else reduce
        x = np.array([x_front, x_front + depth / 2, x_front + depth]) + rng.normal(0, 0.5, 3)
        top = y + rng.normal(0, 0.4, 3)
        lost = height * (1 - reduce)  # height lost per column (anterior, middle, posterior)
        sag = np.array([0.0, lost[1] / 2 if kind_is_biconcave(reduce) else 0.0, 0.0])
        sup = top + lost - sag
        inf = top + height - sag
        points = np.array(
            [[x[0], sup[0]], [x[0], inf[0]], [x[1], sup[1]], [x[1], inf[1]], [x[2], sup[2]], [x[2], inf[2]]]
        )
        outline = points[[0, 2, 4, 5, 3, 1]]
        rr, cc = polygon(outline[:, 1], outline[:, 0], image.shape)
        image[rr, cc] = 0.8 + 0.1 * rng.random()
        canal = polygon(
            [top.min(), top.min(), inf.max(), inf.max()],
            [x[2] + 2, x[2] + 14, x[2] + 14, x[2] + 2],
            image.shape,
        )
        image[canal] = 0.3
        keypoints.append(points)
        names.append(level)
        y = inf.max() + disc
        x_front += rng.normal(0, 1.0)
    image += rng.normal(0, noise, image.shape).astype(np.float32)
    keypoints = np.asarray(keypoints)
    centres = keypoints.mean(axis=1)
    inside = (centres[:, 1] >= 0) & (centres[:, 1] < rows)
    return Sample(image, keypoints[inside], [n for n, keep in zip(names, inside) if keep], name="drawn")
