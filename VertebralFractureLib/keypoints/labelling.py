"""Joint level labels of the detected vertebrae: scores + consecutive order (Gartland et al. 2025; Pisov et al. 2020).

Each detection gets a score per level channel: the value of that level's heatmap (Gartland et al. 2025) at the
detection's centre. Along the column, sorted from superior to inferior, labels must be consecutive
levels; the best assignment maximises the sum of the scores over all detections under that
constraint, found by dynamic programming (Viterbi). The level graph follows
:mod:`VertebralFractureLib.levels`: after T12 comes T13 or L1, after L5 comes L6 or S1, so the
transitional vertebrae T13 and L6 are used only where the heatmaps ask for them. A gap of up to two
levels (a missed vertebra) is allowed, penalised unless the distance between the two detections,
compared with the neighbouring gaps (:func:`expected_skips`), says a vertebra is missing. Each
vertebra's confidence combines the softmax, over levels, of the
max-marginal scores (how much better the best labelling with this level is than with any other)
with the local agreement (its own heatmap score for the chosen level over its best score):
``p_path * (0.5 + 0.5 * local)``, so a label imposed by the neighbours against the vertebra's own
heatmap gets at most one half.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np

from ..levels import LABEL_LEVELS, TRANSITIONAL

#: Penalty (in heatmap-score units) per missing or extra skipped level.
GAP_PENALTY = 0.6
#: Prior penalty for using a transitional level (T13, L6), which few spines have.
TRANSITIONAL_PENALTY = 0.05
#: Most typical levels one step may skip.
MAX_SKIP = 2
#: Cost of leaving a detection unlabelled (dropped as a duplicate or false positive).
DROP_PENALTY = 0.4
#: Cost of leaving out a detection that stands in the column one level from its neighbours
#: (:func:`in_column`): far above what its level scores can gain, so only a duplicate or a detection off the
#: column's spacing is dropped, never a body the level scores cannot place.
IN_COLUMN_DROP_PENALTY = 10.0
#: Softmax temperature of the confidence.
TEMPERATURE = 0.2


@dataclass
class Labelling:
    """Result of :func:`decode_levels`, in the order of the input detections."""

    labels: List[str]
    confidence: np.ndarray
    total_score: float


def sample_scores(heatmaps: np.ndarray, centres_mm: np.ndarray, cell_mm: float, radius: int = 1) -> np.ndarray:
    """Score of every level at every detection: max of each heatmap near the centre, (n, C) in [0, 1].

    Args:
        heatmaps: (C, H, W) level heatmaps, pixel ``k`` centred at ``k * cell_mm + (cell_mm - 1) / 2``.
        centres_mm: (n, 2) ``[column, row]`` in mm.
        cell_mm: heatmap pixel size.
        radius: half-size of the neighbourhood in heatmap pixels.

    """
    channels, rows, cols = heatmaps.shape
    out = np.zeros((len(centres_mm), channels))
    for k, (x, y) in enumerate(np.asarray(centres_mm, dtype=np.float64).reshape(-1, 2)):
        offset = (cell_mm - 1.0) / 2.0
        i, j = int(round((y - offset) / cell_mm)), int(round((x - offset) / cell_mm))
        i0, i1 = max(0, i - radius), min(rows, i + radius + 1)
        j0, j1 = max(0, j - radius), min(cols, j + radius + 1)
        if i0 >= i1 or j0 >= j1:
            continue
        out[k] = heatmaps[:, i0:i1, j0:j1].reshape(channels, -1).max(axis=1)
    return np.clip(out, 0.0, 1.0)


def expected_skips(rows_mm: np.ndarray, window: int = 2) -> np.ndarray:
    """Levels each step between sorted detections probably skips (a missed vertebra), (n - 1,).

    A gap is compared with the median of the other gaps within ``window`` steps on each side (the
    local spacing: vertebrae grow caudally, so the median of the whole column would hide a missing
    upper thoracic vertebra); ``round(gap / local) - 1``, clipped to ``[0, MAX_SKIP]``.
    """
    gaps = np.diff(np.asarray(rows_mm, dtype=np.float64))
    out = np.zeros(len(gaps))
    for k in range(len(gaps)):
        others = np.concatenate([gaps[max(0, k - window) : k], gaps[k + 1 : k + 1 + window]])
        typical = float(np.median(others)) if len(others) else float(gaps[k])
        out[k] = np.clip(np.round(gaps[k] / max(typical, 1e-6)) - 1, 0, MAX_SKIP)
    return out


def _skipped(a: int, b: int, channels: Sequence[str]) -> int:
    """Typical (non-transitional) levels strictly between channels a < b."""
    return sum(1 for c in range(a + 1, b) if channels[c] not in TRANSITIONAL)


def decode_levels(
    scores: np.ndarray,
    rows_mm: np.ndarray,
    channels: Sequence[str] = LABEL_LEVELS,
    gap_penalty: float = GAP_PENALTY,
) -> Labelling:
    """Consecutive labels maximising the summed heatmap scores (Viterbi over the level graph).

    Args:
        scores: (n, C) score of level c at detection k (e.g. from :func:`sample_scores`).
        rows_mm: (n,) cranio-caudal position of each detection (rows, superior first).
        channels: level name of each score column, cranio-caudal.
        gap_penalty: penalty per level by which a step's skip differs from the skip that the
            distance between the two detections suggests (distance / median neighbour distance - 1).

    Returns:
        labels and confidences in the input order.

    """
    scores = np.asarray(scores, dtype=np.float64)
    n, count = scores.shape if scores.ndim == 2 else (0, len(channels))
    if n == 0:
        return Labelling([], np.zeros(0), 0.0)
    order = np.argsort(np.asarray(rows_mm, dtype=np.float64), kind="stable")
    s = scores[order] - np.array([TRANSITIONAL_PENALTY if c in TRANSITIONAL else 0.0 for c in channels])[None, :]
    rows = np.asarray(rows_mm, dtype=np.float64)[order]
    expected = expected_skips(rows)

    def transition(k: int) -> np.ndarray:
        """(C, C) additive score of moving from channel a (detection k) to b (detection k + 1)."""
        t = np.full((count, count), -np.inf)
        for a in range(count):
            for b in range(a + 1, count):
                skip = _skipped(a, b, channels)
                if skip > MAX_SKIP:
                    break
                t[a, b] = -gap_penalty * abs(skip - expected[k])
        return t

    transitions = [transition(k) for k in range(n - 1)]
    forward = np.empty((n, count))
    back = np.zeros((n, count), dtype=np.int64)
    forward[0] = s[0]
    for k in range(1, n):
        total = forward[k - 1][:, None] + transitions[k - 1]
        back[k] = total.argmax(axis=0)
        forward[k] = total.max(axis=0) + s[k]
    backward = np.empty((n, count))
    backward[n - 1] = s[n - 1]
    for k in range(n - 2, -1, -1):
        backward[k] = (transitions[k] + backward[k + 1][None, :]).max(axis=1) + s[k]
    path = np.zeros(n, dtype=np.int64)
    path[-1] = int(forward[-1].argmax())
    for k in range(n - 1, 0, -1):
        path[k - 1] = back[k, path[k]]
    marginal = forward + backward - s
    finite = np.where(np.isfinite(marginal), marginal, -1e9)
    z = (finite - finite.max(axis=1, keepdims=True)) / TEMPERATURE
    probability = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    chosen = np.clip(scores[order][np.arange(n), path], 0, None)
    local = (chosen + 1e-3) / (np.clip(scores[order].max(axis=1), 0, None) + 1e-3)
    confidence_sorted = probability[np.arange(n), path] * (0.5 + 0.5 * np.clip(local, 0, 1))
    labels: List[str] = [""] * n
    confidence = np.zeros(n)
    for rank, original in enumerate(order):
        labels[original] = channels[path[rank]]
        confidence[original] = confidence_sorted[rank]
    return Labelling(labels, confidence, float(forward[-1].max()))


def best_channels(scores: np.ndarray, channels: Sequence[str] = LABEL_LEVELS) -> Labelling:
    """Each detection's best-scoring level alone (no order, nothing dropped); confidence = that channel's score.

    For detections whose levels are decided later by other evidence (the radiograph's sacral anchor and
    gate): every detection is kept, two may share a level.
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1, len(channels))
    best = scores.argmax(axis=1) if len(scores) else np.zeros(0, dtype=np.int64)
    confidence = np.clip(scores[np.arange(len(scores)), best], 0.0, 1.0) if len(scores) else np.zeros(0)
    return Labelling([channels[int(b)] for b in best], confidence, float(confidence.sum()))


