"""Fixtures of the radiograph tests: a drawn lateral radiograph (bright boxes for bodies), DX DICOM files."""

from __future__ import annotations

import numpy as np
import pytest
from testdata import write_dx

from VertebralFractureLib.training.radiograph.columns import Column

LEVELS = ("T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5")


def drawn_column(seed: int = 0, pixel_mm: float = 1.0, heights=None) -> Column:
    """16 vertebrae T2 ... L5 on a 420 x 200 image; body heights grow from 16 to 26 pixels."""
    rng = np.random.default_rng(seed)
    rows, cols = 420, 200
    image = np.full((rows, cols), 0.15, dtype=np.float32)
    image[:, 30:] += 0.2  # soft tissue
    heights = heights or np.linspace(16, 26, len(LEVELS))
    keypoints, centroids = [], []
    top = 12.0
    for h in heights:
        depth = 1.2 * h
        left = 110 + 10 * np.sin(top / 120.0)
        a = np.array([[left, top], [left, top + h], [left + depth / 2, top + 0.5], [left + depth / 2, top + h - 0.5],
                      [left + depth, top], [left + depth, top + h]])
        keypoints.append(a)
        centroids.append(a.mean(axis=0))
        image[int(top) : int(top + h), int(left) : int(left + depth)] = 0.8
        top += h + 5
    image += rng.normal(0, 0.02, image.shape).astype(np.float32)
    return Column(np.clip(image, 0, 1), pixel_mm, list(LEVELS), np.array(centroids), np.array(keypoints),
                  np.zeros(len(LEVELS), dtype=np.int64), seed)


@pytest.fixture
def drawn():
    """The :func:`drawn_column` factory."""
    return drawn_column


@pytest.fixture
def dx_file():
    """The :func:`write_dx` factory (pydicom DX files with chosen spacing attributes)."""
    return write_dx
