"""Fixtures of the shape tests: label masks drawn from the synthetic generator's column model."""

from __future__ import annotations

import numpy as np
import pytest

from VertebralFractureLib.geometry import ImageGeometry
from VertebralFractureLib.io.images import image_from_array


def draw_column(models, spacing=1.0, arches=True, margin=25.0):
    """VerSe label image of synthetic bodies (generator shapes) plus simple arches (ring + spinous process)."""
    from VertebralFractureLib.training.abnormality.data import body_fraction

    keypoints = np.concatenate([m.keypoints() for m in models])
    low = keypoints.min(axis=0) - margin
    high = keypoints.max(axis=0) + margin + np.array([0.0, 40.0, 0.0])
    size = np.ceil((high - low) / spacing).astype(int) + 1
    geometry = ImageGeometry(tuple(size), (spacing,) * 3, tuple(low), np.eye(3))
    labels = np.zeros(tuple(size[::-1]), np.uint8)
    for m in models:
        extent = [(-m.width / 2 - 2, m.width / 2 + 2), (-m.depth / 2 - 2, m.depth / 2 + 45),
                  (-m.hp / 2 - 2, m.hp / 2 + 2)]
        corners = m.to_world(np.array(np.meshgrid(*extent, indexing="ij")).reshape(3, -1).T)
        corners = geometry.lps_to_index(corners)
        lo = np.maximum(np.floor(corners.min(axis=0)).astype(int), 0)
        hi = np.minimum(np.ceil(corners.max(axis=0)).astype(int) + 1, size)
        i, j, k = np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi)], indexing="ij")
        index = np.stack([i, j, k], axis=-1)
        points = geometry.index_to_lps(index.reshape(-1, 3).astype(float)).reshape(*i.shape, 3)
        box = labels[lo[2] : hi[2], lo[1] : hi[1], lo[0] : hi[0]].transpose(2, 1, 0)
        inside = body_fraction(m, points, spacing) >= 0.5
        box[inside] = m.label
        if arches:
            local = (points - m.origin) @ m.rotation
            w, u, t = local[..., 0], local[..., 1], local[..., 2]
            canal_u = m.depth / 2 + 8.0
            radius = np.hypot(w, u - canal_u)
            ring = (radius >= 8.0) & (radius <= 13.0) & (np.abs(t) <= 0.35 * m.hp) & (u > m.depth / 2 - 1)
            spinous = (np.abs(w) <= 3) & (u > canal_u + 12) & (u < canal_u + 30) & (np.abs(t) <= 0.3 * m.hp)
            box[(ring | spinous) & (box == 0)] = m.label
    return image_from_array(labels, geometry)


@pytest.fixture(scope="session")
def column_models():
    """Five vertebrae (T11-L3) of a synthetic column with one grade-3 wedge fracture at L1."""
    from VertebralFractureLib.training.abnormality.data import synthetic_column

    models = synthetic_column(3, "abdomen", fracture_prevalence=0.0)
    names = [m.name for m in models]
    start = names.index("T11")
    chosen = models[start : start + 5]
    wedge = chosen[2]
    wedge.grade, wedge.kind, wedge.reduction = 3, "wedge", 0.45
    wedge.ha = 0.45 * max(wedge.hp, wedge.hm)
    wedge.hm = 0.5 * (wedge.ha + wedge.hp)
    return chosen


@pytest.fixture(scope="session")
def column_mask(column_models):
    """Whole-vertebra label image (bodies + arches) of the column, 1 mm."""
    return draw_column(column_models)
