"""Radiograph views as in Gartland et al. 2025's data: two overlapping views per spine, labels on one of them.

Gartland et al. 2025, appendix A: participants usually have two lateral radiographs per visit (thoracic and lumbar)
that overlap and vary in field of view; the centroids of T4 ... L4 were labelled once per
participant, "regardless of whether the vertebra is also visible on their other radiograph", so a
view often shows vertebrae beyond the ends of its labelled run without labels. :func:`cut_view_pair`
reproduces this from one long generated column (:class:`.columns.Column`): it picks the level
where the labelling switches from the upper to the lower view, extends each view by 0-3
vertebrae past that level (visible but unlabelled), varies the outer ends (sometimes cutting
into T4 or L4) and the width, and keeps every vertebra's truth so the evaluation can also count
the unlabelled ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np

from ...radiograph.labels import CENTROID_LEVELS  # noqa: F401 (re-exported)
from .columns import Column

#: Levels where the labelling may switch from the upper (thoracic) to the lower (lumbar) view.
SWITCH_LEVELS = ("T9", "T10", "T11", "T12", "L1")
#: Probability of 0, 1, 2, 3 extra (unlabelled) vertebrae past the switch level in a view.
EXTRA_PROBABILITIES = (0.15, 0.45, 0.3, 0.1)
#: Probability that a view's outer end cuts off its last channel level (T4 or L4).
CUT_END_PROBABILITY = 0.15


@dataclass
class View:
    """One radiograph view cut from a column.

    Attributes:
        image: (rows, columns) float32, the column's pixels inside the view.
        pixel_mm: pixel size (mm).
        levels: level of every vertebra entirely in view, cranio-caudal.
        centroids: (m, 2) ``[column, row]`` in the view's pixels.
        keypoints: (m, 6, 2) in the view's pixels.
        labelled: (m,) bool, whether the vertebra carries a label in this view (Gartland et al. 2025's data).
        origin: (column, row) of the view's first pixel in the column image.
        seed: seed of the column.

    """

    image: np.ndarray
    pixel_mm: float
    levels: List[str]
    centroids: np.ndarray
    keypoints: np.ndarray
    labelled: np.ndarray
    origin: Tuple[int, int] = (0, 0)
    seed: int = -1

    def labels(self, channels: Sequence[str] = CENTROID_LEVELS) -> dict:
        """Level -> centroid ``[column, row]`` of the labelled vertebrae with a channel."""
        return {lv: c for lv, c, f in zip(self.levels, self.centroids, self.labelled) if f and lv in channels}

    def visible(self, channels: Sequence[str] = CENTROID_LEVELS) -> dict:
        """Level -> centroid of every vertebra entirely in view with a channel (labelled or not)."""
        return {lv: c for lv, c in zip(self.levels, self.centroids) if lv in channels}


def cut_view(column: Column, rows: Tuple[int, int], cols: Tuple[int, int], label_levels: Sequence[str],
             margin_px: float = 1.0) -> View:
    """The view of ``column`` over ``rows`` x ``cols`` (half-open), labelling ``label_levels`` where fully visible."""
    r0, r1 = max(0, int(rows[0])), min(column.image.shape[0], int(rows[1]))
    c0, c1 = max(0, int(cols[0])), min(column.image.shape[1], int(cols[1]))
    shift = np.array([c0, r0], dtype=np.float64)
    points = column.keypoints - shift
    inside = (
        (points[..., 0].min(axis=1) >= -margin_px + 0.5)
        & (points[..., 0].max(axis=1) <= c1 - c0 - 0.5 - margin_px)
        & (points[..., 1].min(axis=1) >= margin_px - 0.5)
        & (points[..., 1].max(axis=1) <= r1 - r0 - 0.5 - margin_px)
    )
    index = np.flatnonzero(inside)
    levels = [column.levels[i] for i in index]
    wanted = set(label_levels)
    return View(
        image=column.image[r0:r1, c0:c1].copy(),
        pixel_mm=column.pixel_mm,
        levels=levels,
        centroids=column.centroids[index] - shift,
        keypoints=points[index],
        labelled=np.array([lv in wanted for lv in levels], dtype=bool),
        origin=(c0, r0),
        seed=column.seed,
    )


def _edge_below(column: Column, index: int, rng: np.random.Generator) -> int:
    """A row between the bottom of vertebra ``index`` (fully in view) and the bottom of the next."""
    bottom = column.keypoints[index, :, 1].max()
    if index + 1 < len(column.levels):
        following = column.keypoints[index + 1, :, 1].max()
    else:
        following = column.image.shape[0]
    return int(np.ceil(bottom + 2 + rng.uniform(0, 0.9) * max(following - bottom - 3, 0)))


def _edge_above(column: Column, index: int, rng: np.random.Generator) -> int:
    """A row between the top of the vertebra before ``index`` and the top of vertebra ``index``."""
    top = column.keypoints[index, :, 1].min()
    previous = column.keypoints[index - 1, :, 1].min() if index > 0 else 0.0
    return int(np.floor(top - 2 - rng.uniform(0, 0.9) * max(top - previous - 3, 0)))


def _columns_range(column: Column, rng: np.random.Generator, rows: Tuple[int, int]) -> Tuple[int, int]:
    """A random horizontal field of view (60-100 % of the width) holding the spine with a margin."""
    width = column.image.shape[1]
    keep = int(round(rng.uniform(0.6, 1.0) * width))
    centres = column.keypoints[..., 0]
    low, high = float(centres.min()) - 25, float(centres.max()) + 25
    start_min = int(max(0, np.ceil(high - keep)))
    start_max = int(min(width - keep, np.floor(low)))
    start = int(rng.integers(start_min, start_max + 1)) if start_max >= start_min else max(0, (width - keep) // 2)
    return start, start + keep


def cut_view_pair(column: Column, rng: np.random.Generator, channels: Sequence[str] = CENTROID_LEVELS) -> List[View]:
    """Two overlapping views (upper, lower) of a column, each level of ``channels`` labelled on one only.

    Raises:
        ValueError: if the column lacks the switch levels.

    """
    index = {name: i for i, name in enumerate(column.levels)}
    switches = [name for name in SWITCH_LEVELS if name in index and index[name] + 1 < len(column.levels)]
    if not switches:
        raise ValueError(f"column {column.seed}: none of {SWITCH_LEVELS} in {column.levels}")
    switch = index[str(rng.choice(switches))]
    upper_labels = [lv for lv in column.levels[: switch + 1] if lv in channels]
    lower_labels = [lv for lv in column.levels[switch + 1 :] if lv in channels]
    n = len(column.levels)
    extra_up = int(rng.choice(len(EXTRA_PROBABILITIES), p=EXTRA_PROBABILITIES))
    extra_down = int(rng.choice(len(EXTRA_PROBABILITIES), p=EXTRA_PROBABILITIES))
    upper_bottom = _edge_below(column, min(switch + extra_up, n - 1), rng)
    lower_top = _edge_above(column, max(switch + 1 - extra_down, 0), rng)
    first = index.get(channels[0], 0)
    last = index.get(channels[-1], n - 1)
    if rng.random() < CUT_END_PROBABILITY and first + 1 < switch:
        upper_top = _edge_above(column, first + 1, rng)  # T4 cut off
    else:
        upper_top = int(rng.integers(0, max(1, _edge_above(column, first, rng)) + 1))
    if rng.random() < CUT_END_PROBABILITY and last - 1 > switch + 1:
        lower_bottom = _edge_below(column, last - 1, rng)  # L4 cut off
    else:
        low = _edge_below(column, last, rng)
        lower_bottom = int(rng.integers(min(low, column.image.shape[0]), column.image.shape[0] + 1))
    views = []
    for rows, labels in (((upper_top, upper_bottom), upper_labels), ((lower_top, lower_bottom), lower_labels)):
        views.append(cut_view(column, rows, _columns_range(column, rng, rows), labels))
    return views


def evaluation_views(columns: Sequence[Column], seed: int = 0) -> List[View]:
    """The fixed held-out views: one pair per column, cut with a generator seeded by the column."""
    views: List[View] = []
    for column in columns:
        views.extend(cut_view_pair(column, np.random.default_rng((seed, column.seed))))
    return views