def select_and_decode(
    scores: np.ndarray,
    rows_mm: np.ndarray,
    channels: Sequence[str] = LABEL_LEVELS,
    drop_penalty: float | np.ndarray = DROP_PENALTY,
    gap_penalty: float = GAP_PENALTY,
) -> Tuple[np.ndarray, Labelling]:
    """Labels with the option of leaving a detection out (a duplicate or a false positive).

    A first Viterbi pass over states "last level assigned so far" lets each detection either take a
    level cranio-caudally after the previous one or be dropped at ``drop_penalty``; this keeps one
    spurious or duplicate detection from shifting every label below it, and copes with more
    detections than levels. :func:`decode_levels` then labels the kept detections (with their
    confidences). ``drop_penalty`` may be one value or one per detection (input order; see :func:`in_column`).

    Returns:
        indices of the kept detections (input order) and their :class:`Labelling`.

    """
    scores = np.asarray(scores, dtype=np.float64)
    n = len(scores)
    if n == 0:
        return np.zeros(0, dtype=np.int64), Labelling([], np.zeros(0), 0.0)
    count = len(channels)
    order = np.argsort(np.asarray(rows_mm, dtype=np.float64), kind="stable")
    s = scores[order] - np.array([TRANSITIONAL_PENALTY if c in TRANSITIONAL else 0.0 for c in channels])[None, :]
    rows = np.asarray(rows_mm, dtype=np.float64)[order]
    drop = np.broadcast_to(np.asarray(drop_penalty, dtype=np.float64), (n,))[order]
    skips_expected = expected_skips(rows)
    step = np.full((count + 1, count), -np.inf)  # from state a (0 = none yet, c + 1 = level c) to level b
    step[0, :] = 0.0
    skips = np.full((count, count), -1)
    for a in range(count):
        for b in range(a + 1, count):
            skip = _skipped(a, b, channels)
            if skip > MAX_SKIP:
                break
            skips[a, b] = skip
    value = np.full(count + 1, -np.inf)
    value[0] = 0.0
    history = []
    for k in range(n):
        expected = skips_expected[k - 1] if k else 0.0
        moves = step.copy()
        valid = skips >= 0
        moves[1:][valid] = -gap_penalty * np.abs(skips[valid] - expected)
        total = value[:, None] + moves + s[k][None, :]
        best_from = total.argmax(axis=0)
        assign = total.max(axis=0)
        dropped = value - drop[k]
        new = dropped.copy()
        choice = np.full(count + 1, -1)  # -1: dropped (state kept); else predecessor state
        better = assign > new[1:]
        new[1:] = np.where(better, assign, new[1:])
        choice[1:] = np.where(better, best_from, -1)
        history.append(choice)
        value = new
    state = int(value.argmax())
    kept_sorted = []
    for k in range(n - 1, -1, -1):
        previous = history[k][state]
        if previous >= 0:
            kept_sorted.append(k)
            state = int(previous)
    kept = np.sort(order[np.array(kept_sorted, dtype=np.int64)]) if kept_sorted else np.zeros(0, dtype=np.int64)
    labelling = decode_levels(scores[kept], np.asarray(rows_mm, dtype=np.float64)[kept], channels, gap_penalty)
    return kept, labelling


