"""Level labels of the vertebrae detected on a radiograph, from level heatmaps (Gartland et al. 2025).

Each detected vertebra gets, per level channel, the Gartland et al. 2025 heatmap value at its centre (the maximum
in a small neighbourhood, so the nearest centroid of that level counts); labels along the column
must then be consecutive, and the best consecutive assignment is the Viterbi decoding of
:func:`VertebralFractureLib.keypoints.labelling.decode_levels`. The Gartland et al. 2025 net knows T4 ... L4 only;
the levels around them (T1-T3, L5, S1) are added as channels with score 0, so a vertebra above T4
or below L4 is named by its place in the sequence instead of being forced onto a T4 ... L4 label.
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np

from ..validation import InputError

#: Levels a radiograph vertebra may be given, cranio-caudal (Gartland et al. 2025's channels plus their neighbours).
#: The 13 heatmap channels of Gartland et al. 2025, §2: T4 ... L4, cranio-caudal.
CENTROID_LEVELS: Tuple[str, ...] = ("T4", "T5", "T6", "T7", "T8", "T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4")
#: Levels above T1, used only to name a column with more bodies than :data:`RADIOGRAPH_LEVELS` (:func:`assign_levels`).
CERVICAL_LEVELS: Tuple[str, ...] = ("C1", "C2", "C3", "C4", "C5", "C6", "C7")
RADIOGRAPH_LEVELS: Tuple[str, ...] = ("T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9", "T10", "T11", "T12",
                                      "L1", "L2", "L3", "L4", "L5", "S1")


def centre_scores(heatmaps: np.ndarray, centres: np.ndarray, radius: int = 1) -> np.ndarray:
    """(n, C) maximum of each heatmap within ``radius`` heatmap pixels of each centre ``[column, row]``."""
    channels, rows, cols = heatmaps.shape
    out = np.zeros((len(centres), channels))
    for k, (x, y) in enumerate(np.asarray(centres, dtype=np.float64).reshape(-1, 2)):
        i, j = int(round(y)), int(round(x))
        i0, i1, j0, j1 = max(0, i - radius), min(rows, i + radius + 1), max(0, j - radius), min(cols, j + radius + 1)
        if i0 < i1 and j0 < j1:
            out[k] = heatmaps[:, i0:i1, j0:j1].reshape(channels, -1).max(axis=1)
    return np.clip(out, 0.0, 1.0)


def assign_levels(centres_input: np.ndarray, heatmaps: np.ndarray, heatmap_levels: Sequence[str],
                  rows_image: np.ndarray, radius: int = 1) -> Tuple[List[str], np.ndarray]:
    """Consecutive level labels for detections.

    Args:
        centres_input: (n, 2) detection centres in heatmap pixels.
        heatmaps: (C, H, W) Gartland et al. 2025 heatmaps.
        heatmap_levels: level of each heatmap channel.
        rows_image: (n,) cranio-caudal position of each detection (for the order and the gaps).
        radius: neighbourhood (heatmap pixels) searched around each centre.

    Returns:
        labels and confidences (0-1) in the input order.

    """
    from ..keypoints.labelling import decode_levels

    if len(centres_input) == 0:
        return [], np.zeros(0)
    scores = centre_scores(heatmaps, centres_input, radius)
    channels = list(RADIOGRAPH_LEVELS)
    if len(centres_input) > len(channels):
        # more bodies in the column than T1-S1 (a view reaching the neck, or a box too many): the consecutive labels
        # need more levels, or the decoding has no path and named every body T1 (a real slice as a rotated JPEG)
        channels = list(CERVICAL_LEVELS) + channels
    if len(centres_input) > len(channels):
        raise InputError(f"{len(centres_input)} bodies in the spine column, more than the {len(channels)} vertebrae "
                         "C1-S1: this is not one lateral spine view")
    full = np.zeros((len(centres_input), len(channels)))
    for c, level in enumerate(heatmap_levels):
        full[:, channels.index(level)] = scores[:, c]
    labelling = decode_levels(full, np.asarray(rows_image, dtype=np.float64), channels)
    return labelling.labels, labelling.confidence