def in_column(rows_mm: np.ndarray) -> np.ndarray:
    """Which detections stand in the column one level from their neighbours, (n,) bool in the input order.

    A detection is in the column when every gap to its cranio-caudal neighbours fits one level (0.7-1.3 times the
    local spacing, :data:`.chain.ONE_LEVEL`) or one missed level (:data:`.chain.TWO_LEVELS`), and at least one fits
    a single level; three detections at least. A duplicate (a gap far under one level) or a detection at an
    irregular distance is not. The level scores of a body can be wrong (a level classifier that has never seen
    such a scan calls a whole thoracic run lumbar: CTs drawn from real vertebra masks without ribs,
    ``benchmarks/bench_real_shapes.py``), and dropping such a body loses a vertebra in view; with
    :data:`IN_COLUMN_DROP_PENALTY` it keeps a label (the levels' certainty comes from the anchors, not from here).
    """
    from .chain import ONE_LEVEL, TWO_LEVELS, _local_spacing

    rows_mm = np.asarray(rows_mm, dtype=np.float64)
    out = np.zeros(len(rows_mm), dtype=bool)
    if len(rows_mm) < 3:
        return out
    order = np.argsort(rows_mm, kind="stable")
    rows = rows_mm[order]
    for k in range(len(rows)):
        spacing = _local_spacing(rows, k)
        gaps = [rows[k] - rows[k - 1]] if k else []
        gaps += [rows[k + 1] - rows[k]] if k + 1 < len(rows) else []
        one = [ONE_LEVEL[0] * spacing <= g <= ONE_LEVEL[1] * spacing for g in gaps]
        two = [TWO_LEVELS[0] * spacing <= g <= TWO_LEVELS[1] * spacing for g in gaps]
        out[order[k]] = bool(np.isfinite(spacing) and any(one) and all(a or b for a, b in zip(one, two)))
    return out


def consecutive(labels: Sequence[str]) -> Tuple[bool, List[str]]:
    """Whether cranio-caudally sorted labels are strictly increasing; the offending labels if not."""
    from ..levels import level_index

    positions = [level_index(name) for name in labels]
    bad = [labels[i] for i in range(1, len(labels)) if positions[i] <= positions[i - 1]]
    return not bad, bad
